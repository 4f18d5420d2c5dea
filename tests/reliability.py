"""Counters for the reliability summary printed at the end of the suite."""

from __future__ import annotations

import math
import statistics
from collections import Counter

from temporalio.client import WorkflowHandle

TALLY: Counter[str] = Counter()

LABELS = {
    "faults": "faults injected",
    "turns": "turns checked",
    "records": "records checked",
    "bad_inputs": "bad inputs tried",
}


RECOVERY: dict[str, list[float]] = {}
"""Seconds from a kill -9 to the turn's reply, per fault (one per round)."""


def recovered(fault: str, seconds: float) -> None:
    RECOVERY.setdefault(fault, []).append(seconds)


def recovery_line(fault: str, seconds: list[float]) -> str:
    """``fault 3.1`` for one sample; median, p95 and max of several."""
    if len(seconds) == 1:
        return f"{fault} {seconds[0]:.1f}"
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    median = statistics.median(ordered)
    return f"{fault} p50 {median:.1f} p95 {p95:.1f} max {ordered[-1]:.1f} (n={len(ordered)})"


def count(kind: str, n: int = 1) -> None:
    if kind not in LABELS:
        raise KeyError(kind)
    TALLY[kind] += n


async def assert_no_task_failures(handle: WorkflowHandle) -> None:
    """A session that never failed a workflow task: Temporal would retry such a
    failure forever, so one showing up is a bug even if the turn recovered."""
    async for event in handle.fetch_history_events():
        assert not event.HasField("workflow_task_failed_event_attributes"), (
            f"{handle.id}: workflow task failed: {event.workflow_task_failed_event_attributes}"
        )
