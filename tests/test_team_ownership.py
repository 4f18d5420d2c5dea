"""Teams own their tools: catalogs served by the teams, enforced at their door.

A team adds, removes or renames a tool by restarting only its own worker; a new
team joins with a mesh file entry, setup and its worker; open sessions pick up
the change through the catalog while the orchestrator keeps running. The
team's worker refuses calls without an approval record, and calls from
namespaces it does not accept; a team that is down leaves the turn without
its tools instead of failing it.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nexusrpc
import pytest
import pytest_asyncio
from nexusrpc.handler import StartOperationContext
from pydantic import BaseModel
from temporalio import workflow
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.operatorservice.v1 import ListNexusEndpointsRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import NexusOperationError
from temporalio.worker import Worker

from meshkit.mesh import Mesh, TeamConfig, connect
from meshkit.polling import poll_until
from meshkit.setup import setup_mesh
from meshkit.toolkit.door import APPROVAL_MEMO, WORKFLOW_EVENT_LINK, TeamDoor
from meshkit.toolkit.policy import ApprovalRecord, arguments_digest
from orchestrator.contract import ApprovalDecision, PendingApproval, SessionConfig, SessionError
from orchestrator.failures import root_message
from orchestrator.session_client import SessionClient
from tests.helpers import SCRIPTED, ScriptedModel, call, say
from tests.processes import WorkerProcess, own_mesh
from tests.teams.fx import write_team

pytestmark = pytest.mark.asyncio


# --- a new team, and a tool added and removed ------------------------------------------


@dataclass
class FxTeam:
    mesh: Mesh
    root: Path
    package: str
    worker: WorkerProcess

    async def ship(self, operations: list[str]) -> None:
        """What the team does to ship: change its own package, restart its own worker."""
        write_team(self.root, self.package, operations)
        await self.worker.stop()
        await self.worker.start()


@pytest_asyncio.fixture(scope="module")
async def fx(running_mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FxTeam]:
    """A team that is not in the repository: its package, mesh entry, setup, worker."""
    suffix = uuid.uuid4().hex[:6]
    root = tmp_path_factory.mktemp("teams")
    package = f"fx_{suffix}"
    write_team(root, package, ["fx_rate"])
    team = TeamConfig(
        namespace=f"fx-{suffix}",
        task_queue=f"fx-{suffix}",
        service="FxService",
        endpoint=f"fx-{suffix}",
        package=package,
    )
    mesh = running_mesh.model_copy(update={"teams": {**running_mesh.teams, "fx": team}})
    sys.path.insert(0, str(root))  # setup reads the team's catalog for the endpoint
    try:
        async with own_mesh(mesh, root, env={"PYTHONPATH": str(root)}) as own:
            changes = {c.name: c.action for c in own.changes}
            assert changes[team.namespace] == "created" and changes[team.endpoint] == "created"
            worker = await own.start("fx")
            yield FxTeam(mesh, root, package, worker)
    finally:
        sys.path.remove(str(root))


async def orchestrator_pollers(client: Client, mesh: Mesh) -> set[str]:
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=mesh.orchestrator.namespace,
            task_queue=TaskQueue(name=mesh.orchestrator.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return {poller.identity for poller in described.pollers}


async def test_a_new_team_is_used_by_a_new_session_without_an_orchestrator_restart(
    client: Client, fx: FxTeam
) -> None:
    config = SessionConfig.for_mesh(fx.mesh, model="offline")
    handle = await SessionClient(client, fx.mesh).open(f"fx-{uuid.uuid4().hex[:8]}", config=config)
    reply = await handle.send("fx_rate base=USD quote=EUR", 60)
    assert reply.ok, reply.text
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("fx_rate", "fx", True)]
    assert "rate: 0.5" in reply.text
    status = await handle.status()
    assert status.teams == {"it": "available", "finance": "available", "fx": "available"}


async def test_a_new_teams_tool_is_reached_by_the_phrasing_its_team_published(
    client: Client, fx: FxTeam
) -> None:
    config = SessionConfig.for_mesh(fx.mesh, model="offline")
    handle = await SessionClient(client, fx.mesh).open(f"fx-{uuid.uuid4().hex[:8]}", config=config)
    reply = await handle.send("What's the exchange rate from USD to EUR?", 60)
    assert reply.ok, reply.text
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("fx_rate", "fx", True)]
    assert json.loads(reply.tools[0].arguments) == {"base": "USD", "quote": "EUR"}
    assert "rate: 0.5" in reply.text


async def test_a_team_added_to_the_mesh_file_reaches_a_session_created_through_the_running_api(
    running_mesh: Mesh, fx: FxTeam, tmp_path: Path
) -> None:
    import httpx
    import uvicorn

    from meshdev.dev_server import free_port
    from orchestrator.api.app import create_app
    from orchestrator.api.auth import load_users

    # The API starts from a mesh file without the team, and keeps running.
    mesh_file = tmp_path / "mesh.toml"
    mesh_file.write_text(running_mesh.to_toml())
    token = "carol-token-0123456789abcdef"
    app = create_app(
        running_mesh, load_users({"MESH_API_TOKENS": f"carol:{token}"}), mesh_file=mesh_file
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.ensure_future(server.serve())
    await poll_until(lambda: server.started or None, timeout_s=30, what="the API did not start")
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ) as api:

            async def teams_of_a_new_session() -> tuple[str, set[str]]:
                created = await api.post("/api/sessions")
                assert created.status_code == 201, created.text
                session = created.json()["id"]
                view = (await api.get(f"/api/sessions/{session}")).json()
                return session, set(view["status"]["teams"])

            _, before = await teams_of_a_new_session()
            assert before == set(running_mesh.teams)
            # The team joins: its entry in the mesh file (setup and worker are the fixture's).
            mesh_file.write_text(fx.mesh.to_toml())
            session, after = await teams_of_a_new_session()
            assert after == {*running_mesh.teams, "fx"}
            async with api.stream(
                "POST",
                f"/api/sessions/{session}/messages",
                json={"text": "fx_rate base=USD quote=EUR"},
            ) as r:
                lines = [line async for line in r.aiter_lines() if line.startswith("data: ")]
            events = [json.loads(line.removeprefix("data: ")) for line in lines]
            called = [
                (e["name"], e["location"], e["ok"]) for e in events if e["kind"] == "tool_finished"
            ]
            assert called == [("fx_rate", "fx", True)]
            assert "rate: 0.5" in events[-1]["text"]
    finally:
        server.should_exit = True
        await serving


async def test_setup_describes_a_teams_endpoint_from_its_catalog(
    client: Client, fx: FxTeam
) -> None:
    name = fx.mesh.team("fx").endpoint
    [endpoint] = (
        await client.operator_service.list_nexus_endpoints(ListNexusEndpointsRequest(name=name))
    ).endpoints
    description = json.loads(endpoint.spec.description.data)
    assert "`fx_rate` (sync, 60 s): Exchange rate between two currencies" in description
    assert "Callers: orchestrator" in description


async def test_a_tool_added_by_restarting_only_its_team_reaches_an_open_session(
    client: Client, fx: FxTeam
) -> None:
    before = await orchestrator_pollers(client, fx.mesh)
    config = SessionConfig.for_mesh(fx.mesh, model="offline", catalog_ttl_s=1)
    handle = await SessionClient(client, fx.mesh).open(f"fx-{uuid.uuid4().hex[:8]}", config=config)
    first = await handle.send("fx_convert amount=100 base=USD quote=EUR", 60)
    assert "fx_convert" not in [t.name for t in first.tools], "fx_convert is not offered yet"

    await fx.ship(["fx_rate", "fx_convert"])
    await asyncio.sleep(1.2)  # the session's catalog TTL
    reply = await handle.send("fx_convert amount=100 base=USD quote=EUR", 60)

    assert reply.ok, reply.text
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("fx_convert", "fx", True)]
    assert "converted: 50.0" in reply.text
    assert await orchestrator_pollers(client, fx.mesh) == before, "the orchestrator restarted"


async def test_a_call_to_a_tool_removed_since_the_catalog_was_fetched_is_a_clear_tool_error(
    client: Client, fx: FxTeam, scripted_model: ScriptedModel
) -> None:
    await fx.ship(["fx_rate", "fx_convert"])
    config = SessionConfig.for_mesh(fx.mesh, model=SCRIPTED, catalog_ttl_s=3600)
    handle = await SessionClient(client, fx.mesh).open(f"fx-{uuid.uuid4().hex[:8]}", config=config)
    rate = ("fx_rate", {"base": "USD", "quote": "EUR"})
    scripted_model.script(handle.id, call(rate), say("0.5"))
    assert (await handle.send("rate?", 60)).tools[0].ok

    await fx.ship(["fx_convert"])  # fx_rate is gone; the session's catalog still has it
    scripted_model.script(handle.id, call(rate), say("it is gone"), say("ok"))
    reply = await handle.send("rate again?", 60)

    [record] = reply.tools
    assert not record.ok
    assert "team fx no longer offers fx_rate" in (record.error or "")
    await handle.send("and now?", 60)
    offered = {tool.name for tool in scripted_model.tools_seen[handle.id]}
    assert "fx_rate" not in offered and "fx_convert" in offered, "the catalog was fetched again"


# --- a team that is down -----------------------------------------------------------------


async def test_a_team_that_is_down_leaves_the_turn_without_its_tools(
    client: Client, running_mesh: Mesh
) -> None:
    # IT's route points at an endpoint whose task queue no worker polls.
    down = running_mesh.isolated(f"down-{uuid.uuid4().hex[:6]}")
    await setup_mesh(down)
    teams = {**running_mesh.teams, "it": down.team("it")}
    mesh = running_mesh.model_copy(update={"teams": teams})
    handle = await SessionClient(client, mesh).open(
        f"down-{uuid.uuid4().hex[:8]}", config=SessionConfig.for_mesh(mesh)
    )
    reply = await handle.send(
        "What is my IP address and what is the ROI on 1000 at 10% for 2 years?", 60
    )

    assert reply.ok, reply.text
    assert [(t.name, t.ok) for t in reply.tools] == [("calculate_roi", True)]
    assert "1210.00" in reply.text
    assert set(reply.unavailable) == {"it"}
    assert "team it" in reply.text and "Unavailable right now" in reply.text
    status = await handle.status()
    assert status.teams["it"].startswith("unavailable") and status.teams["finance"] == "available"
    # Nobody polls IT's queue: the fetch times out, and the reason says so. A
    # team the session never heard from is asked twice in a row (catalog_misses).
    assert reply.unavailable["it"].startswith("no answer within 3 s, 2 times in a row"), (
        reply.unavailable
    )


# --- the offline model calls any tool by name --------------------------------------------


async def test_a_tool_named_with_its_arguments_is_called_in_its_team_namespace(
    client: Client, running_mesh: Mesh
) -> None:
    handle = await SessionClient(client, running_mesh).open(
        f"named-{uuid.uuid4().hex[:8]}", model="offline"
    )
    reply = await handle.send("calculate_roi principal=1000 annual_rate=10 years=2", 60)
    assert reply.ok
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("calculate_roi", "finance", True)]
    assert "1210.00" in reply.text


# --- a session chooses its tools ----------------------------------------------------------


async def test_a_session_limited_to_some_teams_and_tools_offers_only_those(
    client: Client, running_mesh: Mesh
) -> None:
    handle = await SessionClient(client, running_mesh).open(
        f"limit-{uuid.uuid4().hex[:8]}", model="offline"
    )
    allowed = await handle.limit_tools(["it", "calculator"])
    # IT's tools: its contract's, and those of the MCP time server it publishes.
    assert allowed == [
        "calculator",
        "convert_time",
        "create_ticket",
        "get_current_time",
        "get_ip",
        "jira_metrics",
        "set_project",
    ]

    with pytest.raises(SessionError, match="no team or tool is called 'nope'"):
        await handle.limit_tools(["it", "nope"])
    assert (await handle.status()).tool_limit == ["it", "calculator"]

    roi = await handle.send("ROI on 1000 at 10% for 2 years", 60)
    assert not roi.tools and "calculate_roi" not in roi.text
    product = await handle.send("What is 6 * 7?", 60)
    assert [t.name for t in product.tools] == ["calculator"] and "42" in product.text


async def test_a_session_started_with_an_unknown_tool_says_so_and_changes_nothing(
    client: Client, running_mesh: Mesh
) -> None:
    config = SessionConfig.for_mesh(running_mesh, model="offline", tools=["finance", "teleport"])
    handle = await SessionClient(client, running_mesh).open(
        f"lim-{uuid.uuid4().hex[:8]}", config=config
    )
    reply = await handle.send("What is 6 * 7?", 60)
    assert not reply.ok and not reply.tools
    assert "no team or tool is called 'teleport'" in reply.text


# --- the team's door -------------------------------------------------------------------


class DirectCall(BaseModel):
    endpoint: str
    service: str
    operation: str
    arguments: dict[str, Any] | None
    headers: dict[str, str] = {}


@workflow.defn(sandboxed=False)
class DirectCaller:
    """Any workflow calling a team's operation, as another program might."""

    @workflow.run
    async def run(self, request: DirectCall) -> str:
        client = workflow.create_nexus_client(service=request.service, endpoint=request.endpoint)
        try:
            result = await client.execute_operation(
                request.operation,
                request.arguments,
                headers=request.headers or None,
                schedule_to_close_timeout=timedelta(seconds=30),
            )
        except NexusOperationError as err:
            return f"refused: {root_message(err)}"
        return f"ok: {json.dumps(result)}"


