"""The invariants a soak run checks once its faults have stopped.

- Every message the clients sent got exactly one reply, and its session's
  history (read through the Session API) holds its turn exactly once.
- Every side effect that was approved (or needed no approval) exists exactly
  once in its backend, and none that was denied or interrupted exists.
- No session is stuck: each is idle or ended within a deadline.
- Every closed workflow history of every namespace replays.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from meshkit.mesh import Mesh, NamespaceConfig, connect
from meshkit.team_worker import load_registration
from meshkit.toolkit.mcp_workflow import McpToolWorkflow
from orchestrator.contract import WORKFLOW_TYPE
from orchestrator.models.provider import LlmSettings
from orchestrator.session_client import SessionClient
from orchestrator.worker import agent_plugins
from orchestrator.workflow import ChatSessionWorkflow
from soak.rig import Rig
from soak.sessions import RETRIED, Message, SessionLog, retry

log = logging.getLogger("soak.checks")
CONCURRENT_CHECKS = 16


@dataclass
class Findings:
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    unwanted: int = 0
    """Side effects that exist although their call was denied or interrupted."""
    missing_effects: int = 0
    """Approved (or unapproved small) side effects whose turn replied ok but that do not exist."""
    unverified: int = 0
    """Replied messages of sessions whose history could not be read (the query
    failed), so whether their turn is there exactly once is unknown."""
    replayed: int = 0
    replay_failures: int = 0
    not_replayed: int = 0
    """Histories of runs still open at the end, which are not replayed."""
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(text)
        log.warning("%s", text)


async def check_messages(client: Client, mesh: Mesh, logs: list[SessionLog], out: Findings) -> None:
    """Every message replied once, and each session's history holds each turn once."""
    sessions = SessionClient(client, mesh)

    async def one(record: SessionLog) -> None:
        for message in record.messages:
            if message.reply is None:
                out.lost += 1
                out.problem(f"lost: {message.key} ({message.kind}): {message.error}")
        try:
            turns = await retry(sessions.session(record.id).history, time.monotonic() + 120)
        except Exception as err:
            out.problem(f"history of {record.id} unreadable: {type(err).__name__}: {err}")
            out.unverified += sum(1 for m in record.messages if m.reply is not None)
            return
        seen = Counter(turn.user for turn in turns)
        sent = Counter(m.text for m in record.messages)
        replied = Counter(m.text for m in record.messages if m.reply is not None)
        for text, count in seen.items():
            if count > sent[text]:
                out.duplicated += count - sent[text]
                out.problem(
                    f"duplicated: {record.id} ran {text!r} {count} times, sent {sent[text]}"
                )
        for text, count in replied.items():
            if seen[text] < count:
                out.lost += count - seen[text]
                out.problem(
                    f"lost: {record.id} replied to {text!r} but history has it {seen[text]} times"
                )
        numbers = [m.reply.turn for m in record.messages if m.reply is not None]
        if len(numbers) != len(set(numbers)):
            out.duplicated += len(numbers) - len(set(numbers))
            out.problem(f"duplicated: two messages of {record.id} got the same turn")

    await _each(one, logs)


def check_side_effects(rig: Rig, messages: list[Message], out: Findings) -> dict[str, int]:
    """Each side effect exactly once when it was wanted, never when it was not."""
    descriptions = {
        "jira": [str(issue["fields"].get("summary", "")) for issue in rig.jira.issues],
        "expenses": [
            str(record.get("description", "")) for record in rig.expenses.records.values()
        ],
    }
    wanted = 0
    for message in messages:
        if not message.backend:
            continue
        found = sum(1 for text in descriptions[message.backend] if message.token in text)
        if message.decision in ("denied", "interrupted"):
            if found:
                out.unwanted += found
                out.problem(f"{message.decision} but done {found} time(s): {message.key}")
            continue
        # Never decided (the team was unavailable, the decision refused): at most once.
        undecided = (
            message.kind in ("ticket", "expense_approval") and message.decision != "approved"
        )
        call_ok = (
            not undecided
            and message.reply is not None
            and any(
                call.ok and call.name in ("create_ticket", "submit_expense")
                for call in message.reply.tools
            )
        )
        if found > 1:
            out.duplicated += found - 1
            out.problem(f"side effect of {message.key} exists {found} times")
        elif call_ok and found == 0:
            out.missing_effects += 1
            out.problem(f"side effect of {message.key} reported done but missing")
        wanted += 1 if call_ok else 0
    return {
        "side_effects_expected": wanted,
        "jira_issues": len(rig.jira.issues),
        "expense_records": len(rig.expenses.records),
    }


