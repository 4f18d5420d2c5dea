"""Rollouts of one component at a time, with real worker processes.

- A team's call in flight when the team rolls out finishes, exactly once, on
  the build that started it; the next call is served by the new build; the old
  build's worker drains and stops.
- An orchestrator rollout under an open session: the next turn runs on the new
  build, and the session's history replays.
- A hot-fix: a call that keeps failing from a bug finishes, exactly once, once
  the fixed build is rolled out with its pinned calls moved to it.

Each test has a mesh of its own (task queues, endpoints and so Worker
Deployments), so its rollouts change nothing the other tests use.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.common import WorkerDeploymentVersion
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from meshdev.processes import running
from meshdev.rollout import worktree
from meshkit.mesh import Mesh, connect
from meshkit.polling import poll_until
from meshkit.rollout import drainage, rollout
from meshkit.versioning import build_id, deployment_rpc, routing
from orchestrator.contract import SessionConfig
from orchestrator.session_client import SessionClient
from tests.fakes import FakeExpenses
from tests.helpers import replayer
from tests.processes import OwnMesh, WorkerProcess, own_mesh
from tests.reliability import assert_no_task_failures, count

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Rig:
    """A mesh of the orchestrator and Finance, whose builds the test starts."""

    own: OwnMesh
    expenses: FakeExpenses
    steps: list[str] = field(default_factory=list)

    @property
    def mesh(self) -> Mesh:
        return self.own.mesh

    def mesh_file(self, finance_package: str | None = None) -> Path:
        """The mesh file a build runs with: Finance's code from ``finance_package``."""
        if not finance_package:
            return self.own.file
        finance = self.mesh.team("finance").model_copy(update={"package": finance_package})
        mesh = self.mesh.model_copy(update={"teams": {**self.mesh.teams, "finance": finance}})
        return self.own.write(mesh, f"mesh-{finance_package.replace('.', '_')}.toml")

    async def start(
        self,
        component: str,
        build: str,
        finance_package: str | None = None,
        env: dict[str, str] | None = None,
    ) -> WorkerProcess:
        env = {
            "MESH_FILE": str(self.mesh_file(finance_package)),
            "MESH_BUILD_ID": build,
            "EXPENSES_URL": self.expenses.url,
            **(env or {}),
        }
        return await self.own.start(component, env, label=f"{component}-{build}")

    async def client(self, component: str) -> Client:
        return await connect(
            self.mesh, self.mesh.component(component), data_converter=pydantic_data_converter
        )

    def version(self, component: str, build: str) -> WorkerDeploymentVersion:
        return WorkerDeploymentVersion(self.mesh.component(component).deployment_name, build)


