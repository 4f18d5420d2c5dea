"""Streaming for models that answer all at once.

The session runs the agent with ``Runner.run_streamed`` so that the model's
text reaches clients as it is produced (the model activity publishes each
stream event to the session's stream). LiteLLM models stream natively; the
offline model and test models answer in one piece, and
:class:`StreamingModel` turns that answer into the same OpenAI Responses
stream events a hosted model sends: the text in pieces, then the completed
response, from which the Agents SDK builds the turn.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from agents import ModelResponse
from agents.items import TResponseStreamEvent
from agents.models.interface import Model
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseOutputMessage,
    ResponseTextDeltaEvent,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

PIECE_CHARS = 48
"""About how much text one delta carries: a few words. Each event is published
to the session (and kept in the model activity's result), so fewer, larger
pieces cost less per turn; 48 characters still reads as streaming."""


def pieces(text: str, size: int = PIECE_CHARS) -> list[str]:
    """``text`` cut into pieces of about ``size`` characters, at spaces where possible."""
    out: list[str] = []
    rest = text
    while len(rest) > size:
        cut = rest.rfind(" ", 0, size) + 1 or size
        out.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        out.append(rest)
    return out


async def stream_events(response: ModelResponse, model: str) -> AsyncIterator[TResponseStreamEvent]:
    """The stream events of a response that is already complete."""
    usage = response.usage
    final = Response(
        id=response.response_id or "resp_local",
        created_at=time.time(),
        model=model,
        object="response",
        output=list(response.output),  # type: ignore[arg-type]
        parallel_tool_calls=True,
        tool_choice="auto",
        tools=[],
        usage=ResponseUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
            input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
            output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
        ),
    )
    # No response.created event: the Agents SDK builds the turn from
    # response.completed alone, and every event costs a publish to the session.
    sequence = 0
    for index, item in enumerate(response.output):
        if not isinstance(item, ResponseOutputMessage):
            continue
        for part_index, part in enumerate(item.content):
            for piece in pieces(getattr(part, "text", "") or ""):
                sequence += 1
                yield ResponseTextDeltaEvent(
                    type="response.output_text.delta",
                    item_id=item.id,
                    output_index=index,
                    content_index=part_index,
                    delta=piece,
                    logprobs=[],
                    sequence_number=sequence,
                )
    yield ResponseCompletedEvent(
        type="response.completed", response=final, sequence_number=sequence + 1
    )


class StreamingModel(Model):
    """A model that streams by answering first, then replaying its answer as events."""

    def __init__(self, inner: Model, name: str) -> None:
        self.inner = inner
        self.name = name

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return await self.inner.get_response(*args, **kwargs)

    async def stream_response(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[TResponseStreamEvent]:
        response = await self.inner.get_response(*args, **kwargs)
        async for event in stream_events(response, self.name):
            yield event