@dataclass
class Caller:
    client: Client
    task_queue: str

    async def call(
        self,
        mesh: Mesh,
        team: str,
        operation: str,
        arguments: dict[str, Any] | None,
        **headers: str,
    ) -> str:
        request = DirectCall(
            endpoint=mesh.team(team).endpoint,
            service=mesh.team(team).service,
            operation=operation,
            arguments=arguments,
            headers=headers,
        )
        return await self.client.execute_workflow(
            DirectCaller.run,
            request,
            id=f"direct-{uuid.uuid4().hex[:8]}",
            task_queue=self.task_queue,
            execution_timeout=timedelta(seconds=60),
        )


async def caller_in(mesh: Mesh, namespace: str) -> AsyncIterator[Caller]:
    client = await Client.connect(
        mesh.temporal.default_address, namespace=namespace, data_converter=pydantic_data_converter
    )
    queue = f"direct-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[DirectCaller]):
        yield Caller(client, queue)


@pytest_asyncio.fixture
async def orchestrator_caller(running_mesh: Mesh) -> AsyncIterator[Caller]:
    async for caller in caller_in(running_mesh, running_mesh.orchestrator.namespace):
        yield caller


@pytest_asyncio.fixture
async def finance_caller(running_mesh: Mesh) -> AsyncIterator[Caller]:
    async for caller in caller_in(running_mesh, running_mesh.team("finance").namespace):
        yield caller