async def check_stuck(
    client: Client, mesh: Mesh, logs: list[SessionLog], out: Findings, deadline_s: float = 60
) -> None:
    """Each session idle or ended within ``deadline_s``."""
    sessions = SessionClient(client, mesh)

    async def settled(record: SessionLog) -> None:
        session = sessions.session(record.id)
        deadline = time.monotonic() + deadline_s
        state = "unknown"
        while time.monotonic() < deadline:
            try:
                description = await session.handle.describe()
                if description.status != WorkflowExecutionStatus.RUNNING:
                    if description.status == WorkflowExecutionStatus.COMPLETED:
                        return
                    state = f"closed as {description.status}"
                    break
                state = (await session.status()).state
                if state in ("idle", "ended"):
                    return
            except RETRIED as err:
                state = f"unreachable: {err}"
            await asyncio.sleep(1.0)
        out.stuck += 1
        out.problem(f"stuck: {record.id} is {state}")

    await _each(settled, logs)


async def _each(check: Callable[[SessionLog], Awaitable[None]], logs: list[SessionLog]) -> None:
    """``check`` of every session, a few at a time (each asks the workers)."""
    limit = asyncio.Semaphore(CONCURRENT_CHECKS)

    async def limited(record: SessionLog) -> None:
        async with limit:
            await check(record)

    await asyncio.gather(*(limited(record) for record in logs))


async def _histories(
    client: Client, query: str | None, out: Findings
) -> AsyncIterator[WorkflowHistory]:
    async for execution in client.list_workflows(query):
        if execution.status == WorkflowExecutionStatus.RUNNING:
            # Replaying the open last run of a chain hangs with the agents plugin.
            out.not_replayed += 1
            continue
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        out.replayed += 1
        yield await retry(handle.fetch_history, time.monotonic() + 60)


def _replayers(mesh: Mesh) -> dict[str, tuple[NamespaceConfig, str | None, Replayer]]:
    replayers: dict[str, tuple[NamespaceConfig, str | None, Replayer]] = {
        "orchestrator": (
            mesh.orchestrator,
            f"WorkflowType = '{WORKFLOW_TYPE}'",
            Replayer(
                workflows=[ChatSessionWorkflow],
                plugins=agent_plugins(LlmSettings(model="offline")),
                # The worker may run unsandboxed; replay checks determinism in the sandbox.
                workflow_runner=SandboxedWorkflowRunner(),
            ),
        )
    }
    for team in mesh.teams:
        registration = load_registration(mesh, team)
        workflows: list[Any] = list(registration.workflows)
        if registration.mcp_servers:
            workflows.append(McpToolWorkflow)
        replayers[team] = (
            mesh.team(team),
            None,
            Replayer(
                workflows=workflows,
                data_converter=pydantic_data_converter,
                workflow_runner=SandboxedWorkflowRunner(
                    restrictions=SandboxRestrictions.default.with_passthrough_modules("meshkit")
                ),
            ),
        )
    return replayers


async def check_replay(mesh: Mesh, out: Findings) -> None:
    """Every closed run of every namespace replays, one replayer per namespace."""
    for name, (namespace, query, replayer) in _replayers(mesh).items():
        client = await connect(mesh, namespace)
        results = await replayer.replay_workflows(
            _histories(client, query, out), raise_on_replay_failure=False
        )
        failures = results.replay_failures
        out.replay_failures += len(failures)
        for run_id, error in list(failures.items())[:5]:
            out.problem(f"replay failed in {name}: run {run_id}: {error}")
