"""The orchestrator's takeover timeouts: how soon a surviving replica carries
on a session whose worker died (the shared ones are in :mod:`meshkit.failover`).

Workflow code imports only the heartbeat constants; the task timeout is read
where a session starts (``orchestrator.session_client``).
"""

from __future__ import annotations

import os
from datetime import timedelta

from meshkit.failover import ACTIVITY_HEARTBEAT

TASK_TIMEOUT_ENV = "MESH_SESSION_TASK_TIMEOUT_S"
DEFAULT_TASK_TIMEOUT = timedelta(seconds=10)


def session_task_timeout() -> timedelta:
    """The workflow task timeout a new session starts with: ``MESH_SESSION_TASK_TIMEOUT_S``,
    else Temporal's 10 s. The session keeps it at each continue-as-new.

    A model call run as a local activity runs inside a workflow task: if its
    worker dies, nothing is retried until that task times out, and then
    another replica replays the run and calls the model again. With replicas,
    3 s brings that takeover under 5 s. To keep a long call's task alive, the
    worker completes it and asks for a new one at 80 % of the timeout (a
    *workflow task heartbeat*: three history events, about 300 bytes, per 2.4 s
    of a model call at 3 s; a call held 10 s added 1.3 KB, against 0.3 KB at 10 s). And a task that a healthy worker holds longer than this (CPU
    starved: more concurrent workflow tasks than it runs in 3 s) is taken
    from it and run again: with 100 sessions starting at once on one
    orchestrator, 3 s cost a quarter of the throughput (scripts/bench), so a
    single worker keeps 10 s. With replicas, keep the worker's concurrent
    workflow tasks (slots) few enough that one runs within 3 s under load.
    """
    raw = os.environ.get(TASK_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TASK_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= 120:
        raise ValueError(f"{TASK_TIMEOUT_ENV} must be seconds from 1 to 120, got {raw!r}")
    return timedelta(seconds=seconds)


REPLICA_SESSION_TASK_TIMEOUT = timedelta(seconds=3)
"""``MESH_SESSION_TASK_TIMEOUT_S`` where the orchestrator runs replicas."""

MODEL_CALL_HEARTBEAT = timedelta(seconds=1)
"""Heartbeat timeout of a model call run as a regular activity (a streamed
one): it heartbeats at half of it, so a call whose worker died is retried on
another replica about this long after the kill (plus the second or so the
server takes to notice, and the retry policy's first backoff, 0.25 s). A
heartbeat costs a small RPC per 0.8 s of a call; a worker whose event loop
stalls longer than about 0.8 s has its call retried (the model is called
again; a tool call is never repeated by it)."""

LOCAL_TOOL_HEARTBEAT = ACTIVITY_HEARTBEAT
"""Heartbeat timeout of the orchestrator's own tools (calculator, weather),
heartbeated by :class:`meshkit.failover.Heartbeats`."""
