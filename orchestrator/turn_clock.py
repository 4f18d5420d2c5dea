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
    from orchestrator.model_calls import PLAN_PATCH
    from orchestrator.model_stream import STREAM_PATCH
    from orchestrator.shared_catalogs import AHEAD_PATCH, SHARED_PATCH

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


BASELINE_PATCH = "session-baseline-2026-12"
"""A run that records this patch first asks none of :data:`IN_BASELINE`: all
are on. Each patch a session asks writes a marker and an upsert of
``TemporalChangeVersion`` into its history (the SDK adds the upsert), so a new
session's first turn wrote six of each: twelve events and six visibility
updates on the server for every session, before its first model call. Now a
new session writes one of each. A run that began before this patch (its
first ask of a patch, at its first turn or tool limit, replays without this
marker) keeps asking each patch as it always did."""

IN_BASELINE = frozenset(
    {TURN_CLOCK_PATCH, CATALOG_PATCH, STREAM_PATCH, FIRST_CONTACT_PATCH, SHARED_PATCH, PLAN_PATCH}
)


def patched(patch_id: str) -> bool:
    """``workflow.patched``, true without asking for a patch of the baseline
    in a run that began with it.

    The baseline is asked the first time any patch is, so at one fixed point
    of every run: a new run records it there; a run recorded before it asked
    a baseline patch there, and replays it as not patched (the SDK keeps a
    patch's first answer for the whole run) and goes on asking each one.
    """
    if patch_id in IN_BASELINE and workflow.patched(BASELINE_PATCH):
        return True
    return workflow.patched(patch_id)


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
    refresh_ahead: bool = False
    """A shared catalog past half its TTL may be refreshed beside the turn (``AHEAD_PATCH``)."""

    @classmethod
    def now(cls) -> TurnSwitches:
        # On replay, Temporal reports a patch marker with the workflow task it
        # was recorded in: each patch is asked at one fixed point.
        return cls(
            clock=turn_clock(),
            catalogs_beside=patched(CATALOG_PATCH),
            lean_streams=patched(STREAM_PATCH),
            first_contact=patched(FIRST_CONTACT_PATCH),
            shared_catalogs=patched(SHARED_PATCH),
            refresh_ahead=patched(AHEAD_PATCH),
        )


def turn_clock() -> datetime | None:
    """The time a turn's decisions use (TURN_CLOCK_PATCH): now, asked where the
    message or request is delivered; None in runs recorded before the patch."""
    return workflow.now() if patched(TURN_CLOCK_PATCH) else None
