"""The LiteLLM path: a real HTTP round trip to a local OpenAI-compatible fake."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from temporalio.client import Client
from werkzeug import Request, Response

from meshkit.mesh import Mesh
from orchestrator.session_client import SessionClient
from tests.conftest import FAKE_LLM_KEY
from tests.fakes import completion_response as completion

pytestmark = pytest.mark.asyncio

MODEL = "openai/gpt-4o-mini"


class FakeProvider:
    """Asks for the calculator, then answers from its output."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []

    def __call__(self, request: Request) -> Response:
        body = request.get_json()
        self.requests.append(body)
        self.auth.append(request.headers.get("Authorization"))
        last = body["messages"][-1]
        if last["role"] == "tool":
            value = json.loads(last["content"])["value"]
            return completion(
                {"role": "assistant", "content": f"The answer is {value}."},
                "stop",
                stream=body.get("stream", False),
            )
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "calculator", "arguments": json.dumps({"expression": "6 * 7"})},
        }
        return completion(
            {"role": "assistant", "content": None, "tool_calls": [call]},
            "tool_calls",
            stream=body.get("stream", False),
        )


async def test_a_litellm_model_drives_the_tools_over_http(
    client: Client, running_mesh: Mesh, httpserver: HTTPServer
) -> None:
    provider = FakeProvider()
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(provider)
    handle = await SessionClient(client, running_mesh).open(
        f"llm-{uuid.uuid4().hex[:8]}", model=MODEL
    )
    reply = await handle.send("What is six times seven?", timeout_s=60)

    assert reply.ok and reply.text == "The answer is 42."
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("calculator", "local", True)]
    assert len(provider.requests) == 2
    first = provider.requests[0]
    assert first["model"] == "gpt-4o-mini"
    assert first["messages"][-1] == {"role": "user", "content": "What is six times seven?"}
    tools = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert set(tools) == {
        "calculator",
        "weather",
        "jira_metrics",
        "get_ip",
        "create_ticket",
        "set_project",
        "get_current_time",
        "convert_time",
        "stock_price",
        "calculate_roi",
        "submit_expense",
    }
    # Descriptions come from the teams' contracts, not an empty string.
    assert tools["stock_price"]["description"].startswith("Latest traded price of a stock")
    assert "ticker" in tools["stock_price"]["parameters"]["properties"]
    # The key is sent to the provider by the worker...
    assert provider.auth == [f"Bearer {FAKE_LLM_KEY}"] * 2
    # ...and never enters workflow history.
    history = await handle.handle.fetch_history()
    assert FAKE_LLM_KEY not in history.to_json()


async def test_a_provider_that_rejects_the_key_gets_a_clear_reply(
    client: Client, running_mesh: Mesh, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_json(
        {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
        status=401,
    )
    handle = await SessionClient(client, running_mesh).open(
        f"llm-{uuid.uuid4().hex[:8]}", model=MODEL
    )
    reply = await handle.send("What is six times seven?", timeout_s=60)
    assert not reply.ok
    assert "401" in reply.text or "API key" in reply.text
    # The session is still usable once the provider answers again.
    httpserver.clear()
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(
        FakeProvider()
    )
    assert (await handle.send("again", timeout_s=60)).text == "The answer is 42."