@pytest_asyncio.fixture(loop_scope="session")
async def rig(running_mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    expenses = FakeExpenses()
    directory = tmp_path_factory.mktemp("rollout")
    async with own_mesh(running_mesh, directory, "ro", teams=["finance"]) as own:
        try:
            yield Rig(own, expenses)
        finally:
            expenses.release()  # before the workers stop, so that no call is held
    expenses.http.close()


def builds_of(history: WorkflowHistory) -> set[str]:
    """The builds whose workers completed the workflow's tasks."""
    return {
        event.workflow_task_completed_event_attributes.deployment_version.build_id
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    }


async def expense_workflows(rig: Rig, expected: int) -> list[str]:
    """Ids of Finance's claim workflows, oldest first, once visibility lists ``expected``."""
    finance = await rig.client("finance")
    task_queue = rig.mesh.team("finance").task_queue
    query = f"WorkflowType = 'SubmitExpenseWorkflow' AND TaskQueue = '{task_queue}'"

    async def listed() -> list[tuple[object, str]] | None:
        found = [(e.start_time, e.id) async for e in finance.list_workflows(query)]
        return found if len(found) >= expected else None

    found = await poll_until(
        listed, timeout_s=30, interval_s=0.1, what=f"visibility did not list {expected} claims"
    )
    return [workflow_id for _, workflow_id in sorted(found)]  # type: ignore[type-var]


async def wait_until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    await poll_until(predicate, timeout_s=30, interval_s=0.1, what=what)


async def test_a_call_in_flight_finishes_on_its_build_and_the_next_goes_to_the_new_one(
    rig: Rig,
) -> None:
    await rig.start("orchestrator", "o1")
    v1 = await rig.start("finance", "f1")
    orchestrator = await rig.client("orchestrator")
    finance = await rig.client("finance")
    config = SessionConfig.for_mesh(rig.mesh, model="offline")
    handle = await SessionClient(orchestrator, rig.mesh).open(
        f"ro-{uuid.uuid4().hex[:8]}", config=config
    )

    rig.expenses.hold()
    first = asyncio.ensure_future(handle.send("expense 40 for a team lunch", 120))
    assert await asyncio.to_thread(rig.expenses.held.wait, 30), "the claim reached the API"
    [in_flight] = await expense_workflows(rig, 1)

    await rig.start("finance", "f2", finance_package="tests.teams.finance_v2")
    stopped: list[int | None] = []

    async def stop_v1() -> None:
        stopped.append(await v1.stop(30))

    rolling = asyncio.ensure_future(
        rollout(
            finance,
            "finance",
            rig.version("finance", "f2"),
            stop_old=stop_v1,
            drain_timeout_s=60,
            report=rig.steps.append,
        )
    )
    # Build 2 is current while the call is still held on build 1.
    await wait_until(lambda: _current_is(finance, rig, "f2"), "build 2 did not become current")
    assert await drainage(finance, rig.mesh.component("finance").deployment_name, "f1") in (
        "DRAINING",
        "UNSPECIFIED",
    )
    assert v1.alive(), "build 1 keeps serving its pinned call"
    rig.expenses.release()

    reply = await asyncio.wait_for(first, 60)
    assert reply.ok, reply.text
    assert [(t.name, t.state) for t in reply.tools] == [("submit_expense", "ok")]
    claim = await finance.get_workflow_handle(in_flight).result()
    assert "policy" not in claim, "build 1 filed the claim in flight"
    history = await finance.get_workflow_handle(in_flight).fetch_history()
    assert builds_of(history) == {"f1"}

    second = await handle.send("expense 15 for a taxi", 60)
    assert second.ok and [(t.name, t.state) for t in second.tools] == [("submit_expense", "ok")]
    [_, served_by_v2] = await expense_workflows(rig, 2)
    claim = await finance.get_workflow_handle(served_by_v2).result()
    assert claim["policy"] == "expense-policy-2", "build 2 filed the next claim"
    history = await finance.get_workflow_handle(served_by_v2).fetch_history()
    assert builds_of(history) == {"f2"}

    report = await asyncio.wait_for(rolling, 60)
    assert report.drained and stopped == [0], rig.steps
    assert not v1.alive()
    assert len(rig.expenses.records) == 2, "each call filed exactly one claim"
    await assert_no_task_failures(handle.handle)
    count("faults")
    count("records", 2)


async def _current_is(client: Client, rig: Rig, build: str) -> bool:
    state = await routing(client, rig.mesh.component("finance").deployment_name)
    return state is not None and state.current == build


async def test_an_open_session_keeps_working_through_an_orchestrator_rollout(rig: Rig) -> None:
    o1 = await rig.start("orchestrator", "o1")
    await rig.start("finance", "f1")
    orchestrator = await rig.client("orchestrator")
    config = SessionConfig.for_mesh(rig.mesh, model="offline")
    handle = await SessionClient(orchestrator, rig.mesh).open(
        f"ro-{uuid.uuid4().hex[:8]}", config=config
    )
    before = await handle.send("What is 6 * 7?", 60)
    assert before.ok and "42" in before.text

    await rig.start("orchestrator", "o2")
    report = await rollout(
        orchestrator,
        "orchestrator",
        rig.version("orchestrator", "o2"),
        stop_old=lambda: o1.stop(30),  # type: ignore[arg-type, return-value]
        drain_timeout_s=60,
        report=rig.steps.append,
    )
    # A session is auto-upgrade: it pins nothing, so the old build drains at once.
    assert report.drained and not o1.alive(), rig.steps

    after = await handle.send("What did I ask before?", 60)
    assert after.ok and "What is 6 * 7?" in after.text, "the conversation survived the rollout"
    roi = await handle.send("calculate_roi principal=1000 annual_rate=10 years=2", 60)
    assert roi.ok and "1210.00" in roi.text
    history = await handle.handle.fetch_history()
    assert builds_of(history) == {"o1", "o2"}, "turns ran on both builds"
    await replayer().replay_workflow(history)
    await assert_no_task_failures(handle.handle)
    count("faults")
    count("turns", 3)


async def test_a_hot_fix_lets_a_call_failing_from_a_bug_finish_exactly_once(rig: Rig) -> None:
    await rig.start("orchestrator", "o1")
    buggy = await rig.start("finance", "bug", finance_package="tests.teams.finance_buggy")
    orchestrator = await rig.client("orchestrator")
    finance = await rig.client("finance")
    config = SessionConfig.for_mesh(rig.mesh, model="offline")
    handle = await SessionClient(orchestrator, rig.mesh).open(
        f"ro-{uuid.uuid4().hex[:8]}", config=config
    )
    turn = asyncio.ensure_future(handle.send("expense 25 for a train ticket", 180))
    [stuck] = await expense_workflows(rig, 1)

    async def failed_attempts() -> int:
        described = await finance.get_workflow_handle(stuck).describe()
        pending = described.raw_description.pending_activities
        return pending[0].attempt - 1 if pending and pending[0].last_failure.message else 0

    await wait_until(lambda: _at_least(failed_attempts, 2), "the bug did not fail the call twice")
    assert not turn.done() and not rig.expenses.records, "the bug files nothing"

    await rig.start("finance", "fix")
    report = await rollout(
        finance,
        "finance",
        rig.version("finance", "fix"),
        stop_old=lambda: buggy.stop(30),  # type: ignore[arg-type, return-value]
        move_pinned_calls=True,
        drain_timeout_s=60,
        report=rig.steps.append,
    )
    assert report.moved == [stuck], rig.steps

    reply = await asyncio.wait_for(turn, 60)
    assert reply.ok and [(t.name, t.state) for t in reply.tools] == [("submit_expense", "ok")]
    assert "Submitted expense claim" in reply.text, reply.text
    assert len(rig.expenses.records) == 1, "the fixed build filed the claim exactly once"
    history = await finance.get_workflow_handle(stuck).fetch_history()
    assert builds_of(history) == {"bug", "fix"}
    assert report.drained and not buggy.alive(), rig.steps
    await assert_no_task_failures(handle.handle)
    count("faults")
    count("records")


async def _at_least(value, n: int) -> bool:  # type: ignore[no-untyped-def]
    return await value() >= n


async def rollout_command(rig: Rig, *args: str) -> asyncio.subprocess.Process:
    # deploy and rollback start worker processes: the demo's harness (meshdev);
    # promote, wait-drained and versions are the deployed command (meshkit).
    module = "meshdev.rollout" if args[0] in {"deploy", "rollback"} else "meshkit.rollout"
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        env={**os.environ, "MESH_FILE": str(rig.mesh_file())},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_a_build_promoted_on_start_waits_in_the_old_pods_prestop_until_drained(
    rig: Rig,
) -> None:
    # A Kubernetes rolling update: the new pod makes its build current as it
    # starts, and the old pod's preStop hook (`wait-drained`) holds its
    # SIGTERM back until no call in flight needs it.
    await rig.start("orchestrator", "o1")
    await rig.start("finance", "f1")
    orchestrator = await rig.client("orchestrator")
    config = SessionConfig.for_mesh(rig.mesh, model="offline")
    handle = await SessionClient(orchestrator, rig.mesh).open(
        f"ro-{uuid.uuid4().hex[:8]}", config=config
    )
    rig.expenses.hold()
    turn = asyncio.ensure_future(handle.send("expense 30 for a hotel night", 120))
    assert await asyncio.to_thread(rig.expenses.held.wait, 30), "the claim reached the API"

    await rig.start("finance", "f2", env={"MESH_VERSION_PROMOTION": "on-start"})
    assert await _current_is(await rig.client("finance"), rig, "f2")
    current = await rollout_command(rig, "wait-drained", "finance", "--build-id", "f2")
    out, _ = await asyncio.wait_for(current.communicate(), 30)
    assert current.returncode == 0 and b"is current; nothing to wait for" in out, out

    pre_stop = await rollout_command(rig, "wait-drained", "finance", "--build-id", "f1")
    await asyncio.sleep(3)
    assert pre_stop.returncode is None, "the old build waits while its call is in flight"
    rig.expenses.release()
    out, _ = await asyncio.wait_for(pre_stop.communicate(), 60)
    assert pre_stop.returncode == 0 and b"build f1 drained" in out, out
    reply = await asyncio.wait_for(turn, 60)
    assert reply.ok and [(t.name, t.state) for t in reply.tools] == [("submit_expense", "ok")]
    assert len(rig.expenses.records) == 1
    count("records")


async def test_the_demo_deploys_and_rolls_back_a_team_with_one_command_each(
    rig: Rig, tmp_path: Path
) -> None:
    # The first build is this repository's HEAD commit, so that rolling back
    # to it, once its worker has stopped, runs it from a git worktree.
    git = await asyncio.create_subprocess_exec(
        "git", "rev-parse", "--short=12", "HEAD", stdout=asyncio.subprocess.PIPE
    )
    head = (await git.communicate())[0].decode().strip()
    await rig.start("orchestrator", "o1")
    first = await rig.start("finance", head)
    (tmp_path / "logs").mkdir()
    (tmp_path / "finance.pid").write_text(f"{first.pid}\n")
    run_dir = ("--run-dir", str(tmp_path))

    deploy = await rollout_command(rig, "deploy", "finance", "--build-id", "f2", *run_dir)
    out, _ = await asyncio.wait_for(deploy.communicate(), 120)
    text = out.decode()
    assert deploy.returncode == 0, text
    for step in ("build f2 polls", "build f2 is current", f"build {head} drained", "stopped"):
        assert step in text, text
    assert not first.alive(), "the old build's worker stopped"
    second_pid = int((tmp_path / "finance.pid").read_text())
    again = await rollout_command(rig, "deploy", "finance", "--build-id", "f2", *run_dir)
    out, _ = await again.communicate()
    assert again.returncode == 1 and b"build f2 is already current" in out, out

    back = await rollout_command(rig, "rollback", "finance", *run_dir)
    out, _ = await asyncio.wait_for(back.communicate(), 180)
    text = out.decode()
    assert back.returncode == 0, text
    assert f"build {head} is current" in text and "build f2 drained" in text, text
    # A build id that is this checkout's own runs from the checkout; any other
    # commit (as in an edited tree) from a worktree of it.
    from_worktree = head != build_id()
    assert (tmp_path / "builds" / head / "meshkit").is_dir() == from_worktree
    assert worktree(tmp_path, head) == tmp_path / "builds" / head
    assert (tmp_path / "builds" / head / "meshkit" / "rollout").is_dir()
    rolled_back_pid = int((tmp_path / "finance.pid").read_text())
    assert rolled_back_pid != second_pid
    assert not running(second_pid), "build f2's worker stopped"

    listed = await rollout_command(rig, "versions", "finance")
    out, _ = await listed.communicate()
    assert f"{head}: current" in out.decode() and "f2: drained" in out.decode(), out

    orchestrator = await rig.client("orchestrator")
    config = SessionConfig.for_mesh(rig.mesh, model="offline")
    handle = await SessionClient(orchestrator, rig.mesh).open(
        f"ro-{uuid.uuid4().hex[:8]}", config=config
    )
    reply = await handle.send("calculate_roi principal=1000 annual_rate=10 years=2", 60)
    assert reply.ok and "1210.00" in reply.text, "the rolled-back build serves calls"
    os.kill(rolled_back_pid, signal.SIGTERM)
    remove = await asyncio.create_subprocess_exec(
        "git", "worktree", "remove", "--force", str(tmp_path / "builds" / head)
    )
    await remove.wait()


async def test_a_deployment_read_is_asked_again_after_its_deadline_but_a_change_is_not() -> None:
    calls: list[str] = []

    async def slow_once(request: str) -> str:
        calls.append(request)
        if len(calls) == 1:
            raise RPCError("Timeout expired", RPCStatusCode.CANCELLED, b"")
        return "answered"

    assert await deployment_rpc(slow_once, "describe", read=True) == "answered"
    assert calls == ["describe", "describe"]
    calls.clear()
    # A change that timed out may have been made: the caller decides what next.
    with pytest.raises(RPCError, match="Timeout expired"):
        await deployment_rpc(slow_once, "set current")
    assert calls == ["set current"]
