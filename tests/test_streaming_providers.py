"""Streaming through LiteLLM against local fakes of two providers' streaming wire
formats, OpenAI chat completions and Anthropic messages, tool calls included:
the reply reaches the client in pieces as the provider sends them, the tool
call streamed in pieces runs, and the session's events come in order."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from temporalio.client import Client
from werkzeug import Request, Response

from meshkit.mesh import Mesh
from orchestrator.contract import SessionEvent
from orchestrator.session_client import SessionClient
from tests.fakes import completion_response, sse_response

pytestmark = pytest.mark.asyncio

ANSWER = "The answer is 42, as the calculator says."
PACE_S = 0.1
"""Between two events of a stream: the model call publishes its text in batches
(250 ms, then longer), so a reply written over a second reaches the client in
pieces."""


class OpenAiFake:
    """Asks for the calculator, then answers from its result, always streaming."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: Request) -> Response:
        body = request.get_json()
        self.bodies.append(body)
        if body["messages"][-1]["role"] == "tool":
            return completion_response(
                {"role": "assistant", "content": ANSWER}, stream=True, delay_s=PACE_S
            )
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "calculator", "arguments": json.dumps({"expression": "6 * 7"})},
        }
        return completion_response(
            {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls", stream=True
        )


def anthropic_sse(blocks: list[dict[str, Any]], stop_reason: str, piece: int = 7) -> str:
    """An Anthropic messages response as the API streams it."""
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {
            "id": f"msg_{uuid.uuid4().hex[:8]}", "type": "message", "role": "assistant",
            "content": [], "model": "claude-sonnet-4-5", "stop_reason": None,
            "stop_sequence": None, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
    ]  # fmt: skip
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            text = block["text"]
            deltas = [
                {"type": "text_delta", "text": text[i : i + piece]}
                for i in range(0, len(text), piece)
            ]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            raw = json.dumps(block["input"])
            deltas = [
                {"type": "input_json_delta", "partial_json": raw[i : i + piece]}
                for i in range(0, len(raw), piece)
            ]
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": 12},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


class AnthropicFake:
    """The same conversation in Anthropic's messages format."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: Request) -> Response:
        body = request.get_json()
        self.bodies.append(body)
        last = body["messages"][-1]
        content = last.get("content")
        answered = isinstance(content, list) and any(
            part.get("type") == "tool_result" for part in content
        )
        if answered:
            text = anthropic_sse([{"type": "text", "text": ANSWER}], "end_turn")
            return sse_response(text, PACE_S)
        else:
            call = {"type": "tool_use", "id": "toolu_1", "name": "calculator",
                    "input": {"expression": "6 * 7"}}  # fmt: skip
            text = anthropic_sse([call], "tool_use")
        return Response(text, content_type="text/event-stream")


@pytest.mark.parametrize(
    ("model", "path", "fake"),
    [
        ("openai/gpt-4o-mini", "/v1/chat/completions", OpenAiFake),
        ("anthropic/claude-sonnet-4-5", re.compile(r".*/messages$"), AnthropicFake),
    ],
    ids=["openai", "anthropic"],
)
async def test_a_providers_stream_reaches_the_client_in_pieces_with_its_tool_call(
    client: Client,
    running_mesh: Mesh,
    httpserver: HTTPServer,
    model: str,
    path: Any,
    fake: type[OpenAiFake] | type[AnthropicFake],
) -> None:
    provider = fake()
    httpserver.expect_request(path, method="POST").respond_with_handler(provider)
    handle = await SessionClient(client, running_mesh).open(
        f"stream-{uuid.uuid4().hex[:8]}", model=model
    )
    pieces: list[str] = []
    events: list[SessionEvent] = []
    reply = await handle.send(
        "What is six times seven?", 60, on_text=pieces.append, on_event=events.append
    )

    assert reply.ok and reply.text == ANSWER, reply.text
    assert [(t.name, t.ok) for t in reply.tools] == [("calculator", True)]
    assert len(pieces) > 1 and "".join(pieces) == ANSWER
    assert all(body.get("stream") is True for body in provider.bodies) and len(provider.bodies) == 2
    kinds = [event.kind for event in events]
    assert kinds.index("tool_started") < kinds.index("tool_finished") < kinds.index("reply")
    first_piece = kinds.index("text_delta")
    assert kinds.index("tool_finished") < first_piece < kinds.index("reply")
