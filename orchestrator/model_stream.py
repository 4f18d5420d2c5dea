"""A streamed model call whose input stays out of history.

The way the OpenAI Agents plugin streams (``streaming_topic``) schedules a
regular activity whose input is the model's whole input (the conversation
and every tool's schema), so history keeps it at every call, and returns
every stream event as its result. Here a streamed call is a regular activity
too, so that it can publish while the workflow is idle and heartbeat, but:

- its input is only the call's id: the activity reads the model's input
  with a Query of the session (``MODEL_INPUT_QUERY``), which leaves nothing
  in history;
- it publishes only the text to the session's stream, what came in each
  interval as one item (a Signal per batch, not per event; see ``BATCH_MS``);
- it returns one ``ModelResponse``, as a call in one piece does, and how much
  of its text it published: the session publishes the rest itself, which
  costs no Signal (a model that answers within the first interval costs none).

Local activities cannot stream: the workflow task stays open while one runs,
so a Signal it sends reaches the session only when the call is over.

This module is imported by workflow code: no I/O, nothing non-deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from agents import FunctionTool, ModelResponse, ModelSettings, UserError
from agents.models.interface import Model
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError

STREAMED_CALL_ACTIVITY = "streamed_model_call"
MODEL_INPUT_QUERY = "__mesh_model_input"
STREAM_PATCH = "model-stream-input-out-of-history"
"""Sessions whose run called their model the plugin's streamed way keep it
until their next run; later runs call it as :class:`StreamedModel` does."""
BATCH_MS = 250
MAX_BATCH_MS = 1000
"""The text written in each interval is published as one stream item, in one
Signal: a Signal per interval, not one per token, and a model that answers
within the first interval costs one. The first interval is ``BATCH_MS``, and
each next one twice the last, up to ``MAX_BATCH_MS``: the reply shows at
once, and a long one adds at most a Signal (about 0.8 KB of history) a second."""


@dataclass
class ToolSpec:
    """What the model is told of a function tool."""

    name: str
    description: str
    params_json_schema: dict[str, Any]
    strict_json_schema: bool = True


@dataclass
class ModelCallInput:
    """Everything a model call is given, read by the activity with a Query."""

    model: str
    system_instructions: str | None
    input: Any
    model_settings: ModelSettings
    tools: list[ToolSpec] = field(default_factory=list)
    previous_response_id: str | None = None
    conversation_id: str | None = None


@dataclass
class StreamedCallResult:
    response: ModelResponse
    published: int = 0
    """Characters of the response's text the call published to the stream."""


@dataclass
class StreamedCallRequest:
    """The activity's input, all that history keeps of a call."""

    call_id: str
    topic: str
    batch_ms: int = BATCH_MS
    max_batch_ms: int = MAX_BATCH_MS


class ModelInputs:
    """The inputs of the session's model calls in flight, served by Query."""

    def __init__(self) -> None:
        self._inputs: dict[str, ModelCallInput] = {}
        self._count = 0
        self._registered = False

    def add(self, value: ModelCallInput) -> str:
        if not self._registered:
            workflow.set_query_handler(MODEL_INPUT_QUERY, self.get)
            self._registered = True
        self._count += 1
        call_id = f"model-{self._count}"
        self._inputs[call_id] = value
        return call_id

    def remove(self, call_id: str) -> None:
        self._inputs.pop(call_id, None)

    def get(self, call_id: str) -> ModelCallInput | None:
        return self._inputs.get(call_id)


class StreamedModel(Model):
    """A model called by ``STREAMED_CALL_ACTIVITY``, which streams its text to the
    session and returns one response. Function tools only (the session's)."""

    def __init__(
        self,
        name: str,
        inputs: ModelInputs,
        *,
        topic: str,
        publish: Callable[[str], None],
        start_to_close: timedelta,
        heartbeat: timedelta,
        retry: RetryPolicy,
    ) -> None:
        self.name = name
        self._inputs = inputs
        self._topic = topic
        self._publish = publish
        self._start_to_close = start_to_close
        self._heartbeat = heartbeat
        self._retry = retry

    async def get_response(  # type: ignore[override]
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: ModelSettings,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> ModelResponse:
        if output_schema is not None or handoffs or prompt is not None:
            raise UserError("a streamed model call takes function tools only")
        specs = []
        for tool in tools:
            if not isinstance(tool, FunctionTool):
                raise UserError(f"a streamed model call takes function tools only, not {tool!r}")
            specs.append(
                ToolSpec(
                    name=tool.name,
                    description=tool.description,
                    params_json_schema=tool.params_json_schema,
                    strict_json_schema=tool.strict_json_schema,
                )
            )
        call_id = self._inputs.add(
            ModelCallInput(
                model=self.name,
                system_instructions=system_instructions,
                input=list(input) if isinstance(input, list) else input,
                model_settings=model_settings,
                tools=specs,
                previous_response_id=previous_response_id,
                conversation_id=conversation_id,
            )
        )
        try:
            result = await workflow.execute_activity(
                STREAMED_CALL_ACTIVITY,
                StreamedCallRequest(call_id=call_id, topic=self._topic),
                result_type=StreamedCallResult,
                start_to_close_timeout=self._start_to_close,
                heartbeat_timeout=self._heartbeat,
                retry_policy=self._retry,
                summary=f"model {self.name} (streamed)",
            )
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                # The turn was interrupted: end it as the SDK's other awaits do.
                raise asyncio.CancelledError() from err
            raise
        finally:
            self._inputs.remove(call_id)
        rest = response_text(result.response)[result.published :]
        if rest:
            self._publish(rest)
        return result.response

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise UserError("run a StreamedModel with Runner.run: it streams inside its activity")


def response_text(response: ModelResponse) -> str:
    """The text of a response's messages, as a stream writes it."""
    return "".join(
        getattr(part, "text", "") or ""
        for item in response.output
        if getattr(item, "type", None) == "message"
        for part in getattr(item, "content", ())
        if getattr(part, "type", None) == "output_text"
    )
