"""The orchestrator's payload converter: the Agents plugin's, decoding model inputs faster.

Profiled under load (py-spy on the worker), decoding the model activity's
input was the largest single cost of a turn: pydantic validated every item of
the conversation against the Agents SDK's union of some 25 input item types,
trying each in turn. The model gets those items as plain dicts either way
(typed dicts are dicts), so here the conversation is decoded as JSON objects
and every other field (model settings, tools, output schema) as the plugin
declares it. The plugin's result types are unchanged.

And the converters are built once: the SDK makes a payload converter per
serialization context (every payload of every activation), and the plugin's
built a new pydantic converter, with an empty type adapter cache, each time,
so the schema of a model call's result was generated again on every decode.
A type hint that cannot be hashed gets its adapter kept by identity.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Required

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

JSON = b"json/plain"
MAX_ADAPTERS = 256


def _plain_items(model_input: type) -> type:
    """``model_input`` with its conversation typed as JSON objects."""
    fields = typing.get_type_hints(model_input, include_extras=True)
    fields["input"] = Required[str | list[dict[str, Any]]]
    return TypedDict(f"Plain{model_input.__name__}", fields, total=False)  # type: ignore[operator, no-any-return]


PLAIN_INPUTS: dict[Any, type] = {
    ActivityModelInput: _plain_items(ActivityModelInput),
    StreamingActivityModelInput: _plain_items(StreamingActivityModelInput),
}


class _FastJSON(EncodingPayloadConverter):
    def __init__(self, inner: EncodingPayloadConverter) -> None:
        self._inner = inner
        self._adapters: dict[int, tuple[Any, TypeAdapter[Any]]] = {}

    @property
    def encoding(self) -> str:
        return self._inner.encoding

    def to_payload(self, value: Any) -> Payload | None:
        return self._inner.to_payload(value)

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        plain = PLAIN_INPUTS.get(type_hint) if _hashable(type_hint) else None
        if plain is None and (type_hint is None or _hashable(type_hint)):
            return self._inner.from_payload(payload, type_hint)
        hint: Any = plain or type_hint
        known = self._adapters.get(id(hint))
        if known is None or known[0] is not hint:
            if len(self._adapters) >= MAX_ADAPTERS:
                self._adapters.clear()  # hints made anew per call: bounded, not cached
            known = (hint, TypeAdapter(hint))
            self._adapters[id(hint)] = known
        try:
            return known[1].validate_json(payload.data)
        except ValidationError:
            # The plugin's own way, which builds what it can of a value
            # that does not validate.
            return self._inner.from_payload(payload, type_hint)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


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
