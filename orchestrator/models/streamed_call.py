"""The activity of a streamed model call (see :mod:`orchestrator.model_stream`).

It reads the call's input from the session with a Query, streams the model's
answer, publishes its text to the session's stream in coalesced batches
(``WorkflowStreamClient``, one Signal per batch) and returns the response
in one piece. It heartbeats, so that a call lost with its worker is retried
within the heartbeat timeout and an interrupted turn's cancellation reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from agents import FunctionTool, ModelResponse, ModelTracing, RunContextWrapper, Usage
from agents.usage import InputTokensDetails, OutputTokensDetails
from openai import APIStatusError
from temporalio import activity
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.exceptions import ApplicationError

from orchestrator.model_calls import HEARTBEAT
from orchestrator.model_stream import (
    MODEL_INPUT_QUERY,
    STREAMED_CALL_ACTIVITY,
    ModelCallInput,
    StreamedCallRequest,
    StreamedCallResult,
)
from orchestrator.models.provider import MeshModelProvider

TEXT_DELTA = "response.output_text.delta"


class TextBatches:
    """A reply's text, joined into batches: what came since the last :meth:`take`."""

    def __init__(self) -> None:
        self._text: list[str] = []

    def add(self, delta: str) -> None:
        if delta:
            self._text.append(delta)

    def take(self) -> str | None:
        """The text not published yet, if any."""
        text = "".join(self._text)
        self._text = []
        return text or None


def streamed_call_activity(provider: MeshModelProvider) -> Callable[..., Any]:
    """The activity that runs a session's streamed model calls with ``provider``'s models."""

    @activity.defn(name=STREAMED_CALL_ACTIVITY)
    async def streamed_model_call(request: StreamedCallRequest) -> StreamedCallResult:
        info = activity.info()
        if info.workflow_id is None:
            raise ApplicationError("a streamed model call belongs to a session", non_retryable=True)
        handle = activity.client().get_workflow_handle(
            info.workflow_id, run_id=info.workflow_run_id
        )
        call = await handle.query(MODEL_INPUT_QUERY, request.call_id, result_type=ModelCallInput)
        if call is None:
            raise ApplicationError(
                f"the session has no model call {request.call_id} in flight", non_retryable=True
            )
        beat = asyncio.create_task(_heartbeat())
        try:
            return await _stream(provider, call, request)
        except APIStatusError as err:
            raise ApplicationError(
                f"model answered {err.status_code}",
                non_retryable=err.status_code < 500 and err.status_code not in (408, 409, 429),
            ) from err
        finally:
            beat.cancel()

    return streamed_model_call


async def _heartbeat() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT.total_seconds() / 2)


async def _noop(_ctx: RunContextWrapper[Any], _args: str) -> str:
    return ""


async def _stream(
    provider: MeshModelProvider, call: ModelCallInput, request: StreamedCallRequest
) -> StreamedCallResult:
    model = provider.get_model(call.model)
    tools = [
        FunctionTool(
            name=spec.name,
            description=spec.description,
            params_json_schema=spec.params_json_schema,
            on_invoke_tool=_noop,
            strict_json_schema=spec.strict_json_schema,
        )
        for spec in call.tools
    ]
    # Flushed by hand, not as a context manager: on Python 3.11 its background
    # flusher can miss its cancellation when a forced flush is due as the
    # context exits (asyncio.wait_for returns the result instead), and the
    # exit then waits forever.
    stream = WorkflowStreamClient.from_within_activity(
        batch_interval=timedelta(milliseconds=request.batch_ms)
    )
    topic = stream.topic(request.topic)
    batches = TextBatches()
    sending = asyncio.Lock()
    published = 0

    async def send() -> None:
        nonlocal published
        text = batches.take()
        if text:
            topic.publish({"type": TEXT_DELTA, "delta": text})
            await stream.flush()
            published += len(text)

    async def every_batch() -> None:
        interval_ms = request.batch_ms
        while True:
            await asyncio.sleep(interval_ms / 1000)
            async with sending:
                await send()
            interval_ms = min(interval_ms * 2, request.max_batch_ms)

    final: Any = None
    ticker = asyncio.create_task(every_batch())
    try:
        async for event in model.stream_response(
            system_instructions=call.system_instructions,
            input=call.input,
            model_settings=call.model_settings,
            tools=tools,  # type: ignore[arg-type]
            output_schema=None,
            handoffs=[],
            tracing=ModelTracing.DISABLED,
            previous_response_id=call.previous_response_id,
            conversation_id=call.conversation_id,
            prompt=None,
        ):
            kind = getattr(event, "type", None)
            if kind == TEXT_DELTA:
                batches.add(getattr(event, "delta", "") or "")
            elif kind == "response.completed":
                final = event.response  # type: ignore[union-attr]
            elif kind in ("response.failed", "response.incomplete", "error"):
                raise ApplicationError(f"the model's stream ended with {kind}")
    finally:
        # Never cut a batch's Signal short (it would be sent again).
        async with sending:
            ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
    # The text not published yet goes back with the response: the session
    # publishes it itself, before the turn goes on, at no Signal's cost.
    if final is None:
        raise ApplicationError("the model's stream ended without a response")
    response = ModelResponse(
        output=list(final.output), usage=_usage(final.usage), response_id=final.id
    )
    return StreamedCallResult(response=response, published=published)


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage(requests=1)
    return Usage(
        requests=1,
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        total_tokens=usage.total_tokens or 0,
        input_tokens_details=InputTokensDetails(
            cached_tokens=getattr(usage.input_tokens_details, "cached_tokens", 0) or 0,
            cache_write_tokens=getattr(usage.input_tokens_details, "cache_write_tokens", 0) or 0,
        ),
        output_tokens_details=OutputTokensDetails(
            reasoning_tokens=getattr(usage.output_tokens_details, "reasoning_tokens", 0) or 0
        ),
    )