TICKET = {"project": "OPS", "summary": "Printer on fire", "description": ""}


def record_for(tool: str, arguments: dict[str, Any], by: str = "carol") -> ApprovalRecord:
    return ApprovalRecord(
        tool=tool,
        call_id="call-1",
        approved_by=by,
        approved_at=datetime.now(UTC),
        arguments_sha256=arguments_digest(arguments),
    )


async def test_a_call_without_an_approval_record_is_refused_by_the_team(
    running_mesh: Mesh, orchestrator_caller: Caller
) -> None:
    ticket = await orchestrator_caller.call(running_mesh, "it", "create_ticket", TICKET)
    assert ticket.startswith("refused: create_ticket needs a person's approval"), ticket

    big = {"amount": 150, "currency": "EUR", "description": "Conference ticket"}
    expense = await orchestrator_caller.call(running_mesh, "finance", "submit_expense", big)
    assert expense.startswith("refused: submit_expense needs a person's approval"), expense

    small = {"amount": 15, "currency": "EUR", "description": "Coffee with a customer"}
    below = await orchestrator_caller.call(running_mesh, "finance", "submit_expense", small)
    assert below.startswith("ok: ") and '"status": "submitted"' in below


async def test_an_approval_record_for_other_arguments_or_another_tool_is_refused(
    running_mesh: Mesh, orchestrator_caller: Caller
) -> None:
    other = record_for("create_ticket", {**TICKET, "summary": "Something harmless"})
    changed = await orchestrator_caller.call(
        running_mesh, "it", "create_ticket", TICKET, **other.header()
    )
    assert "differ from the ones carol approved" in changed

    wrong_tool = record_for("submit_expense", TICKET)
    refused = await orchestrator_caller.call(
        running_mesh, "it", "create_ticket", TICKET, **wrong_tool.header()
    )
    assert "the approval record is for 'submit_expense'" in refused


