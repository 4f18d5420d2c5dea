"""Two replicas of every worker: a kill -9 of the replica holding a turn, and
the other replica carries the turn to its reply, every requested side effect
happening exactly once, with no worker restarted meanwhile.

The replica holding the turn is found, not guessed: the one whose connection
a fake backend is answering (the model, Jira, the expenses API), or, while a
session waits (for a Nexus operation, for an approval), the one that ran the
session's last workflow task and so has it cached (a workflow task's
completion records the worker's identity, ``<pid>@<host>``).

Each case reports the time from the kill to the reply
(:func:`tests.reliability.recovered`), beside test_kill9's single-replica
figures when both run. ``MESH_KILL_ROUNDS=N`` repeats each case N times for
a p95. The killed replica is started again after the reply, for the next case.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator

import psutil
import pytest
import pytest_asyncio
from temporalio.client import Client

from meshkit.failover import replica_env
from meshkit.mesh import Mesh
from meshkit.polling import poll_until
from orchestrator.contract import ApprovalDecision, ChatReply, SessionConfig
from orchestrator.failover import REPLICA_SESSION_TASK_TIMEOUT
from orchestrator.session import Session
from orchestrator.session_client import SessionClient
from tests.fakes import FakeExpenses, FakeJira, FakeLLM, FakeMarket
from tests.processes import OwnMesh, own_mesh
from tests.reliability import assert_no_task_failures, count, recovered

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPLICAS = 2
ROUNDS = range(int(os.environ.get("MESH_KILL_ROUNDS", "1")))
# The backends answer a second after recording the side effect: long enough
# for the kill to land mid-call, short enough that the time measured is the
# takeover, not the backend.
ACK_DELAY_S = 1.0


class Rig:
    def __init__(
        self, workers: OwnMesh, llm: FakeLLM, jira: FakeJira, expenses: FakeExpenses
    ) -> None:
        self.mesh, self.workers = workers.mesh, workers
        self.llm, self.jira, self.expenses = llm, jira, expenses


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    client: Client,
    running_mesh: Mesh,
    fake_market: FakeMarket,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Rig]:
    llm, jira, expenses = FakeLLM(), FakeJira(ACK_DELAY_S), FakeExpenses(ACK_DELAY_S)
    env = {
        # One build for every replica, also one restarted after the checkout changed.
        "MESH_BUILD_ID": "replicas",
        "LLM_MODEL": "openai/gpt-4o-mini",
        "LLM_BASE_URL": llm.url,
        "LLM_API_KEY": "sk-test",
        "LLM_TIMEOUT_S": "20",
        "JIRA_URL": jira.url,
        "JIRA_EMAIL": "bot@example.com",
        "JIRA_API_TOKEN": "jira-test",
        "EXPENSES_URL": expenses.url,
        "EXPENSES_API_KEY": "exp-test",
        "MARKET_DATA_URL": fake_market.url,
    }
    directory = tmp_path_factory.mktemp("replicas")
    async with own_mesh(running_mesh, directory, "rep", env=env) as workers:
        # The takeover settings a deployment with replicas runs (meshkit.failover).
        each = {name: replica_env(name) for name in workers.components}
        await workers.start_all(each, replicas=REPLICAS)
        rig = Rig(workers, llm, jira, expenses)
        await warm_up(client, rig)
        yield rig
    llm.release.set()
    for fake in (llm, jira, expenses):
        fake.http.close()


async def warm_up(client: Client, rig: Rig, turns: int = 6) -> None:
    """Turns enough that each replica, most likely, made model calls both ways:
    a replica that was never called pays seconds of lazy imports (LiteLLM's
    HTTP stack) on its first call, and a long-running replica does not."""

    async def turn(stream: bool | None) -> None:
        handle = await new_session(client, rig, stream=stream)
        assert (await handle.send("please calc this", 120)).ok

    await asyncio.gather(*(turn(stream) for stream in (None, False) for _ in range(turns)))


def replica_with_port(rig: Rig, component: str, port: int) -> str:
    """The replica of ``component`` whose TCP connection has local port ``port``."""
    for label in rig.workers.replicas(component):
        connections = psutil.Process(rig.workers[label].pid).net_connections("tcp")
        if any(c.laddr and c.laddr.port == port for c in connections):
            return label
    raise LookupError(f"no {component} replica has a connection from port {port}")


async def replica_caching(rig: Rig, handle: Session) -> str:
    """The orchestrator replica that completed the session's last workflow task."""
    identity = ""
    async for event in handle.handle.fetch_history_events():
        if event.HasField("workflow_task_completed_event_attributes"):
            identity = event.workflow_task_completed_event_attributes.identity
    return rig.workers.label_of(int(identity.split("@", 1)[0]))


async def new_session(client: Client, rig: Rig, **settings: object) -> Session:
    config = SessionConfig.for_mesh(rig.mesh, **settings)
    sessions = SessionClient(client, rig.mesh, task_timeout=REPLICA_SESSION_TASK_TIMEOUT)
    return await sessions.open(f"rep-{uuid.uuid4().hex[:8]}", config=config)


async def kill(rig: Rig, label: str) -> float:
    """kill -9 of one replica, not restarted; returns when it was killed."""
    assert len(rig.workers.replicas(rig.workers[label].name)) == REPLICAS, "a replica is missing"
    killed = time.monotonic()
    await rig.workers[label].kill()
    count("faults")
    return killed


