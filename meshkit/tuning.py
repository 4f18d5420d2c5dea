"""How many tasks a worker asks Temporal for at once: one setting for every worker.

Every worker of the mesh (the orchestrator, each team's, and the benchmark's
floor workers, so that the floor is measured as the mesh runs) takes its
pollers from :class:`PollerSettings`, read from ``MESH_WORKER_*``.

Why more pollers than the SDK's default (5 of each kind): a task queue hands a
new task at once to a poll that is waiting, and puts it in a backlog only
when no poll waits. Tasks that reached the backlog wait there while newer ones
are matched straight to polls as they come in. With few polls, a busy worker
seldom has one waiting, so many tasks go to the backlog and some sessions wait
many turns' time while others are served: at 100 concurrent sessions on the
benchmark's machine, workflow tasks waited p50 0.1 s but p95 6 s before a
worker took them. With enough polls open, a task almost always meets one, so
tasks leave the server in the order they came and queue in the worker
instead, where they are run in that order. Open polls are cheap: each is one
long-poll request held by the server, and a worker never polls for more tasks
than it has free slots.

The workflow-task polls are shared between the worker's sticky queue (tasks
of sessions it has cached, the most of them) and the task queue shared by
every replica (new sessions, and those another replica dropped):
``nonsticky_to_sticky_poll_ratio`` of them go to the shared one.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.worker import PollerBehaviorSimpleMaximum


class PollerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MESH_WORKER_", extra="ignore")

    workflow_task_pollers: int = Field(
        default=20,
        ge=2,
        le=200,
        description="Polls for workflow tasks open at once (sticky and shared queues together).",
    )
    shared_queue_poll_ratio: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="The share of the workflow-task polls that poll the task queue every "
        "replica shares; the rest poll this worker's sticky queue.",
    )
    activity_task_pollers: int = Field(
        default=10, ge=1, le=200, description="Polls for activity tasks open at once."
    )
    nexus_task_pollers: int = Field(
        default=10, ge=1, le=200, description="Polls for Nexus tasks open at once."
    )

    def worker_options(self) -> dict[str, Any]:
        """Keyword arguments for ``temporalio.worker.Worker``."""
        return {
            "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(
                self.workflow_task_pollers
            ),
            "nonsticky_to_sticky_poll_ratio": self.shared_queue_poll_ratio,
            "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(
                self.activity_task_pollers
            ),
            "nexus_task_poller_behavior": PollerBehaviorSimpleMaximum(self.nexus_task_pollers),
        }