async def test_an_approved_call_succeeds_and_the_team_keeps_who_approved_it(
    running_mesh: Mesh, orchestrator_caller: Caller
) -> None:
    record = record_for("create_ticket", TICKET, by="dave")
    result = await orchestrator_caller.call(
        running_mesh, "it", "create_ticket", TICKET, **record.header()
    )
    assert result.startswith("ok: ") and '"project": "OPS"' in result


async def test_a_ticket_approved_in_the_chat_shows_its_approver_in_the_it_namespace(
    client: Client, running_mesh: Mesh
) -> None:
    handle = await SessionClient(client, running_mesh).open(
        f"appr-{uuid.uuid4().hex[:8]}", model="offline"
    )

    async def alice(pending: PendingApproval) -> ApprovalDecision:
        return ApprovalDecision(approve=True, by="alice", note="urgent")

    reply = await handle.send("Create a ticket in OPS: the printer is broken", 60, approver=alice)
    assert reply.ok and [(t.name, t.ok) for t in reply.tools] == [("create_ticket", True)]

    it_client = await connect(running_mesh, running_mesh.team("it"))

    async def this_sessions_memos() -> list[dict[str, Any]] | None:
        # Visibility lags the workflow's start: list until the ticket shows.
        memos = []
        async for found in it_client.list_workflows("WorkflowType = 'CreateTicketWorkflow'"):
            described = await it_client.get_workflow_handle(found.id).describe()
            memo = await described.memo_value(APPROVAL_MEMO, default=None)
            if memo and memo["session"] == handle.id:
                memos.append(memo)
        return memos or None

    [memo] = await poll_until(
        this_sessions_memos, timeout_s=15, interval_s=0.25, what="the ticket's workflow is listed"
    )
    assert memo["approved_by"] == "alice" and memo["note"] == "urgent"
    assert memo["tool"] == "create_ticket" and memo["call_id"] == reply.tools[0].call_id


