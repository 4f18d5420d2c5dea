"""Replay every workflow type against histories recorded from real runs,
including a continue-as-new chain. Set RECORD_HISTORIES=tests/histories to
keep fresh recordings for tests/test_recorded_histories.py."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory

from meshkit.mesh import Mesh, connect
from orchestrator.contract import ApprovalDecision, SessionConfig
from orchestrator.session_client import SessionClient
from tests.helpers import (
    SCRIPTED,
    ScriptedModel,
    call,
    finance_replayer,
    it_replayer,
    replayer,
    say,
)
from tests.reliability import count

pytestmark = pytest.mark.asyncio


def record(prefix: str, history: WorkflowHistory, run: str = "") -> None:
    if directory := os.environ.get("RECORD_HISTORIES"):
        name = f"{prefix}-{history.workflow_id}{'-' + run[:8] if run else ''}.json"
        Path(directory, name).write_text(history.to_json())


async def test_a_continue_as_new_chain_replays(client: Client, running_mesh: Mesh) -> None:
    config = SessionConfig.for_mesh(running_mesh, model="offline", max_run_history_bytes=50_000)
    handle = await SessionClient(client, running_mesh).open(
        f"chain-{uuid.uuid4().hex[:6]}", config=config
    )
    for n in range(40):
        assert (await handle.send(f"What is {n} * 3?", 60)).ok
    reply = await handle.send("What did I ask before?", 60)
    assert "What is 39 * 3?" in reply.text, "memory crosses the continue-as-new boundary"
    await handle.end()  # a closed last run replays to its end
    runs = [r async for r in client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) >= 3, "the session should have continued as new several times"
    # The first run, runs started by continue-as-new, and the last (open) run;
    # each replay sets up the agents plugin, which takes a second or two.
    ordered = sorted(runs, key=lambda r: r.start_time)
    for run in [*ordered[:3], ordered[-1]]:
        history = await client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history()
        await replayer().replay_workflow(history)
        record("chat", history, run.run_id)
    count("turns", 41)


async def test_a_session_that_streams_replays(client: Client, running_mesh: Mesh) -> None:
    # Streamed calls: an activity per call, its input read by Query, the text
    # published by Signals from inside the call (orchestrator.model_stream).
    config = SessionConfig.for_mesh(running_mesh, model="offline", stream=True)
    handle = await SessionClient(client, running_mesh).open(
        f"streamed-{uuid.uuid4().hex[:6]}", config=config
    )
    pieces: list[str] = []
    for text in ("What is 6 * 7?", "Tell me a joke", "What is 15 * 23?"):
        reply = await handle.send(text, 60, on_text=pieces.append)
        assert reply.ok
    assert pieces and "".join(pieces).endswith(reply.text)
    history = await handle.handle.fetch_history()
    assert '"streamed_model_call"' in history.to_json()
    await replayer().replay_workflow(history)
    record("chat", history)
    count("turns", 3)


async def test_every_team_workflow_type_replays(
    client: Client, running_mesh: Mesh, scripted_model: ScriptedModel
) -> None:
    config = SessionConfig.for_mesh(running_mesh, model=SCRIPTED)
    handle = await SessionClient(client, running_mesh).open(
        f"types-{uuid.uuid4().hex[:6]}", config=config
    )
    scripted_model.script(
        handle.id,
        call(
            ("jira_metrics", {"project": "OPS"}),
            ("stock_price", {"ticker": "MSFT"}),
            ("create_ticket", {"project": "OPS", "summary": "replay me", "description": ""}),
            ("submit_expense", {"amount": 150, "currency": "USD", "description": "replay dinner"}),
        ),
        say("all done"),
    )

    async def approve(pending):  # type: ignore[no-untyped-def]
        return ApprovalDecision(approve=True)

    reply = await handle.send("do everything", 60, approver=approve)
    assert sorted(t.state for t in reply.tools) == ["ok"] * 4
    record("chat", await handle.handle.fetch_history())
    for team, types, make_replayer in (
        ("it", ("JiraMetricsWorkflow", "CreateTicketWorkflow"), it_replayer),
        ("finance", ("StockPriceWorkflow", "SubmitExpenseWorkflow"), finance_replayer),
    ):
        team_client = await connect(running_mesh, running_mesh.team(team))
        for workflow_type in types:
            found = [
                w async for w in team_client.list_workflows(f"WorkflowType = '{workflow_type}'")
            ]
            assert found, f"no {workflow_type} ran"
            history = await team_client.get_workflow_handle(found[0].id).fetch_history()
            await make_replayer().replay_workflow(history)
            record(team, history)
