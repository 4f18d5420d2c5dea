"""What a turn decides when its message is delivered: its clock and its patches.

Read in the session's Update handler, before any await, in the activation
that delivered the message: read after a local activity's result (the turn
before this one ending with a model call), a time or a patch could be read in
another workflow task on replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from orchestrator.catalogs import CATALOG_PATCH, FIRST_CONTACT_PATCH
    from orchestrator.model_stream import STREAM_PATCH
    from orchestrator.shared_catalogs import SHARED_PATCH

TURN_CLOCK_PATCH = "turn-clock-at-acceptance"
"""A turn's time-based decisions (is a team's catalog due, is the model plan
due) and the times it records for them use the time its message was accepted,
not ``workflow.now()`` read after an await. ``workflow.now()`` read right after
a local activity (the model plan, a model call) can differ between the run and
its replay: when a Query arrives with the workflow task that runs the local
activity, the worker answers it by completing the task early and hands the
local activity's result to the workflow in the next task, at that task's start
time; a replay hands it over in the first task, at the activity's completion
time (temporalio 1.35). A decision near a TTL's edge then differs, and the
replay fails with "Missing associated machine for LocalActivity(n)". Histories
recorded before this keep the old clock."""


@dataclass(frozen=True)
class TurnSwitches:
    """What a turn decided when its message was delivered."""

    clock: datetime | None
    """The turn's clock, or None where ``workflow.now()`` still times a turn."""
    catalogs_beside: bool
    lean_streams: bool
    first_contact: bool = False
    """A team the session never heard from is asked again after a timeout."""
    shared_catalogs: bool = False
    """A due team's catalog is first looked for among those the worker's sessions fetched."""

    @classmethod
    def now(cls) -> TurnSwitches:
        # On replay, Temporal reports a patch marker with the workflow task it
        # was recorded in: each patch is asked at one fixed point.
        return cls(
            clock=turn_clock(),
            catalogs_beside=workflow.patched(CATALOG_PATCH),
            lean_streams=workflow.patched(STREAM_PATCH),
            first_contact=workflow.patched(FIRST_CONTACT_PATCH),
            shared_catalogs=workflow.patched(SHARED_PATCH),
        )


def turn_clock() -> datetime | None:
    """The time a turn's decisions use (TURN_CLOCK_PATCH): now, asked where the
    message or request is delivered; None in runs recorded before the patch."""
    return workflow.now() if workflow.patched(TURN_CLOCK_PATCH) else None
