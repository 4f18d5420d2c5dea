"""How many tasks a worker asks Temporal for at once: one setting for every worker.

Every worker of the mesh (the orchestrator, each team's, and the benchmark's
floor workers, so that the floor is measured as the mesh runs) takes its
pollers from :class:`PollerSettings`, read from ``MESH_WORKER_*``.

Why not the SDK's defaults (5 polls of each kind, a fifth of the workflow-task
polls on the queue every replica shares, the rest on the worker's sticky
queue): a task queue hands a new task at once to a poll that waits, and puts
it in a backlog only when none waits. Under load the backlog then waits while
newer tasks go straight to polls as they come, and some sessions wait many
turns' time while others are served. Measured on the benchmark's floor (the
same client loop and primitives as the mesh's turns, no agent) at 100
concurrent sessions on 2 cores, workflow tasks waited p50 0.05 s but p95 3.3 s
before a worker took them, and a turn's p95 was 7-8 times its p50.

What changes it is where the workflow-task polls go. With
``shared_queue_poll_ratio`` at 1, every poll but one polls the shared queue
and one polls the sticky queue (the SDK keeps at least one on each): the
same floor ran 45-49 turns/s with p95 1.1-1.5 times p50, against 29-32
turns/s and 7-8 times with the defaults, and the mesh's own sweep went from
p95 3.4 times p50 to 1.7. A session's tasks still go first to the worker that
has it cached (its sticky queue). Our reading, not documented by Temporal:
one sticky poll takes the sticky queue's tasks one by one in the order they
came, with little for a new task to jump ahead of, and the many shared polls
leave almost nothing in the shared queue's backlog. Open polls are cheap: each is one long-poll request the
server holds, and a worker never polls for more tasks than it has free slots.
``scripts/bench`` reports p95/p50 per level beside the floor's.
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
        default=1.0,
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
    workflow_task_slots: int = Field(
        default=200,
        ge=10,
        le=2000,
        description="Workflow tasks a worker runs at once (the SDK's default is 100). A task "
        "whose local activity waits holds its slot: sessions waiting for the one catalog "
        "fetch their worker makes (orchestrator.shared_catalogs) must leave a slot for the "
        "session that fetches. At 100 sessions whose catalogs expired together, 100 slots "
        "held every first turn 7-11 s; 300 none. More slots queue more tasks inside a busy "
        "worker instead of in Temporal, each then waiting longer for the CPU, so it stays "
        "well below what a task timeout allows.",
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
            "max_concurrent_workflow_tasks": self.workflow_task_slots,
        }