async def finish(
    rig: Rig,
    label: str,
    turn: asyncio.Future[ChatReply],
    handle: Session,
    killed: float,
    fault: str,
) -> ChatReply:
    reply = await asyncio.wait_for(turn, 120)
    recovered(f"{fault} ({REPLICAS} replicas)", time.monotonic() - killed)
    await assert_no_task_failures(handle.handle)
    count("turns")
    await rig.workers[label].start()  # the next case has both replicas again
    return reply


@pytest.mark.parametrize("attempt", ROUNDS)
@pytest.mark.parametrize(
    ("stream", "fault"),
    [
        (None, "orchestrator in a streamed model call"),
        (False, "orchestrator in a local-activity model call"),
    ],
)
async def test_another_orchestrator_replica_finishes_a_model_call_whose_replica_died(
    client: Client, rig: Rig, stream: bool | None, fault: str, attempt: int
) -> None:
    handle = await new_session(client, rig, stream=stream)
    rig.llm.hold()
    turn = asyncio.ensure_future(handle.send("please calc this", 120))
    assert await asyncio.to_thread(rig.llm.held.wait, 30), "the model was never called"
    holder = replica_with_port(rig, "orchestrator", rig.llm.held_peer)
    killed = await kill(rig, holder)
    rig.llm.release.set()
    reply = await finish(rig, holder, turn, handle, killed, fault)
    assert reply.ok and reply.text.startswith("done:") and '"value":42' in reply.text
    assert [(t.name, t.state) for t in reply.tools] == [("calculator", "ok")]


@pytest.mark.parametrize("attempt", ROUNDS)
async def test_another_orchestrator_replica_receives_a_nexus_result_whose_caller_died(
    client: Client, rig: Rig, attempt: int
) -> None:
    before = len(rig.expenses.records)
    rig.expenses.first_request.clear()
    handle = await new_session(client, rig)
    turn = asyncio.ensure_future(handle.send("expense 40 for lunch", 120))
    assert await asyncio.to_thread(rig.expenses.first_request.wait, 30)
    holder = await replica_caching(rig, handle)
    killed = await kill(rig, holder)
    reply = await finish(rig, holder, turn, handle, killed, "orchestrator in a Nexus operation")
    assert reply.ok and [(t.name, t.state) for t in reply.tools] == [("submit_expense", "ok")]
    assert len(rig.expenses.records) == before + 1
    count("records")


@pytest.mark.parametrize("attempt", ROUNDS)
async def test_another_orchestrator_replica_takes_a_decision_for_a_session_whose_replica_died(
    client: Client, rig: Rig, attempt: int
) -> None:
    before = len(rig.expenses.records)
    handle = await new_session(client, rig)
    turn = asyncio.ensure_future(handle.send("expense 900 for a conference", 180))

    async def awaiting() -> bool:
        return (await handle.status()).state == "awaiting_approval"

    await poll_until(awaiting, timeout_s=30, interval_s=0.1, what="no approval was asked")
    holder = await replica_caching(rig, handle)
    killed = await kill(rig, holder)
    assert "approved" in await handle.decide(ApprovalDecision(approve=True))
    reply = await finish(rig, holder, turn, handle, killed, "orchestrator in an approval wait")
    assert reply.ok and [(t.name, t.state) for t in reply.tools] == [("submit_expense", "ok")]
    assert len(rig.expenses.records) == before + 1
    count("records")


@pytest.mark.parametrize("attempt", ROUNDS)
async def test_another_it_replica_finishes_a_ticket_whose_replica_died_in_the_jira_call(
    client: Client, rig: Rig, attempt: int
) -> None:
    before = len(rig.jira.issues)
    rig.jira.created.clear()
    handle = await new_session(client, rig)
    turn = asyncio.ensure_future(handle.send("open a ticket about the VPN", 180, approver=_approve))
    assert await asyncio.to_thread(rig.jira.created.wait, 30)
    holder = replica_with_port(rig, "it", rig.jira.created_peer)
    killed = await kill(rig, holder)
    reply = await finish(rig, holder, turn, handle, killed, "it in a Jira call")
    assert reply.ok and [(t.name, t.state) for t in reply.tools] == [("create_ticket", "ok")]
    assert len(rig.jira.issues) == before + 1, "the retry found the ticket by its label"
    count("records")


@pytest.mark.parametrize("attempt", ROUNDS)
async def test_another_finance_replica_finishes_a_claim_whose_replica_died_in_the_api_call(
    client: Client, rig: Rig, attempt: int
) -> None:
    before = len(rig.expenses.records)
    rig.expenses.first_request.clear()
    handle = await new_session(client, rig)
    turn = asyncio.ensure_future(handle.send("expense 60 for a taxi", 120))
    assert await asyncio.to_thread(rig.expenses.first_request.wait, 30)
    holder = replica_with_port(rig, "finance", rig.expenses.first_peer)
    killed = await kill(rig, holder)
    reply = await finish(rig, holder, turn, handle, killed, "finance in an expenses call")
    assert reply.ok and [(t.name, t.state) for t in reply.tools] == [("submit_expense", "ok")]
    assert len(rig.expenses.records) == before + 1
    assert len(rig.expenses.requests) > before + 1, "the retry reached the API with the same key"
    count("records")


async def _approve(pending):  # type: ignore[no-untyped-def]
    return ApprovalDecision(approve=True)
