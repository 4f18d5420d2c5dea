"""A streamed model call publishes the model's text from inside the call and
keeps the model's input out of history: a session whose LiteLLM model streams
(an OpenAI-compatible fake over HTTP) gets its text in pieces, and the turn's
history holds neither the tool schemas nor the earlier conversation."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from werkzeug import Request, Response

from bench.history import count_actions, first_turn, turn_slice
from meshkit.mesh import Mesh
from orchestrator import span_header
from orchestrator.contract import SEND_MESSAGE
from orchestrator.model_stream import STREAMED_CALL_ACTIVITY
from orchestrator.models.streamed_call import TextBatches
from orchestrator.session import Session
from orchestrator.session_client import SessionClient
from tests.fakes import completion_response

pytestmark = pytest.mark.asyncio

MODEL = "openai/gpt-4o-mini"
EARLIER = "calc the first thing, marker-earlier-9137"
ANSWER = "The answer is 42, as the calculator says, and that is all there is to it."


class CalculatorFake:
    """Asks for the calculator, then answers from its result; streams when asked."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.hold = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: Request) -> Response:
        body = request.get_json()
        self.bodies.append(body)
        if self.hold.is_set():
            self.hold.clear()
            self.held.set()
            self.release.wait(30)
        stream = bool(body.get("stream"))
        if body["messages"][-1]["role"] == "tool":
            # Written over about half a second: a few batches of text.
            return completion_response(
                {"role": "assistant", "content": ANSWER}, stream=stream, delay_s=0.04
            )
        call = {
            "id": f"call_{uuid.uuid4().hex[:6]}",
            "type": "function",
            "function": {"name": "calculator", "arguments": json.dumps({"expression": "6 * 7"})},
        }
        return completion_response(
            {"role": "assistant", "content": None, "tool_calls": [call]},
            "tool_calls",
            stream=stream,
        )


async def open_session(client: Client, mesh: Mesh, stream: bool) -> Session:
    return await SessionClient(client, mesh).open(
        f"lean-{uuid.uuid4().hex[:8]}", model=MODEL, stream=stream
    )


async def nth_turn(handle: Session, n: int) -> list[Any]:
    """The history of the session's ``n``-th turn (from 0), without the others."""
    events = list((await handle.handle.fetch_history()).events)
    accepted = [
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        == SEND_MESSAGE
    ]
    turn, _ = turn_slice(events[accepted[n] :])
    return first_turn(turn)


def history_bytes(events: list[Any]) -> int:
    return sum(e.ByteSize() for e in events)


