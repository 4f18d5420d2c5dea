"""One long conversation: how latency and workflow history grow with turns.

The whole conversation is workflow state and every model call's input, so a
session's history grows with each turn. The figures: latency near turn 10
against the last turns, and the largest history of any run of the session
(several runs if the session ever continues-as-new).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from temporalio.client import Client, WorkflowExecutionStatus

from bench.config import BenchConfig
from bench.turns import BY_NAME, TurnResults, end_session, one_turn, open_session
from meshkit.mesh import Mesh

CHEAP = (BY_NAME["local_tool"], BY_NAME["no_tool"])
"""Alternated: the cheapest tool turn and the no-tool turn."""
WINDOW = 4
"""Turns averaged for a point figure: an even number, so both kinds weigh the same."""


@dataclass(frozen=True)
class RunHistory:
    run_id: str
    status: str
    events: int
    bytes: int
    server_bytes: int
    """The server's own count (DescribeWorkflowExecution history_size_bytes)."""


@dataclass(frozen=True)
class LongResult:
    turns: int
    """Turns answered."""
    latencies: list[float]
    latency_turn_10_ms: float
    latency_last_ms: float
    runs: list[RunHistory]
    errors: list[str]
    first_failed_turn: int | None
    wall_s: float

    @property
    def max_history_bytes(self) -> int:
        return max((run.bytes for run in self.runs), default=0)

    @property
    def max_history_events(self) -> int:
        return max((run.events for run in self.runs), default=0)


def window_mean(latencies: list[float], first_turn: int) -> float:
    """Mean latency of WINDOW turns starting at ``first_turn`` (1-based)."""
    chosen = latencies[first_turn - 1 : first_turn - 1 + WINDOW]
    return round(sum(chosen) / len(chosen), 2) if chosen else float("nan")


async def run_histories(client: Client, workflow_id: str) -> list[RunHistory]:
    """Every run of the session, with its history's size in events and bytes."""
    runs: list[RunHistory] = []
    run_ids = [
        execution.run_id
        async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'")
    ]
    if not run_ids:  # visibility lags a moment behind: the latest run is enough
        run_ids = [(await client.get_workflow_handle(workflow_id).describe()).run_id]
    for run_id in run_ids:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        described = await handle.describe()
        info = described.raw_description.workflow_execution_info
        status = described.status or WorkflowExecutionStatus.RUNNING
        runs.append(
            RunHistory(
                run_id=run_id,
                status=status.name,
                events=len(history.events),
                bytes=sum(event.ByteSize() for event in history.events),
                server_bytes=info.history_size_bytes,
            )
        )
    return runs


async def long_conversation(client: Client, mesh: Mesh, config: BenchConfig) -> LongResult:
    handle = await open_session(client, mesh, "long")
    results = TurnResults()
    latencies: list[float] = []
    first_failed: int | None = None
    started = time.perf_counter()
    for turn in range(1, config.long_turns + 1):
        kind = CHEAP[(turn - 1) % len(CHEAP)]
        errors_before = len(results.errors)
        elapsed = await one_turn(handle, kind, config.turn_timeout_s, results)
        if len(results.errors) > errors_before:
            # A session that stops answering (e.g. its history hit the
            # server's limit) ends the conversation: later turns would only
            # time out. The figures stand for the turns answered.
            first_failed = turn
            break
        latencies.append(elapsed)
    wall = time.perf_counter() - started
    runs = await run_histories(client, handle.id)
    await end_session(handle)
    return LongResult(
        turns=len(latencies),
        latencies=latencies,
        latency_turn_10_ms=window_mean(latencies, 9),
        latency_last_ms=window_mean(latencies, max(1, len(latencies) - WINDOW + 1)),
        runs=runs,
        errors=results.errors,
        first_failed_turn=first_failed,
        wall_s=round(wall, 2),
    )
