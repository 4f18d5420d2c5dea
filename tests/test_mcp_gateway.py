"""The mesh as an MCP server, used with the official MCP client over
Streamable HTTP against the real mesh, in the handshake era and the current
revision: the teams' tools are listed as their catalogs publish them, calls
run durably in Temporal and once per key, the teams' refusals reach the
client in the teams' words, and the gateway has the API's users."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import mcp_types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import IncomingMessage
from mcp.client.subscriptions import ToolsListChanged
from temporalio import workflow
from temporalio.client import Client as TemporalClient
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from meshkit.mesh import Mesh
from meshkit.mesh import connect as connect_to
from meshkit.polling import poll_until
from meshkit.setup import ensure_endpoint
from meshkit.toolkit.door import APPROVAL_MEMO
from meshkit.toolkit.store import IdempotentStore
from orchestrator.contract import TeamRoute
from orchestrator.gateway.calls import CALL_WORKFLOW, CallOutcome, GatewayCall, call_workflow_id
from orchestrator.gateway.durable import DurableCalls
from orchestrator.gateway.workflows import McpCatalogs, McpToolCall
from tests.conftest import ALICE_TOKEN, WebApi
from tests.mcp_clients import connect, own_api

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["legacy", "2026-07-28"])
def mode(request: pytest.FixtureRequest) -> str:
    """The protocol era: the initialize handshake, or the current revision."""
    chosen: str = request.param
    return chosen


def keyed(key: str) -> Any:
    """A request's ``_meta`` carrying the call's idempotency key."""
    return {"idempotencyKey": key}


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
    reads = {name for name, hint in hints.items() if hint and hint.read_only_hint}
    # The teams' policies name their reads; IT's time server says its tools only read.
    assert {"calculate_roi", "stock_price", "get_ip", "jira_metrics"} <= reads
    assert {"get_current_time", "convert_time"} <= reads
    assert not reads & needing_approval
    assert all(hints[name].read_only_hint is False for name in needing_approval)  # type: ignore[union-attr]
    assert all(hints[name].destructive_hint is False for name in reads)  # type: ignore[union-attr]


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


async def test_a_workflow_backed_operation_answers_and_reports_progress(
    web_api: WebApi, mode: str
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with connect(web_api, mode) as mcp:
        result = await mcp.call_tool(
            "jira_metrics", {"project": "OPS"}, progress_callback=on_progress
        )
    assert not result.is_error, result.content
    # From the start to the end, against the team's timeout for the tool (120 s).
    assert seen[0] == (0, 120, "it team: jira_metrics started in Temporal")
    assert seen[-1] == (120, 120, "jira_metrics done")
    assert [p[0] for p in seen] == sorted(p[0] for p in seen)
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


def tickets_about(stores: Path, title: str) -> list[dict[str, Any]]:
    tickets = IdempotentStore(stores / "tickets.sqlite", "tickets").all()
    return [t for t in tickets if title in str(t)]


def answering(action: str, asked: list[str]) -> Any:
    async def elicit(context: Any, params: Any) -> mcp_types.ElicitResult:
        asked.append(params.message)
        content = {"note": "printer on floor 3"} if action == "accept" else None
        return mcp_types.ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    return elicit


async def test_a_call_that_needs_approval_is_refused_with_how_to_approve_without_elicitation(
    web_api: WebApi, mode: str, stores: Path
) -> None:
    title = f"mcp {uuid.uuid4().hex[:8]}"
    async with connect(web_api, mode) as mcp:
        result = await mcp.call_tool(
            "create_ticket", {"project": "OPS", "summary": title, "description": ""}
        )
    assert result.is_error
    text = text_of(result)
    assert "approval" in text and "web chat" in text and "nothing was done" in text
    assert "elicitation" in text
    assert tickets_about(stores, title) == []


async def test_an_approval_accepted_through_elicitation_files_once_with_the_mcp_user(
    web_api: WebApi, mode: str, stores: Path, running_mesh: Mesh
) -> None:
    title = f"mcp {uuid.uuid4().hex[:8]}"
    key = uuid.uuid4().hex
    asked: list[str] = []
    arguments = {"project": "OPS", "summary": title, "description": ""}
    async with connect(web_api, mode, elicitation_callback=answering("accept", asked)) as mcp:
        result = await mcp.call_tool("create_ticket", arguments, meta=keyed(key))
        again = await mcp.call_tool("create_ticket", arguments, meta=keyed(key))
    assert not result.is_error, result.content
    assert again.structured_content == result.structured_content
    assert "it team" in asked[0] and title in asked[0] and "notify people" in asked[0]
    assert len(tickets_about(stores, title)) == 1
    it_client = await connect_to(running_mesh, running_mesh.team("it"))

    async def approval_memo() -> dict[str, Any] | None:
        async for found in it_client.list_workflows("WorkflowType = 'CreateTicketWorkflow'"):
            described = await it_client.get_workflow_handle(found.id).describe()
            memo = await described.memo_value(APPROVAL_MEMO, default=None)
            if memo and memo["call_id"] == key:
                found_memo: dict[str, Any] = memo
                return found_memo
        return None

    memo = await poll_until(approval_memo, timeout_s=30, what="no approved ticket workflow")
    assert memo["approved_by"] == "alice" and memo["note"] == "printer on floor 3"


async def test_an_approval_declined_through_elicitation_files_nothing(
    web_api: WebApi, mode: str, stores: Path
) -> None:
    title = f"mcp {uuid.uuid4().hex[:8]}"
    asked: list[str] = []
    async with connect(web_api, mode, elicitation_callback=answering("decline", asked)) as mcp:
        result = await mcp.call_tool(
            "create_ticket", {"project": "OPS", "summary": title, "description": ""}
        )
    assert result.is_error and "declined" in text_of(result)
    assert len(asked) == 1
    assert tickets_about(stores, title) == []


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
    web_api: WebApi, mode: str, stores: Path, client: TemporalClient
) -> None:
    what = f"taxi {uuid.uuid4().hex[:8]}"
    arguments: dict[str, Any] = {"amount": 42.5, "currency": "EUR", "description": what}
    key = uuid.uuid4().hex
    meta: Any = {"idempotencyKey": key}
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
    # The call is a workflow of the orchestrator's namespace, named by the user's key.
    described = await client.get_workflow_handle(call_workflow_id("alice", key)).describe()
    assert described.workflow_type == "McpToolCall"


async def test_a_team_that_goes_away_leaves_the_list_and_clients_are_told(
    running_mesh: Mesh, mesh_file: Path, tmp_path: Path, mode: str
) -> None:
    own_file = tmp_path / "mesh.toml"
    own_file.write_text(mesh_file.read_text())
    changed = asyncio.Event()

    async def notified(message: IncomingMessage) -> None:
        if isinstance(message, mcp_types.ToolListChangedNotification):
            changed.set()

    def it_goes_away() -> None:
        # IT's endpoint now leads nowhere: no worker answers for the team.
        endpoint = running_mesh.teams["it"].endpoint
        own_file.write_text(
            own_file.read_text().replace(f'endpoint = "{endpoint}"', 'endpoint = "gone"')
        )

    async with own_api(own_file) as api, connect(api, mode, message_handler=notified) as mcp:
        before = {tool.name for tool in (await mcp.list_tools()).tools}
        assert {"get_ip", "calculate_roi"} <= before
        if mode == "legacy":
            it_goes_away()
            await asyncio.wait_for(changed.wait(), 30)
        else:
            async with mcp.listen(tools_list_changed=True) as events:
                it_goes_away()
                event = await asyncio.wait_for(anext(events), 30)
            assert isinstance(event, ToolsListChanged)
        after = {tool.name for tool in (await mcp.list_tools()).tools}
        assert "calculate_roi" in after and not after & {"get_ip", "jira_metrics"}
        stale = await mcp.call_tool("get_ip", {})
    assert stale.is_error and "get_ip" in text_of(stale) and "down" in text_of(stale)


async def test_a_team_whose_worker_does_not_answer_is_not_listed(
    running_mesh: Mesh, mesh_file: Path, tmp_path: Path
) -> None:
    # IT's service behind an endpoint whose task queue no worker polls: the
    # team as it is when its workers are stopped.
    it = running_mesh.team("it")
    idle = f"it-idle-{uuid.uuid4().hex[:6]}"
    await ensure_endpoint(await connect_to(running_mesh, it), idle, it.namespace, idle)
    own_file = tmp_path / "mesh.toml"
    own_file.write_text(
        mesh_file.read_text().replace(f'endpoint = "{it.endpoint}"', f'endpoint = "{idle}"')
    )
    async with own_api(own_file) as api, connect(api, "legacy") as mcp:
        listed = {tool.name for tool in (await mcp.list_tools()).tools}
        stale = await mcp.call_tool("get_ip", {})
    assert "calculate_roi" in listed and not listed & {"get_ip", "jira_metrics", "create_ticket"}
    assert stale.is_error and "get_ip" in text_of(stale)


def stdio_gateway(mesh_file: Path, token: str) -> StdioServerParameters:
    env = {
        **os.environ,
        "MESH_FILE": str(mesh_file),
        "MESH_API_TOKENS": f"alice:{ALICE_TOKEN}",
        "MESH_MCP_TOKEN": token,
    }
    return StdioServerParameters(
        command=sys.executable, args=["-m", "orchestrator.gateway"], env=env, cwd=str(ROOT)
    )


async def test_the_stdio_gateway_lists_and_calls_as_its_user(
    running_mesh: Mesh, mesh_file: Path, mode: str, client: TemporalClient
) -> None:
    key = uuid.uuid4().hex
    async with Client(stdio_gateway(mesh_file, ALICE_TOKEN), mode=mode) as mcp:
        tools = {tool.name for tool in (await mcp.list_tools()).tools}
        result = await mcp.call_tool(
            "calculate_roi",
            {"principal": 1000, "annual_rate": 10, "years": 2},
            meta=keyed(key),
        )
    assert {"get_ip", "calculate_roi", "create_ticket"} <= tools
    assert not result.is_error and result.structured_content is not None
    assert result.structured_content["final_value"] == 1210.0
    described = await client.get_workflow_handle(call_workflow_id("alice", key)).describe()
    assert (await described.memo())["user"] == "alice"


async def test_the_stdio_gateway_refuses_to_start_without_a_known_token(
    running_mesh: Mesh, mesh_file: Path
) -> None:
    params = stdio_gateway(mesh_file, "wrong-token-0123456789abcdef")
    process = await asyncio.create_subprocess_exec(
        params.command, *params.args, env=params.env, cwd=params.cwd,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1 and out == b""
    assert b"MESH_MCP_TOKEN must hold the bearer token" in err


async def test_ask_hands_a_question_to_the_mesh_agent_one_session_per_connection(
    web_api: WebApi, mode: str
) -> None:
    async with connect(web_api, mode) as mcp:
        listed = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        first = await mcp.call_tool("ask", {"question": "What is 15 * 23?"})
        second = await mcp.call_tool("ask", {"question": "What is 6 * 7?"})
    assert listed["ask"].output_schema is not None
    assert not first.is_error and first.structured_content is not None, first.content
    assert "345" in first.structured_content["reply"]
    assert first.structured_content["tools"] == ["calculator"]
    assert second.structured_content is not None and "42" in second.structured_content["reply"]
    async with httpx.AsyncClient(
        base_url=web_api.url, headers={"Authorization": f"Bearer {web_api.token}"}
    ) as api:
        mine = [s["id"] for s in (await api.get("/api/sessions")).json()]
    sessions = [first.structured_content["session"], second.structured_content["session"]]
    if mode == "legacy":
        # The connection's session carries on, and shows in the user's web chat.
        assert sessions[0] == sessions[1] and sessions[0] in mine
        assert second.structured_content["turn"] == first.structured_content["turn"] + 1
    else:
        # Stateless requests: a session per question, ended after its turn.
        assert sessions[0] != sessions[1] and not set(sessions) & set(mine)


async def test_ask_refuses_a_blank_question(web_api: WebApi, mode: str) -> None:
    async with connect(web_api, mode) as mcp:
        result = await mcp.call_tool("ask", {"question": ""})
    assert result.is_error and "question" in text_of(result)


@workflow.defn(name=CALL_WORKFLOW)
class UnversionedCall(McpToolCall):
    """The gateway's call workflow for a worker outside Worker Deployments
    (a workflow that declares a versioning behaviour needs one)."""

    @workflow.run
    async def run(self, call: GatewayCall) -> CallOutcome:
        return await super().run(call)


async def test_a_gateway_in_a_namespace_the_team_does_not_accept_is_refused(
    running_mesh: Mesh,
) -> None:
    # The gateway's workflows run by a worker of Finance's namespace, which IT
    # does not accept: IT's door refuses them, as it refuses any such caller.
    finance = running_mesh.team("finance").namespace
    client = await connect_to(
        running_mesh, running_mesh.team("finance"), data_converter=pydantic_data_converter
    )
    queue = f"gateway-{uuid.uuid4().hex[:8]}"
    # Unsandboxed: the sandbox would import this test module, and its HTTP
    # clients, again (the gateway's own workflows pass the sandbox: see below).
    unsandboxed = UnsandboxedWorkflowRunner()
    async with Worker(
        client, task_queue=queue, workflows=[UnversionedCall], workflow_runner=unsandboxed
    ):
        calls = DurableCalls(client, queue)
        it = running_mesh.team("it")
        outcome = await calls.call(
            GatewayCall(
                team="it",
                route=TeamRoute(endpoint=it.endpoint, service=it.service),
                operation="get_ip",
                arguments=None,
                timeout_s=20,
                user="alice",
            ),
            uuid.uuid4().hex,
        )
    assert not outcome.ok and outcome.error_type == "UNAUTHORIZED"
    assert outcome.error == (
        f"namespace {finance} may not call team it "
        f"(accepted: {running_mesh.orchestrator.namespace})"
    )


async def test_the_gateway_workflows_pass_the_workflow_sandbox(client: TemporalClient) -> None:
    # Building a worker checks each workflow in the sandbox, as the orchestrator's
    # worker does with ORCHESTRATOR_WORKFLOW_SANDBOX on.
    Worker(
        client,
        task_queue=f"sandbox-{uuid.uuid4().hex[:8]}",
        workflows=[McpToolCall, McpCatalogs],
        workflow_runner=SandboxedWorkflowRunner(),
    )


async def test_a_tool_a_team_imports_from_its_mcp_server_is_listed_and_called(
    web_api: WebApi, mode: str
) -> None:
    async with connect(web_api, mode) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        result = await mcp.call_tool(
            "get_current_time", {"timezone": "Asia/Tokyo"}, meta=keyed(uuid.uuid4().hex)
        )
    assert tools["get_current_time"].title == "get_current_time (it team)"
    assert not result.is_error, result.content
    assert "Asia/Tokyo" in text_of(result)
