"""The demo's rollouts: start the new build's worker process beside the old,
roll out (:func:`meshkit.rollout.rollout`), stop the old one.

Used by ``scripts/demo deploy|rollback <component>``::

    python -m meshdev.rollout deploy finance [--build-id B] [--ramp 25 --ramp 50] [--hotfix]
    python -m meshdev.rollout rollback finance

The demo keeps each worker's pid in ``<run dir>/<component>.pid`` (the current
build's worker) and, while an older build drains, ``<component>@<build>.pid``.
A new build's worker runs from this checkout; a rollback to a build that is a
commit of this repository and no longer runs starts it from a git worktree
of that commit under ``<run dir>/builds/``. Where a platform runs the workers,
``python -m meshkit.rollout promote|wait-drained`` takes the steps instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from temporalio.common import WorkerDeploymentVersion

from meshdev.processes import ROOT, running, spawn_worker
from meshkit.mesh import NamespaceConfig, connect, load_mesh, mesh_path
from meshkit.polling import poll_until
from meshkit.rollout import RolloutError, previous_build, rollout
from meshkit.rollout.cli import DrainTimeout, Hotfix, Ramp, RampWait, run
from meshkit.versioning import BUILD_ID_ENV, build_id, routing

cli = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)

RunDir = Annotated[Path, typer.Option(help="The demo's run directory (pids, logs).")]
DEFAULT_RUN_DIR = ROOT / ".run"


class Pids:
    """The demo's pidfiles of one component."""

    def __init__(self, run_dir: Path, component: str) -> None:
        self.run_dir, self.component = run_dir, component

    def current(self) -> Path:
        return self.run_dir / f"{self.component}.pid"

    def of(self, build: str) -> Path:
        return self.run_dir / f"{self.component}@{build}.pid"

    def log(self, build: str) -> Path:
        return self.run_dir / "logs" / f"{self.component}@{build}.log"


def read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if running(pid) else None


async def stop_pid(pid: int, timeout_s: float = 30) -> None:
    """SIGTERM (the worker's graceful shutdown), then SIGKILL if it hangs."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:
        await poll_until(
            lambda: not running(pid), timeout_s=timeout_s, interval_s=0.1, what=f"{pid} stopped"
        )
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        await poll_until(
            lambda: not running(pid), timeout_s=10, interval_s=0.1, what=f"{pid} killed"
        )


def worktree(run_dir: Path, build: str) -> Path | None:
    """A checkout of ``build`` when it names a commit of this repository."""
    path = run_dir / "builds" / build
    if (path / "meshkit").is_dir():
        return path
    done = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), build],
        capture_output=True,
        text=True,
        check=False,
    )
    return path if done.returncode == 0 else None


async def start_build(component: str, build: str, pids: Pids, cwd: Path | None = None) -> int:
    """Start ``component``'s worker as ``build`` and wait until it polls."""
    env = {BUILD_ID_ENV: build, "MESH_FILE": str(mesh_path().resolve())}
    worker = spawn_worker(component, env, pids.log(build), cwd=cwd)
    try:
        await worker.wait_ready(90)
    except BaseException:
        worker.stop(5)
        raise
    pids.of(build).write_text(f"{worker.pid}\n")
    return worker.pid


async def _deploy(
    component: str,
    build: str | None,
    ramp: list[float],
    ramp_wait: float,
    hotfix: bool,
    drain_timeout: float,
    run_dir: Path,
    rollback: bool = False,
) -> None:
    mesh = load_mesh()
    config: NamespaceConfig = mesh.component(component)
    client = await connect(mesh, config, require_namespace=True)
    pids = Pids(run_dir, component)
    state = await routing(client, config.deployment_name)
    old = state.current if state else None
    if rollback:
        if old is None:
            raise RolloutError(f"{component}: no version is current, nothing to roll back")
        build = await previous_build(client, config.deployment_name, old)
        if build is None:
            raise RolloutError(
                f"{component}: build {old} records no previous build (it was the first)"
            )
    new = build or build_id()
    if new == old:
        raise RolloutError(
            f"{component}: build {new} is already current; change the code (or pass "
            "--build-id) to deploy a new build, or use `scripts/demo restart`"
        )
    new_pid = read_pid(pids.of(new))
    cwd = None
    if new_pid is None and rollback and build != build_id():
        cwd = worktree(run_dir, new)
        if cwd is None:
            raise RolloutError(
                f"{component}: build {new} no longer runs and is not a commit of this "
                f"repository; start it with {BUILD_ID_ENV}={new} and its code, then "
                "run the rollback again"
            )
    # The running worker of the current build moves to its versioned pidfile.
    old_pid = read_pid(pids.current())
    if old and old_pid:
        pids.of(old).write_text(f"{old_pid}\n")
        pids.current().unlink(missing_ok=True)

    async def stop_old() -> None:
        if old is not None and (pid := read_pid(pids.of(old))) is not None:
            await stop_pid(pid)
            pids.of(old).unlink(missing_ok=True)

    try:
        if new_pid is not None:
            typer.echo(f"{component}: the worker of build {new} runs already (pid {new_pid})")
        else:
            typer.echo(f"{component}: starting build {new} (log {pids.log(new)})")
            await start_build(component, new, pids, cwd)
        await rollout(
            client,
            component,
            WorkerDeploymentVersion(config.deployment_name, new),
            stop_old=stop_old,
            ramp=tuple(ramp),
            ramp_wait_s=ramp_wait,
            move_pinned_calls=hotfix,
            drain_timeout_s=drain_timeout,
            report=typer.echo,
        )
    finally:
        # Whatever happened, the current build's worker is the component's pid.
        state = await routing(client, config.deployment_name)
        if state and state.current and (pid := read_pid(pids.of(state.current))):
            pids.current().write_text(f"{pid}\n")
            pids.of(state.current).unlink(missing_ok=True)


@cli.command()
def deploy(
    component: Annotated[str, typer.Argument(help="'orchestrator' or a team of the mesh file.")],
    build_id: Annotated[
        str | None, typer.Option(help="Build id of the new version; default: this checkout's.")
    ] = None,
    ramp: Ramp = None,
    ramp_wait: RampWait = 10.0,
    hotfix: Hotfix = False,
    drain_timeout: DrainTimeout = 600.0,
    run_dir: RunDir = DEFAULT_RUN_DIR,
) -> None:
    """Start the new build beside the old, make it current, drain and stop the old."""
    run(_deploy(component, build_id, ramp or [], ramp_wait, hotfix, drain_timeout, run_dir))


@cli.command()
def rollback(
    component: Annotated[str, typer.Argument(help="'orchestrator' or a team of the mesh file.")],
    drain_timeout: DrainTimeout = 600.0,
    run_dir: RunDir = DEFAULT_RUN_DIR,
) -> None:
    """Make the build that was current before the current one current again."""
    run(_deploy(component, None, [], 0, False, drain_timeout, run_dir, rollback=True))


if __name__ == "__main__":
    cli()
