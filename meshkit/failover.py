"""How soon a surviving replica takes over the work of one that died.

Temporal never learns that a worker process died (kill -9, an OOM kill, a
lost node): its tasks are handed to another worker only when a timeout says
so. With two replicas of a worker, these timeouts are the time a user waits
after a crash. Each is a trade: shorter means a faster takeover, and a healthy
but busy worker mistaken for a dead one sooner. docs/deploy.md has the figures.

- **Sticky queue** (``MESH_STICKY_TIMEOUT_S``, :class:`TakeoverSettings`). A
  workflow's next task goes first to the worker that ran its last one (its
  *sticky* queue: that worker has the workflow cached and replays nothing). If
  that worker is dead, the task waits there this long, then moves to the
  normal queue that every replica polls. The cost of a short value: a task
  that waits this long behind a *busy* worker's full slots also moves, and
  whoever takes it replays the run's history. With 100 sessions starting at
  once on one orchestrator (``scripts/bench``), 2 s here and a 3 s session
  task timeout halved throughput. So the default stays Temporal's, and a
  deployment with replicas (Kubernetes, ``scripts/demo --replicas 2``) sets
  it short.
- **Activity heartbeat** (:data:`ACTIVITY_HEARTBEAT`). An activity that
  heartbeats is retried, on any replica, once no heartbeat arrived for this
  long; one that does not is retried only after its start-to-close timeout
  (15 s for a team's backend call). :class:`Heartbeats` heartbeats for every
  activity given a heartbeat timeout, three times per timeout, so that the
  activity's code need not; the worker sends at most one per 80 % of the
  timeout. It costs a small RPC per 0.8 s of a running call and nothing
  under load, so it is always short.
- **Workflow task timeout**: only where a workflow runs local activities, the
  orchestrator's session (``orchestrator.failover``); a team's workflows run
  none, and keep Temporal's 10 s, which only bounds a workflow task whose
  worker died while running it (a millisecond of work).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from datetime import timedelta
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)


class TakeoverSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MESH_", extra="ignore")

    sticky_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="How long a workflow task waits for the worker that has its workflow "
        "cached before any replica may take it (Temporal's default, 10 s); 1 s with replicas.",
    )


ACTIVITY_HEARTBEAT = timedelta(seconds=1)
"""Heartbeat timeout of the teams' backend activities: how long after its
worker died a call is retried elsewhere (plus the retry policy's first
backoff, 0.5 s, and the second or so the server takes to notice). 2 s put a
killed replica's call at 5 s from kill to reply; a worker whose event loop
stalls longer than about 0.8 s now has its calls retried (with their
idempotency keys: nothing is done twice)."""


REPLICA_STICKY_TIMEOUT_S = 1.0
"""``MESH_STICKY_TIMEOUT_S`` where a component runs replicas. A worker polls
its sticky queue whenever it has a free slot (``meshkit.tuning`` keeps many
polls open), so a task of a live worker is matched at once and only a dead
worker's tasks wait this long, and every takeover of a session that waits for
a result (a Nexus call, an approval) is this much slower."""


def replica_env(component: str) -> dict[str, str]:
    """The environment that gives ``component``'s replicas fast takeovers."""
    return {"MESH_STICKY_TIMEOUT_S": f"{REPLICA_STICKY_TIMEOUT_S:g}"}


def worker_options(settings: TakeoverSettings | None = None) -> dict[str, Any]:
    """The ``Worker`` options a component of the mesh runs with."""
    settings = settings or TakeoverSettings()
    return {"sticky_queue_schedule_to_start_timeout": timedelta(seconds=settings.sticky_timeout_s)}


class Heartbeats(Interceptor):
    """Heartbeats for every async activity scheduled with a heartbeat timeout,
    three times per timeout (the worker throttles what it sends), while the
    activity runs. A heartbeat proves only that the worker's process lives;
    an activity that can report progress may heartbeat itself as well."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Heartbeating(next)


class _Heartbeating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        timeout = info.heartbeat_timeout
        if info.is_local or not timeout or not inspect.iscoroutinefunction(input.fn):
            return await self.next.execute_activity(input)
        beating = asyncio.create_task(_beat(timeout.total_seconds() / 3))
        try:
            return await self.next.execute_activity(input)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating


async def _beat(every_s: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(every_s)