async def test_a_streamed_turn_publishes_its_text_and_keeps_the_models_input_out_of_history(
    client: Client, running_mesh: Mesh, httpserver: HTTPServer
) -> None:
    fake = CalculatorFake()
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(fake)
    streamed = await open_session(client, running_mesh, stream=True)
    plain = await open_session(client, running_mesh, stream=False)
    pieces: list[str] = []
    for handle in (streamed, plain):
        assert (await handle.send(EARLIER, 60)).ok
        reply = await handle.send(
            "and again", 60, on_text=pieces.append if handle is streamed else None
        )
        assert reply.ok and reply.text == ANSWER, reply.text
        assert [(t.name, t.ok) for t in reply.tools] == [("calculator", True)]
        assert (await handle.send("calc once more", 60)).ok

    # The text reached the client in pieces, published from inside the call,
    # in fewer pieces than the provider sent.
    assert 1 < len(pieces) < len(ANSWER) / 8 and "".join(pieces) == ANSWER
    assert [bool(body.get("stream")) for body in fake.bodies] == [True] * 6 + [False] * 6

    turn = await nth_turn(streamed, 1)
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in turn
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == [STREAMED_CALL_ACTIVITY, "calculator", STREAMED_CALL_ACTIVITY]
    # Tracing is off in this mesh: the plugin's span header is not stored.
    headers = [
        dict(e.activity_task_scheduled_event_attributes.header.fields)
        for e in turn
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert not [h for h in headers if span_header.HEADER in h], headers
    # Nor on the Signals that published the text.
    signals = [
        dict(e.workflow_execution_signaled_event_attributes.header.fields)
        for e in turn
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert signals and not [h for h in signals if span_header.HEADER in h], signals
    # What the model was sent (the earlier turn, every tool's schema) is not in history.
    sent = fake.bodies[2]
    description = sent["tools"][0]["function"]["description"]
    assert EARLIER in json.dumps(sent["messages"]) and description
    recorded = b"".join(event.SerializeToString() for event in turn)
    assert EARLIER.encode() not in recorded
    assert description.encode() not in recorded
    assert b'"parameters"' not in recorded and b"params_json_schema" not in recorded
    # Text goes out in a few batches, a Signal each, not one per piece; the
    # last one with the response, published by the session (no Signal).
    assert len(pieces) - 1 <= count_actions(turn)["signals"] <= len(pieces)

    # The plugin's streamed activity kept each call's input (what the provider
    # was sent) in history, and every stream event: far more than this.
    streamed_bytes = history_bytes(await nth_turn(streamed, 2))
    plain_bytes = history_bytes(await nth_turn(plain, 2))
    inputs = sum(len(json.dumps(body)) for body in fake.bodies[4:6])
    assert streamed_bytes * 2 < plain_bytes + inputs, (streamed_bytes, plain_bytes, inputs)


async def test_an_interrupt_cancels_a_streamed_model_call_in_flight(
    client: Client, running_mesh: Mesh, httpserver: HTTPServer
) -> None:
    fake = CalculatorFake()
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(fake)
    handle = await open_session(client, running_mesh, stream=True)
    fake.hold.set()
    turn = asyncio.ensure_future(handle.send("calc slowly", 60))
    await asyncio.to_thread(fake.held.wait, 30)
    assert "interrupted" in await handle.interrupt()
    reply = await turn
    fake.release.set()
    assert reply.interrupted and not reply.ok
    events = [e async for e in handle.handle.fetch_history_events()]
    assert any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED for e in events)
    # The session goes on.
    after = await handle.send("calc again", 60)
    assert after.ok and after.text == ANSWER


async def test_text_is_published_in_batches_of_what_came_since_the_last() -> None:
    batches = TextBatches()
    assert batches.take() is None
    for piece in ("The ", "answer ", "", "is 42."):
        batches.add(piece)
    assert batches.take() == "The answer is 42."
    assert batches.take() is None


async def test_the_span_header_dropped_is_the_one_the_agents_plugin_writes() -> None:
    from temporalio.openai_agents import _trace_interceptor

    assert _trace_interceptor.HEADER_KEY == span_header.HEADER


async def test_a_model_call_is_written_without_its_defaults_and_read_back_equal() -> None:
    from agents import ModelResponse, Usage
    from openai.types.responses import ResponseFunctionToolCall

    from orchestrator.model_stream import StreamedCallResult
    from orchestrator.payloads import MeshPayloadConverter

    call = ResponseFunctionToolCall.model_validate(
        {
            "arguments": "{}",
            "call_id": "call_1",
            "name": "get_ip",
            "type": "function_call",
            "provider_data": {"model": "m", "response_id": "r"},
        }
    )
    result = StreamedCallResult(
        response=ModelResponse(
            output=[call], usage=Usage(requests=1, input_tokens=5, total_tokens=5), response_id="x"
        ),
        published=3,
    )
    converter = MeshPayloadConverter()
    payload = converter.to_payloads([result])[0]
    assert b"request_usage_entries" not in payload.data and b"null" not in payload.data
    assert b"provider_data" in payload.data and b'"input_tokens":5' in payload.data
    assert converter.from_payloads([payload], [StreamedCallResult])[0] == result
