"""Counters for the reliability summary printed at the end of the suite."""

from __future__ import annotations

from collections import Counter

from temporalio.client import WorkflowHandle

TALLY: Counter[str] = Counter()

LABELS = {
    "faults": "faults injected",
    "turns": "turns checked",
    "records": "records checked",
    "bad_inputs": "bad inputs tried",
}


RECOVERY: dict[str, float] = {}
"""Seconds from a kill -9 to the turn's reply, per fault."""


def recovered(fault: str, seconds: float) -> None:
    RECOVERY[fault] = seconds


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
