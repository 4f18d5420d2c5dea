"""Durable conversations: approvals, interrupt, status and usage, sessions, memory bounds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from meshkit.mesh import Mesh, connect
from meshkit.polling import poll_until
from meshkit.toolkit.store import IdempotentStore
from orchestrator.contract import (
    ApprovalDecision,
    PendingApproval,
    SessionConfig,
    SessionEnded,
    SessionError,
    SessionNotFound,
    SessionStatus,
    ToolCall,
)
from orchestrator.session import Session
from orchestrator.session_client import SessionClient
from orchestrator.session_watch import Approver
from orchestrator.workflow import INTERRUPTED
from tests.fakes import FakeMarket
from tests.helpers import SCRIPTED, ScriptedModel, call, say

pytestmark = pytest.mark.asyncio

EXPENSE = (
    "submit_expense",
    {"amount": 500, "currency": "EUR", "description": "Team offsite dinner"},
)


async def scripted_session(client: Client, mesh: Mesh, **config: object) -> Session:
    cfg = SessionConfig.for_mesh(mesh, model=SCRIPTED, **config)  # type: ignore[arg-type]
    return await SessionClient(client, mesh).open(f"conv-{uuid.uuid4().hex[:10]}", config=cfg)


def expenses(stores: Path) -> list[dict[str, object]]:
    return IdempotentStore(stores / "expenses.sqlite", "expenses").all()


def answering(
    approve: bool, note: str = "", asked: list[PendingApproval] | None = None
) -> Approver:
    async def approver(pending: PendingApproval) -> ApprovalDecision:
        if asked is not None:
            asked.append(pending)
        return ApprovalDecision(approve=approve, note=note)

    return approver


async def test_an_approved_expense_is_filed_once(
    client: Client, running_mesh: Mesh, scripted_model: ScriptedModel, stores: Path
) -> None:
    before = len(expenses(stores))
    handle = await scripted_session(client, running_mesh)
    scripted_model.script(handle.id, call(EXPENSE), say("Filed."))
    asked: list[PendingApproval] = []
    reply = await handle.send("file my dinner", 60, approver=answering(True, asked=asked))
    [pending] = asked
    assert pending.tool == "submit_expense" and pending.location == "finance"
    assert pending.arguments == {
        "amount": 500.0,
        "currency": "EUR",
        "description": "Team offsite dinner",
    }
    assert [(t.name, t.state) for t in reply.tools] == [("submit_expense", "ok")]
    after = expenses(stores)
    assert len(after) == before + 1
    assert after[-1]["description"] == "Team offsite dinner"


async def test_a_denied_call_does_nothing_and_the_model_is_told(
    client: Client, running_mesh: Mesh, scripted_model: ScriptedModel, stores: Path
) -> None:
    before = len(expenses(stores))
    handle = await scripted_session(client, running_mesh)
    scripted_model.script(handle.id, call(EXPENSE), say("OK, not filed."))
    reply = await handle.send("file it", 60, approver=answering(False, "too expensive"))
    [record] = reply.tools
    assert record.state == "denied" and "too expensive" in (record.error or "")
    assert len(expenses(stores)) == before
    output = next(
        i for i in scripted_model.seen[handle.id][-1] if i.get("type") == "function_call_output"
    )
    assert "denied" in output["output"] and "too expensive" in output["output"]


async def test_an_unanswered_approval_expires_with_a_clear_message(
    client: Client, running_mesh: Mesh, scripted_model: ScriptedModel, stores: Path
) -> None:
    before = len(expenses(stores))
    handle = await scripted_session(client, running_mesh, approval_timeout_s=1.5)
    scripted_model.script(handle.id, call(EXPENSE), say("It expired."))
    seen: list[ToolCall] = []
    reply = await handle.send("file it", 60, on_tool=seen.append)
    [record] = reply.tools
    assert record.state == "expired" and "expired after 2 s" in (record.error or "")
    assert len(expenses(stores)) == before
    assert "awaiting_approval" in [c.state for c in seen] or any(c.state == "expired" for c in seen)


async def test_small_expenses_need_no_approval_but_tickets_always_do(
    client: Client, running_mesh: Mesh, scripted_model: ScriptedModel
) -> None:
    handle = await scripted_session(client, running_mesh)
    small = (
        "submit_expense",
        {"amount": 12.5, "currency": "usd", "description": "Taxi to the office"},
    )
    ticket = ("create_ticket", {"project": "OPS", "summary": "Printer on fire", "description": ""})
    scripted_model.script(handle.id, call(small, ticket), say("Done."))
    asked: list[PendingApproval] = []
    reply = await handle.send("both", 60, approver=answering(True, asked=asked))
    assert [p.tool for p in asked] == ["create_ticket"]
    assert sorted((t.name, t.location, t.state) for t in reply.tools) == [
        ("create_ticket", "it", "ok"),
        ("submit_expense", "finance", "ok"),
    ]


async def test_status_shows_a_pending_approval_and_decide_answers_it(
    client: Client, running_mesh: Mesh, scripted_model: ScriptedModel
) -> None:
    handle = await scripted_session(client, running_mesh)
    scripted_model.script(handle.id, call(EXPENSE), say("Filed."))
    turn = asyncio.ensure_future(handle.send("file it", 60))
    status = await wait_for_status(handle, lambda s: s.state == "awaiting_approval")
    [pending] = status.pending_approvals
    assert pending.arguments["amount"] == 500
    with pytest.raises(SessionError, match="no call 'nope'"):
        await handle.decide(ApprovalDecision(call_id="nope", approve=True))
    assert "approved" in await handle.decide(ApprovalDecision(approve=True))
    assert (await turn).text == "Filed."
    assert (await handle.status()).state == "idle"


async def test_an_interrupt_cancels_a_slow_nexus_tool_and_the_next_turn_knows(
    client: Client, running_mesh: Mesh, scripted_model: ScriptedModel, fake_market: FakeMarket
) -> None:
    handle = await scripted_session(client, running_mesh)
    scripted_model.script(
        handle.id, call(("stock_price", {"ticker": "SLOW"})), say("Back to normal.")
    )
    turn = asyncio.ensure_future(handle.send("quote SLOW", 60))
    await wait_for_status(handle, lambda s: s.state == "running_tools")
    assert "interrupted" in await handle.interrupt()
    reply = await turn
    assert reply.interrupted and not reply.ok
    assert [(t.name, t.state, t.error) for t in reply.tools] == [
        ("stock_price", "error", "interrupted")
    ]
    # The Nexus operation's workflow in the finance namespace was cancelled too.
    finance = await connect(running_mesh, running_mesh.team("finance"))
    slow = [w async for w in finance.list_workflows("WorkflowId STARTS_WITH 'stock-price-SLOW-'")]
    states: list[WorkflowExecutionStatus | None] = []

    async def all_cancelled() -> bool:
        states[:] = [(await finance.get_workflow_handle(w.id).describe()).status for w in slow]
        return bool(states) and all(s == WorkflowExecutionStatus.CANCELED for s in states)

    await poll_until(
        all_cancelled,
        timeout_s=10,
        interval_s=0.2,
        what="the stock price workflows were not cancelled",
        explain=lambda: f"states {states}",
    )
    # The session is usable and the model sees that the last turn was interrupted.
    assert (await handle.send("hello again", 60)).text == "Back to normal."
    assert any(i.get("content") == INTERRUPTED for i in scripted_model.seen[handle.id][-1])
    with pytest.raises(SessionError, match="no turn is in progress"):
        await handle.interrupt()
    fake_market.release.set()  # let the abandoned backend request finish


async def test_usage_per_turn_and_in_total_matches_the_model(
    client: Client, running_mesh: Mesh, scripted_model: ScriptedModel
) -> None:
    handle = await scripted_session(client, running_mesh)
    scripted_model.script(
        handle.id,
        call(("calculator", {"expression": "2 + 2"})),  # 10 in, 5 out
        say("4", input_tokens=30, output_tokens=2),
        say("hi", input_tokens=50, output_tokens=1),
    )
    first = await handle.send("2 + 2?", 60)
    second = await handle.send("hi", 60)
    assert (first.usage.requests, first.usage.input_tokens, first.usage.output_tokens) == (2, 40, 7)
    assert (second.usage.requests, second.usage.input_tokens, second.usage.output_tokens) == (
        1,
        50,
        1,
    )
    status = await handle.status()
    assert status.usage_total.input_tokens == 90 and status.usage_total.output_tokens == 8
    assert status.usage_total.requests == 3
    assert status.usage_by_turn[1] == first.usage and status.usage_last_turn == second.usage
    assert status.tools_by_location == {"local": 1}


async def test_sessions_are_listed_resumed_from_another_client_and_ended(
    client: Client, running_mesh: Mesh
) -> None:
    name = f"resume-{uuid.uuid4().hex[:8]}"
    handle = await SessionClient(client, running_mesh).open(name, model="offline")
    await handle.send("What is 2 * 21?", 60)
    other = await connect(
        running_mesh, running_mesh.orchestrator, data_converter=client.data_converter
    )
    elsewhere = SessionClient(other, running_mesh)
    assert handle.id in [row.id for row in await elsewhere.list()]
    resumed = await elsewhere.attach(name)
    reply = await resumed.send("what did I ask before?", 60)
    assert "What is 2 * 21?" in reply.text
    await resumed.end()
    assert handle.id not in [row.id for row in await elsewhere.list()]
    with pytest.raises(SessionEnded, match="has ended"):
        await elsewhere.attach(name)
    with pytest.raises(SessionNotFound, match="no session"):
        await elsewhere.attach(f"missing-{uuid.uuid4().hex[:6]}")


# A thousand real turns take about four minutes on a 2-core machine.
@pytest.mark.timeout(900)
async def test_a_thousand_turns_stay_bounded_and_remember_recent_turns(
    client: Client, running_mesh: Mesh
) -> None:
    handle = await SessionClient(client, running_mesh).open(
        f"long-{uuid.uuid4().hex[:8]}", model="offline"
    )
    for n in range(1000):
        text = f"What is {n} + 1?" if n % 2 == 0 else f"Note {n}: hello"
        reply = await handle.send(text, 60)
        assert reply.ok, reply.text
    recall = await handle.send("What did I ask before?", 60)
    assert "What is 998 + 1?" in recall.text and "Note 999: hello" in recall.text
    assert "What is 0 + 1?" not in recall.text
    status = await handle.status()
    assert status.turn == 1001 and status.runs > 1 and status.compacted_turns > 0
    # Every run of the session stayed far below Temporal's 50 MB limit.
    sizes = []
    async for run in client.list_workflows(f"WorkflowId = '{handle.id}'"):
        history = await client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history()
        sizes.append(sum(event.ByteSize() for event in history.events))
    assert len(sizes) == status.runs
    limit = SessionConfig(teams={}).max_run_history_bytes
    assert max(sizes) < limit * 1.5, sizes


async def wait_for_status(
    handle: Session, predicate: Callable[[SessionStatus], bool], timeout_s: float = 30
) -> SessionStatus:
    last: list[SessionStatus] = []

    async def matching() -> SessionStatus | None:
        last[:] = [await handle.status()]
        return last[0] if predicate(last[0]) else None

    return await poll_until(
        matching,
        timeout_s=timeout_s,
        interval_s=0.1,
        what="the session's status never matched",
        explain=lambda: f"last: {last[0] if last else None}",
    )
