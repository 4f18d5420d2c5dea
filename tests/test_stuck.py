"""A workflow whose task keeps failing is found, reported with its failure,
and reset to its last completed task: ``python -m meshkit.stuck``.

The workflow here fails its task on purpose, in the orchestrator's namespace
of the test mesh, on a task queue of its own: a Signal makes it raise until
the test mends it, as a bad build would be mended by a deploy.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from meshkit.mesh import MeshError
from meshkit.polling import poll_until
from meshkit.stuck import StuckWorkflow, find_stuck, reset

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parent.parent
BROKEN = {"on": True}
"""Whether the workflow's Signal handler raises (its 'build' has the bug)."""


@workflow.defn(name="BrittleForStuckTest", sandboxed=False)
class Brittle:
    def __init__(self) -> None:
        self.handled = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.handled > 0)
        return self.handled

    @workflow.signal
    def poke(self) -> None:
        if BROKEN["on"]:
            raise RuntimeError("the build's bug: this task cannot complete")
        self.handled += 1


async def test_a_workflow_whose_task_keeps_failing_is_found_and_reset(
    client: Client, mesh_file: Path
) -> None:
    task_queue = f"stuck-{uuid.uuid4().hex[:6]}"
    query = f"TaskQueue='{task_queue}' AND ExecutionStatus='Running'"
    BROKEN["on"] = True
    async with Worker(client, task_queue=task_queue, workflows=[Brittle]):
        handle = await client.start_workflow(
            Brittle.run, id=f"brittle-{uuid.uuid4().hex[:6]}", task_queue=task_queue
        )
        healthy = await client.start_workflow(
            Brittle.run, id=f"healthy-{uuid.uuid4().hex[:6]}", task_queue=task_queue
        )
        await handle.signal(Brittle.poke)

        async def stuck_ones() -> list[StuckWorkflow] | None:
            return await find_stuck(client, min_attempts=2, query=query) or None

        found = await poll_until(stuck_ones, timeout_s=60, what="the workflow found stuck")
        assert [s.workflow_id for s in found] == [handle.id], found
        stuck = found[0]
        assert stuck.attempt >= 2 and stuck.last_completed_task is not None
        assert "the build's bug" in stuck.failure, stuck.failure

        # The command finds it in the orchestrator's namespace, and says so by its exit code.
        run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "meshkit.stuck", "--mesh", str(mesh_file),
             "--component", "orchestrator", "--min-attempts", "2"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 1, run.stdout + run.stderr
        assert handle.id in run.stdout and healthy.id not in run.stdout, run.stdout

        # Mended, and reset: a new run takes the Signal again and finishes.
        BROKEN["on"] = False
        new_run = await reset(client, stuck, "test: the bug is fixed")
        assert new_run and new_run != stuck.run_id
        result = await asyncio.wait_for(
            client.get_workflow_handle(handle.id, run_id=new_run).result(), 30
        )
        assert result == 1
        assert await find_stuck(client, min_attempts=2, query=query) == []
        await healthy.terminate("test over")


async def test_a_workflow_that_never_completed_a_task_is_not_reset(client: Client) -> None:
    never = StuckWorkflow(
        namespace=client.namespace,
        workflow_id="never-started",
        run_id="run",
        workflow_type="BrittleForStuckTest",
        attempt=5,
        since=None,
        failure="",
        last_completed_task=None,
    )
    with pytest.raises(MeshError, match="never completed a workflow task"):
        await reset(client, never, "test")