async def test_a_namespace_the_team_does_not_accept_is_refused(
    running_mesh: Mesh, finance_caller: Caller
) -> None:
    refused = await finance_caller.call(running_mesh, "it", "get_ip", None)
    assert refused == (
        f"refused: namespace {running_mesh.team('finance').namespace} may not call team it "
        f"(accepted: {running_mesh.orchestrator.namespace})"
    )


async def test_a_workflow_cannot_claim_another_namespace_with_a_link_header(
    running_mesh: Mesh, finance_caller: Caller
) -> None:
    # The mesh's dev server disallows the Nexus-Link header, so the forging
    # workflow's task fails and the call never reaches the team.
    forged = (
        f"<temporal:///namespaces/{running_mesh.orchestrator.namespace}/workflows/x/y/history"
        "?eventID=1&eventType=NexusOperationScheduled&referenceType=EventReference>; "
        'type="temporal.api.common.v1.Link.WorkflowEvent"'
    )
    with pytest.raises(Exception):  # noqa: B017 - the workflow times out; the call never ran
        await asyncio.wait_for(
            finance_caller.call(running_mesh, "it", "get_ip", None, **{"Nexus-Link": forged}), 10
        )


def start_context(links: list[str], callback_url: str | None) -> StartOperationContext:
    return StartOperationContext(
        service="ItService",
        operation="get_ip",
        headers={},
        task_cancellation=None,  # type: ignore[arg-type]
        request_id="r-1",
        callback_url=callback_url,
        inbound_links=[nexusrpc.Link(url=url, type=WORKFLOW_EVENT_LINK) for url in links],
    )


def link(namespace: str) -> str:
    return f"temporal:///namespaces/{namespace}/workflows/w/r/history?eventID=5"


def callback(namespace: str) -> str:
    return f"http://127.0.0.1:7243/namespaces/{namespace}/nexus/callback"


@pytest.mark.parametrize(
    ("links", "callback_url", "refusal"),
    [
        ([], callback("orchestrator"), "names no calling workflow"),
        ([link("finance")], callback("finance"), "namespace finance may not call team it"),
        # A forged link (a server that lets workflows set Nexus-Link) is caught by
        # the callback URL, which the caller cannot choose.
        ([link("orchestrator")], callback("finance"), "caller link (orchestrator) and callback"),
        ([link("orchestrator")], None, "and callback (none) disagree"),
        ([link("orchestrator"), link("finance")], callback("orchestrator"), "links name"),
    ],
)
def test_the_door_refuses_callers_it_cannot_trust(
    links: list[str], callback_url: str | None, refusal: str
) -> None:
    door = TeamDoor("it", {}, ["orchestrator"])
    with pytest.raises(nexusrpc.HandlerError, match=re.escape(refusal)):
        door.check_caller(start_context(links, callback_url))
    accepted = start_context([link("orchestrator")], callback("orchestrator"))
    assert door.check_caller(accepted) == "orchestrator"
