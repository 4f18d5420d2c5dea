"""Each worker killed with SIGKILL mid-turn, restarted: the turn completes, the
reply arrives, and every requested side effect happened exactly once.

The workers here are real processes with a mesh of their own (task queues and
endpoints), a LiteLLM model served by a local fake, and HTTP backends, all
configured with API keys, so the last test can check that no key leaked into
any history, payload or log line.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.client import Client

from meshkit.mesh import Mesh, connect
from meshkit.polling import poll_until
from orchestrator.contract import ApprovalDecision, ChatReply, SessionConfig, SessionStatus
from orchestrator.session import Session
from orchestrator.session_client import SessionClient
from tests.fakes import FakeExpenses, FakeJira, FakeLLM, FakeMarket
from tests.processes import OwnMesh, own_mesh
from tests.reliability import assert_no_task_failures, count, recovered

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRETS = {
    "LLM_API_KEY": "sk-live-LLMSECRET-7f3a9c",
    "OPENAI_API_KEY": "sk-openai-OPENAISECRET-11b2",
    "JIRA_API_TOKEN": "jira-JIRASECRET-5d8e",
    "EXPENSES_API_KEY": "exp-EXPSECRET-2c4f",
    "MARKET_DATA_API_KEY": "mkt-MKTSECRET-9a0b",
}


class Rig:
    def __init__(
        self, workers: OwnMesh, llm: FakeLLM, jira: FakeJira, expenses: FakeExpenses
    ) -> None:
        self.mesh, self.workers = workers.mesh, workers
        self.llm, self.jira, self.expenses = llm, jira, expenses
        self.sessions: list[str] = []


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    running_mesh: Mesh,
    fake_market: FakeMarket,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Rig]:
    llm, jira, expenses = FakeLLM(), FakeJira(ack_delay_s=4), FakeExpenses(ack_delay_s=4)
    env = {
        **SECRETS,
        "LLM_MODEL": "openai/gpt-4o-mini",
        "LLM_BASE_URL": llm.url,
        "LLM_TIMEOUT_S": "20",
        "JIRA_URL": jira.url,
        "JIRA_EMAIL": "bot@example.com",
        "EXPENSES_URL": expenses.url,
        "MARKET_DATA_URL": fake_market.url,
        "LOG_LEVEL": "DEBUG",
    }
    directory = tmp_path_factory.mktemp("kill9")
    async with own_mesh(running_mesh, directory, "k9", env=env) as workers:
        await workers.start_all()
        yield Rig(workers, llm, jira, expenses)
    llm.release.set()
    for fake in (llm, jira, expenses):
        fake.http.close()


async def new_session(client: Client, rig: Rig, **settings: object) -> Session:
    config = SessionConfig.for_mesh(rig.mesh, **settings)
    handle = await SessionClient(client, rig.mesh).open(f"k9-{uuid.uuid4().hex[:8]}", config=config)
    rig.sessions.append(handle.id)
    return handle


async def awaiting_approval(handle: Session) -> SessionStatus | None:
    status = await handle.status()
    return status if status.state == "awaiting_approval" else None


async def kill(rig: Rig, worker: str) -> float:
    """kill -9 of ``worker``, restarted at once; returns when it was killed."""
    killed = time.monotonic()
    await rig.workers[worker].restart_after_kill()
    count("faults")
    return killed


async def finish(
    turn: asyncio.Future[ChatReply], handle: Session, killed: float, fault: str
) -> ChatReply:
    reply = await asyncio.wait_for(turn, 120)
    recovered(fault, time.monotonic() - killed)
    await assert_no_task_failures(handle.handle)
    count("turns")
    return reply


@pytest.mark.parametrize(
    ("stream", "fault"),
    [
        # The LiteLLM model streams natively: its calls are activities.
        (None, "orchestrator in a streamed model call"),
        # A session that does not stream calls its model as local activities.
        (False, "orchestrator in a local-activity model call"),
    ],
)
async def test_orchestrator_killed_during_a_model_call(
    client: Client, rig: Rig, stream: bool | None, fault: str
) -> None:
    handle = await new_session(client, rig, stream=stream)
    rig.llm.hold()
    turn = asyncio.ensure_future(handle.send("please calc this", 120))
    await asyncio.to_thread(rig.llm.held.wait, 30)
    killed = await kill(rig, "orchestrator")
    rig.llm.release.set()
    reply = await finish(turn, handle, killed, fault)
    assert reply.ok and reply.text.startswith("done:") and '"value":42' in reply.text
    assert [(t.name, t.state) for t in reply.tools] == [("calculator", "ok")]
    events = [e async for e in handle.handle.fetch_history_events()]
    scheduled = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    model_activities = scheduled - {"calculator"}
    assert bool(model_activities) == (stream is None), scheduled


async def test_orchestrator_killed_during_a_nexus_operation(client: Client, rig: Rig) -> None:
    before = len(rig.expenses.records)
    rig.expenses.first_request.clear()
    handle = await new_session(client, rig)
    turn = asyncio.ensure_future(handle.send("expense 40 for lunch", 120))
    await asyncio.to_thread(rig.expenses.first_request.wait, 30)
    killed = await kill(rig, "orchestrator")
    reply = await finish(turn, handle, killed, "orchestrator in a Nexus operation")
    assert reply.ok and [(t.name, t.state) for t in reply.tools] == [("submit_expense", "ok")]
    assert len(rig.expenses.records) == before + 1
    count("records")


async def test_orchestrator_killed_during_an_approval_wait(client: Client, rig: Rig) -> None:
    before = len(rig.expenses.records)
    handle = await new_session(client, rig)
    turn = asyncio.ensure_future(handle.send("expense 900 for a conference", 180))
    status = await poll_until(
        lambda: awaiting_approval(handle),
        timeout_s=30,
        interval_s=0.1,
        what="the session did not wait for an approval",
    )
    assert status.pending_approvals[0].arguments["amount"] == 900
    killed = await kill(rig, "orchestrator")
    assert "approved" in await handle.decide(ApprovalDecision(approve=True))
    reply = await finish(turn, handle, killed, "orchestrator in an approval wait")
    assert reply.ok and [(t.name, t.state) for t in reply.tools] == [("submit_expense", "ok")]
    assert len(rig.expenses.records) == before + 1
    count("records")


async def test_it_worker_killed_while_jira_creates_a_ticket(client: Client, rig: Rig) -> None:
    before = len(rig.jira.issues)
    rig.jira.created.clear()
    handle = await new_session(client, rig)
    turn = asyncio.ensure_future(handle.send("open a ticket about the VPN", 180, approver=_approve))
    await asyncio.to_thread(rig.jira.created.wait, 30)
    killed = await kill(rig, "it")
    reply = await finish(turn, handle, killed, "it in a Jira call")
    assert reply.ok and [(t.name, t.state) for t in reply.tools] == [("create_ticket", "ok")]
    assert len(rig.jira.issues) == before + 1, "the retry found the ticket by its label"
    count("records")


async def test_finance_worker_killed_while_the_expenses_api_answers(
    client: Client, rig: Rig
) -> None:
    before = len(rig.expenses.records)
    rig.expenses.first_request.clear()
    handle = await new_session(client, rig)
    turn = asyncio.ensure_future(handle.send("expense 60 for a taxi", 120))
    await asyncio.to_thread(rig.expenses.first_request.wait, 30)
    killed = await kill(rig, "finance")
    reply = await finish(turn, handle, killed, "finance in an expenses call")
    assert reply.ok and [(t.name, t.state) for t in reply.tools] == [("submit_expense", "ok")]
    assert len(rig.expenses.records) == before + 1
    assert len(rig.expenses.requests) > before + 1, "the retry reached the API with the same key"
    count("records")


async def test_no_key_appears_in_any_history_payload_or_log(
    client: Client, rig: Rig, running_mesh: Mesh
) -> None:
    # The keys were really in use...
    assert f"Bearer {SECRETS['LLM_API_KEY']}" in rig.llm.auth
    assert any(a and a.startswith("Basic ") for a in rig.jira.auth)
    # ...and never left the workers' memory: not in any workflow history of any
    # namespace (inputs, results, failures, memos), nor in any log line.
    checked = 0
    for namespace in (rig.mesh.orchestrator, *rig.mesh.teams.values()):
        ns_client = await connect(rig.mesh, namespace)
        async for execution in ns_client.list_workflows():
            history = await ns_client.get_workflow_handle(
                execution.id, run_id=execution.run_id
            ).fetch_history()
            dumped = history.to_json()
            for name, secret in SECRETS.items():
                assert secret not in dumped, f"{name} found in the history of {execution.id}"
            checked += 1
    logs = rig.workers.logs()
    assert "DEBUG" in logs, "the workers logged at debug level"
    for name, secret in SECRETS.items():
        assert secret not in logs, f"{name} found in a worker log"
    assert checked >= len(rig.sessions)
    count("records", checked)


async def _approve(pending):  # type: ignore[no-untyped-def]
    return ApprovalDecision(approve=True)
