"""Workflows whose task keeps failing, in every namespace of the mesh, and their reset.

Run: ``python -m meshkit.stuck [--mesh PATH] [--component NAME] [--reset]``.

A workflow whose workflow task fails again and again makes no progress:
Temporal retries the task forever, and every Update and Query to it is
refused ("Workflow Task in failed state"). A bug in a new build does that,
and so does one failure of the SDK we know of: after a server restart cuts a
worker's completion of a task that answered a message (temporalio/sdk-rust#888,
docs/soak.md), each retry fails with ``BadUpdateWorkflowExecutionMessage``.
Nothing in the mesh can mend such a session by itself, and the user only
sees that it does not answer. This finds them: every running workflow of the
mesh's namespaces whose pending task is at its ``min_attempts``-th attempt or
later, with the failure the history recorded. It exits 1 when it finds one,
so a cron job or a probe can alert on it.

``--reset`` resets each one to its last completed workflow task, as
``temporal workflow reset --type LastWorkflowTask`` does: a new run replays
up to there and goes on; the Signals and Updates that came after are applied
to it again. A session's turn in flight then runs again: its model call and
tools are asked again, and every side effect keeps its idempotency key, so
a team does nothing twice. Only do it once the cause is known: a bad build
fails the same way after a reset.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from meshkit.mesh import Mesh, MeshError, connect, load_mesh
from meshkit.runtime import exit_now

MIN_ATTEMPTS = 3
"""A task that failed twice in a row may be a worker lost mid-task; three times is a pattern."""

CONCURRENT_DESCRIBES = 8


@dataclass(frozen=True)
class StuckWorkflow:
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    attempt: int
    since: datetime | None
    """When the failing task was first scheduled."""
    failure: str
    """The failure the history recorded for the task, if any."""
    last_completed_task: int | None
    """Event id of the last completed workflow task: where a reset goes back to."""

    def __str__(self) -> str:
        since = f" since {self.since.isoformat(timespec='seconds')}" if self.since else ""
        return (
            f"{self.namespace}/{self.workflow_id} ({self.workflow_type}, run {self.run_id}): "
            f"workflow task at attempt {self.attempt}{since}: {self.failure or 'no failure recorded'}"
        )


async def find_stuck(
    client: Client, min_attempts: int = MIN_ATTEMPTS, query: str = "ExecutionStatus='Running'"
) -> list[StuckWorkflow]:
    """The running workflows of ``client``'s namespace whose task keeps failing."""
    limit = asyncio.Semaphore(CONCURRENT_DESCRIBES)

    async def check(workflow_id: str, run_id: str | None) -> StuckWorkflow | None:
        async with limit:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            try:
                description = await handle.describe()
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return None  # gone (retention) since it was listed
                raise
            pending = description.raw_description.pending_workflow_task
            if pending.attempt < min_attempts:
                return None
            failure, completed = await _last_task_events(client, workflow_id, description.run_id)
            return StuckWorkflow(
                namespace=client.namespace,
                workflow_id=workflow_id,
                run_id=description.run_id,
                workflow_type=description.workflow_type,
                attempt=pending.attempt,
                since=(
                    pending.original_scheduled_time.ToDatetime()
                    if pending.HasField("original_scheduled_time")
                    else None
                ),
                failure=failure,
                last_completed_task=completed,
            )

    running = [(w.id, w.run_id) async for w in client.list_workflows(query)]
    found = await asyncio.gather(*(check(workflow_id, run) for workflow_id, run in running))
    return [stuck for stuck in found if stuck is not None]


async def _last_task_events(
    client: Client, workflow_id: str, run_id: str
) -> tuple[str, int | None]:
    failure, completed = "", None
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            completed, failure = event.event_id, ""
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attributes = event.workflow_task_failed_event_attributes
            cause = WorkflowTaskFailedCause.Name(attributes.cause)
            cause = cause.removeprefix("WORKFLOW_TASK_FAILED_CAUSE_")
            failure = f"{cause}: {attributes.failure.message}"
    return failure, completed


async def reset(client: Client, stuck: StuckWorkflow, reason: str) -> str:
    """Reset ``stuck`` to its last completed workflow task; returns the new run's id."""
    if stuck.last_completed_task is None:
        raise MeshError(f"{stuck.workflow_id} never completed a workflow task: nothing to reset to")
    response = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(
                workflow_id=stuck.workflow_id, run_id=stuck.run_id
            ),
            reason=reason,
            workflow_task_finish_event_id=stuck.last_completed_task,
            request_id=str(uuid.uuid4()),
        )
    )
    return response.run_id


async def check_mesh(
    mesh: Mesh, components: list[str], min_attempts: int, reset_them: bool
) -> list[StuckWorkflow]:
    found: list[StuckWorkflow] = []
    for name in components:
        client = await connect(mesh, mesh.component(name))
        for stuck in await find_stuck(client, min_attempts):
            found.append(stuck)
            typer.echo(f"stuck: {stuck}")
            if reset_them:
                # One that cannot be reset is said so; the others are still reset.
                try:
                    run_id = await reset(client, stuck, "meshkit.stuck: workflow task kept failing")
                except (MeshError, RPCError) as err:
                    typer.echo(f"  not reset: {err}")
                    continue
                typer.echo(f"  reset to event {stuck.last_completed_task}: new run {run_id}")
    return found


def cli(
    mesh_file: Annotated[
        Path | None, typer.Option("--mesh", help="Mesh file (default: MESH_FILE or ./mesh.toml).")
    ] = None,
    component: Annotated[
        list[str] | None,
        typer.Option(help="'orchestrator' or a team; repeat for more (default: every one)."),
    ] = None,
    min_attempts: Annotated[
        int, typer.Option(min=2, help="Flag a workflow task at this attempt or later.")
    ] = MIN_ATTEMPTS,
    reset_them: Annotated[
        bool, typer.Option("--reset", help="Reset each one to its last completed workflow task.")
    ] = False,
) -> None:
    """List the mesh's workflows whose task keeps failing; exit 1 when there is one."""
    try:
        mesh = load_mesh(mesh_file)
        names = component or ["orchestrator", *mesh.teams]
        found = asyncio.run(check_mesh(mesh, names, min_attempts, reset_them))
    except (MeshError, RPCError) as err:
        typer.echo(f"error: {err}", err=True)
        exit_now(2)
        return
    if not found:
        typer.echo(f"no stuck workflows in {', '.join(names)}")
    exit_now(1 if found else 0)


if __name__ == "__main__":
    typer.run(cli)
