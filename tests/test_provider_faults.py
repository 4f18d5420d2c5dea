"""Provider faults behind LiteLLM: a local OpenAI-compatible fake misbehaves on purpose.

No workflow fails and none loops on workflow-task failures; every turn ends
with an answer or a clear message, and the session stays usable.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from temporalio.client import Client
from werkzeug import Request, Response

from meshkit.mesh import Mesh
from orchestrator.model_calls import RETRY
from orchestrator.session import Session
from orchestrator.session_client import SessionClient
from tests.fakes import completion_response as completion
from tests.reliability import assert_no_task_failures, count

pytestmark = pytest.mark.asyncio
MODEL = "openai/gpt-4o-mini"


# The session streams model calls, so the fake answers as a stream.
def text(content: str) -> Response:
    return completion({"role": "assistant", "content": content}, stream=True)


def tool_call(name: str, arguments: str) -> Response:
    call = {
        "id": f"call_{uuid.uuid4().hex[:6]}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    return completion(
        {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls", stream=True
    )


def error(status: int, message: str) -> Response:
    body = {"error": {"message": message, "type": "server_error", "code": status}}
    return Response(json.dumps(body), status=status, content_type="application/json")


class Script:
    """Answers requests in order; the last answer repeats."""

    def __init__(self, *answers: Callable[[Request], Response]) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request.get_json())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request)


def serve(httpserver: HTTPServer, script: Script) -> Script:
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(script)
    return script


async def session(client: Client, mesh: Mesh) -> Session:
    return await SessionClient(client, mesh).open(f"fault-{uuid.uuid4().hex[:8]}", model=MODEL)


def last_tool_output_is_42(request: Request) -> Response:
    messages = request.get_json()["messages"]
    outputs = [m["content"] for m in messages if m["role"] == "tool"]
    return text("It is 42." if outputs and '"value":42' in outputs[-1] else "no tool output seen")


CALC = tool_call("calculator", json.dumps({"expression": "6 * 7"}))


@pytest.mark.parametrize(
    ("fault", "answers"),
    [
        (
            "429 rate limit",
            [
                lambda r: error(429, "Rate limit reached"),
                lambda r: error(429, "Rate limit reached"),
            ],
        ),
        ("500 server error", [lambda r: error(500, "upstream exploded")]),
        ("503 overloaded", [lambda r: error(503, "overloaded")]),
    ],
)
async def test_transient_provider_errors_are_retried_with_backoff_and_the_turn_completes(
    client: Client,
    running_mesh: Mesh,
    httpserver: HTTPServer,
    fault: str,
    answers: list[Callable[[Request], Response]],
) -> None:
    script = serve(httpserver, Script(*answers, lambda r: CALC, last_tool_output_is_42))
    handle = await session(client, running_mesh)
    started = time.monotonic()
    reply = await handle.send("What is 6 * 7?", 90)
    assert reply.ok and reply.text == "It is 42.", reply.text
    assert len(script.requests) == len(answers) + 2
    # Temporal's retry policy waited between attempts (0.25 s, then 1 s).
    first = RETRY.initial_interval.total_seconds()
    waited = sum(first * RETRY.backoff_coefficient**i for i in range(len(answers)))
    assert time.monotonic() - started >= waited * 0.9
    await assert_no_task_failures(handle.handle)
    count("faults", len(answers))
    count("turns")


async def test_a_provider_that_times_out_is_retried_and_the_turn_completes(
    client: Client, running_mesh: Mesh, httpserver: HTTPServer
) -> None:
    def hang(request: Request) -> Response:
        time.sleep(4.5)  # longer than the worker's 3 s model timeout
        return text("too late")

    script = serve(httpserver, Script(hang, lambda r: CALC, last_tool_output_is_42))
    handle = await session(client, running_mesh)
    reply = await handle.send("What is 6 * 7?", 90)
    assert reply.ok and reply.text == "It is 42."
    assert len(script.requests) == 3
    await assert_no_task_failures(handle.handle)
    count("faults")
    count("turns")


async def test_a_rejected_key_gives_a_clear_message_and_the_session_recovers(
    client: Client, running_mesh: Mesh, httpserver: HTTPServer
) -> None:
    script = serve(httpserver, Script(lambda r: error(401, "Incorrect API key provided")))
    handle = await session(client, running_mesh)
    reply = await handle.send("What is 6 * 7?", 90)
    assert not reply.ok and "401" in reply.text
    assert len(script.requests) == 1, "an authentication error is not retried"
    httpserver.clear()
    serve(httpserver, Script(lambda r: CALC, last_tool_output_is_42))
    assert (await handle.send("What is 6 * 7?", 90)).text == "It is 42."
    await assert_no_task_failures(handle.handle)
    count("faults")
    count("turns", 2)


async def test_malformed_tool_call_arguments_become_a_tool_error_the_model_sees(
    client: Client, running_mesh: Mesh, httpserver: HTTPServer
) -> None:
    def explain(request: Request) -> Response:
        tool_messages = [m for m in request.get_json()["messages"] if m["role"] == "tool"]
        return text(f"tool said: {tool_messages[-1]['content']}")

    serve(httpserver, Script(lambda r: tool_call("calculator", '{"expression": "6 * 7"'), explain))
    handle = await session(client, running_mesh)
    reply = await handle.send("What is 6 * 7?", 90)
    assert reply.ok and "not valid JSON" in reply.text
    assert [(t.name, t.state) for t in reply.tools] == [("calculator", "error")]
    await assert_no_task_failures(handle.handle)
    count("faults")
    count("turns")


async def test_a_call_to_an_unknown_tool_ends_the_turn_with_a_clear_message(
    client: Client, running_mesh: Mesh, httpserver: HTTPServer
) -> None:
    serve(
        httpserver, Script(lambda r: tool_call("delete_everything", "{}"), lambda r: text("fine"))
    )
    handle = await session(client, running_mesh)
    reply = await handle.send("Clean up", 90)
    assert not reply.ok and "delete_everything" in reply.text
    assert (await handle.send("hello", 90)).text == "fine"
    await assert_no_task_failures(handle.handle)
    count("faults")
    count("turns", 2)


async def test_a_model_that_never_stops_calling_tools_is_stopped(
    client: Client, running_mesh: Mesh, httpserver: HTTPServer
) -> None:
    script = serve(httpserver, Script(lambda r: CALC))
    handle = await session(client, running_mesh)
    reply = await handle.send("Loop", 90)
    assert not reply.ok and "stopped after 8 model calls" in reply.text
    assert len(script.requests) == 8
    await assert_no_task_failures(handle.handle)
    count("faults")
    count("turns")
