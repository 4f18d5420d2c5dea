"""The orchestrator's payload converter: the Agents plugin's, decoding model inputs faster.

Profiled under load (py-spy on the worker), decoding the model activity's
input was the largest single cost of a turn: pydantic validated every item of
the conversation against the Agents SDK's union of some 25 input item types,
trying each in turn. The model gets those items as plain dicts either way
(typed dicts are dicts), so here the conversation is decoded as JSON objects
and every other field (model settings, tools, output schema) as the plugin
declares it. The plugin's result types are unchanged.

A model call's request and response are written without the fields that
hold their defaults (a response's zero usage details, empty lists, nulls):
decoding fills them in again, so the value read back is equal: about 300
bytes less history per model call with the benchmark's fake provider.

And the converters are built once: the SDK makes a payload converter per
serialization context (every payload of every activation), and the plugin's
built a new pydantic converter, with an empty type adapter cache, each time,
so the schema of a model call's result was generated again on every decode.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Required

from agents import ModelResponse
from pydantic import TypeAdapter, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, EncodingPayloadConverter
from temporalio.openai_agents import OpenAIPayloadConverter
from temporalio.openai_agents._invoke_model_activity import (
    ActivityModelInput,
    StreamingActivityModelInput,
)
from temporalio.plugin import SimplePlugin
from typing_extensions import TypedDict

from orchestrator.model_stream import StreamedCallRequest, StreamedCallResult

JSON = b"json/plain"


def _plain_items(model_input: type) -> TypeAdapter[Any]:
    """A decoder of ``model_input`` with its conversation typed as JSON objects."""
    fields = typing.get_type_hints(model_input, include_extras=True)
    fields["input"] = Required[str | list[dict[str, Any]]]
    plain = TypedDict(f"Plain{model_input.__name__}", fields, total=False)  # type: ignore[misc]
    return TypeAdapter(plain)


COMPACT: dict[type, TypeAdapter[Any]] = {
    kind: TypeAdapter(kind) for kind in (ModelResponse, StreamedCallRequest, StreamedCallResult)
}
"""Types written without their default fields."""

PLAIN_INPUTS = (
    (ActivityModelInput, _plain_items(ActivityModelInput)),
    (StreamingActivityModelInput, _plain_items(StreamingActivityModelInput)),
)


class _FastJSON(EncodingPayloadConverter):
    def __init__(self, inner: EncodingPayloadConverter) -> None:
        self._inner = inner

    @property
    def encoding(self) -> str:
        return self._inner.encoding

    def to_payload(self, value: Any) -> Payload | None:
        compact = COMPACT.get(type(value))
        if compact is not None:
            return Payload(
                metadata={"encoding": JSON}, data=compact.dump_json(value, exclude_defaults=True)
            )
        return self._inner.to_payload(value)

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        plain = next((adapter for hint, adapter in PLAIN_INPUTS if hint is type_hint), None)
        if plain is not None:
            try:
                return plain.validate_json(payload.data)
            except ValidationError:
                pass  # the plugin's own way builds what it can of such a value
        return self._inner.from_payload(payload, type_hint)


class MeshPayloadConverter(OpenAIPayloadConverter):
    """The plugin's converter (which it requires), with the faster JSON decoding.

    The SDK builds a new payload converter for every serialization context (each
    payload of each activation), and the plugin's builds a new pydantic converter
    with an empty type adapter cache each time: here every instance shares one set
    of encoding converters, which hold no per-context state, and so their caches.
    """

    _shared: tuple[EncodingPayloadConverter, ...] | None = None

    def __init__(self) -> None:
        shared = MeshPayloadConverter._shared
        if shared is None:
            super().__init__()
            shared = tuple(_FastJSON(c) if key == JSON else c for key, c in self.converters.items())
            MeshPayloadConverter._shared = shared
        self._set_converters(*shared)


def _faster(converter: DataConverter | None) -> DataConverter:
    if converter is None or converter.payload_converter_class is not OpenAIPayloadConverter:
        raise ValueError("the mesh's payload plugin goes right after the Agents plugin")
    return dataclasses.replace(converter, payload_converter_class=MeshPayloadConverter)


def plugin() -> SimplePlugin:
    """Put after the Agents plugin (which sets its converter): swaps in this one."""
    return SimplePlugin("mesh.payloads", data_converter=_faster)
