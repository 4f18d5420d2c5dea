"""The mesh as an MCP server, used with the official MCP client over
Streamable HTTP against the real mesh, in the handshake era and the current
revision: the teams' tools are listed as their catalogs publish them, calls
run durably in Temporal and once per key, the teams' refusals reach the
client in the teams' words, and the gateway has the API's users."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from meshkit.toolkit.store import IdempotentStore
from tests.conftest import WebApi

pytestmark = pytest.mark.asyncio


def connect(web_api: WebApi, mode: str, token: str | None = None) -> Client:
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token or web_api.token}"},
        timeout=httpx2.Timeout(30, read=300),
    )
    return Client(streamable_http_client(f"{web_api.url}/mcp", http_client=http), mode=mode)


@pytest.fixture(params=["legacy", "2026-07-28"])
def mode(request: pytest.FixtureRequest) -> str:
    """The protocol era: the initialize handshake, or the current revision."""
    chosen: str = request.param
    return chosen


def text_of(result: Any) -> str:
    text: str = result.content[0].text
    return text


async def test_the_list_shows_both_teams_tools_with_titles_schemas_and_policy_hints(
    web_api: WebApi, mode: str
) -> None:
    async with connect(web_api, mode) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
    assert {"stock_price", "calculate_roi", "submit_expense"} <= set(tools)
    assert {"jira_metrics", "get_ip", "create_ticket"} <= set(tools)
    roi = tools["calculate_roi"]
    assert roi.title == "calculate_roi (finance team)"
    assert roi.description and "compounded interest" in roi.description
    assert roi.input_schema["additionalProperties"] is False
    assert set(roi.input_schema["required"]) == {"principal", "annual_rate", "years"}
    assert roi.output_schema is not None and "roi_percent" in roi.output_schema["properties"]
    hints = {name: tool.annotations for name, tool in tools.items()}
    assert all(hint is not None for hint in hints.values())
    needing_approval = {name for name, hint in hints.items() if hint and hint.destructive_hint}
    assert {"create_ticket", "submit_expense"} <= needing_approval
    assert not needing_approval & {"calculate_roi", "stock_price", "get_ip", "jira_metrics"}


async def test_a_sync_operation_answers_with_structured_content_and_text(
    web_api: WebApi, mode: str
) -> None:
    async with connect(web_api, mode) as mcp:
        result = await mcp.call_tool(
            "calculate_roi", {"principal": 1000, "annual_rate": 10, "years": 2}
        )
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["final_value"] == 1210.0
    assert '"final_value": 1210.0' in text_of(result)


async def test_a_workflow_backed_operation_answers(web_api: WebApi, mode: str) -> None:
    async with connect(web_api, mode) as mcp:
        result = await mcp.call_tool("jira_metrics", {"project": "OPS"})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["project"] == "OPS"
    assert result.structured_content["total"] >= 0


async def test_bad_arguments_get_the_teams_own_message(web_api: WebApi, mode: str) -> None:
    async with connect(web_api, mode) as mcp:
        result = await mcp.call_tool(
            "calculate_roi", {"principal": -5, "annual_rate": 10, "years": 2}
        )
    assert result.is_error
    assert "principal" in text_of(result) and "greater than 0" in text_of(result)


async def test_an_unknown_tool_gets_a_clear_error(web_api: WebApi, mode: str) -> None:
    async with connect(web_api, mode) as mcp:
        result = await mcp.call_tool("no_such_tool", {})
    assert result.is_error
    assert "no_such_tool" in text_of(result) and "calculate_roi" in text_of(result)


async def test_a_call_that_needs_approval_is_refused_with_how_to_approve(
    web_api: WebApi, mode: str, stores: Path
) -> None:
    title = f"mcp {uuid.uuid4().hex[:8]}"
    async with connect(web_api, mode) as mcp:
        result = await mcp.call_tool(
            "create_ticket", {"project": "OPS", "summary": title, "description": None}
        )
    assert result.is_error
    text = text_of(result)
    assert "approval" in text and "web chat" in text and "nothing was done" in text
    tickets = IdempotentStore(stores / "tickets.sqlite", "tickets").all()
    assert not any(title in str(t) for t in tickets)


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789abcdef"])
async def test_no_token_or_a_wrong_one_gets_401(web_api: WebApi, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=web_api.url, headers=headers) as http:
        response = await http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_one_call_retried_with_one_key_runs_once(
    web_api: WebApi, mode: str, stores: Path
) -> None:
    what = f"taxi {uuid.uuid4().hex[:8]}"
    arguments: dict[str, Any] = {"amount": 42.5, "currency": "EUR", "description": what}
    meta: Any = {"idempotencyKey": uuid.uuid4().hex}
    async with connect(web_api, mode) as mcp:
        first = await mcp.call_tool("submit_expense", arguments, meta=meta)
    # Another connection, as a client that lost the first one would open.
    async with connect(web_api, mode) as mcp:
        again = await mcp.call_tool("submit_expense", arguments, meta=meta)
        # Without the key, the same arguments are a new claim.
        other = await mcp.call_tool("submit_expense", arguments)
    assert not first.is_error, first.content
    assert again.structured_content == first.structured_content
    assert not other.is_error and other.structured_content != first.structured_content
    claims = IdempotentStore(stores / "expenses.sqlite", "expenses").all()
    assert sum(what in str(c) for c in claims) == 2
