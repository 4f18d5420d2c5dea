"""The demo's rollouts: start the new build's worker process beside the old,
roll out (:func:`meshkit.rollout.rollout`), stop the old one.

Used by ``scripts/demo deploy|rollback <component>``::

    python -m meshdev.rollout deploy finance [--build-id B] [--ramp 25 --ramp 50] [--hotfix]
    python -m meshdev.rollout rollback finance

The demo keeps each replica's pid in ``<run dir>/<component>.pid`` and
``<component>-<n>.pid`` (the current build's workers, :mod:`meshdev.replicas`)
and, while an older build drains, ``<component>[-<n>]@<build>.pid``. The new
build runs as many replicas as the current one (``--replicas`` changes that),
all polling before the rollout starts; every replica of the old build stops
once it has drained. A new build's workers run from this checkout; a rollback to a build that is a
commit of this repository and no longer runs starts it from a git worktree
of that commit under ``<run dir>/builds/``. Where a platform runs the workers,
``python -m meshkit.rollout promote|wait-drained`` takes the steps instead.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from temporalio.common import WorkerDeploymentVersion

from meshdev.processes import ROOT, components
from meshdev.replicas import (
    SPEC_ENV,
    Replica,
    ReplicaError,
    free_ports,
    parse_replicas,
    read_pid,
    replica_files,
    running_replicas,
    start_replica,
    stop_pid,
    takeover_env,
)
from meshkit.mesh import NamespaceConfig, connect, load_mesh, mesh_path
from meshkit.rollout import RolloutError, previous_build, rollout
from meshkit.rollout.cli import DrainTimeout, Hotfix, Ramp, RampWait, run
from meshkit.versioning import BUILD_ID_ENV, build_id, routing

cli = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)

RunDir = Annotated[Path, typer.Option(help="The demo's run directory (pids, logs).")]
DEFAULT_RUN_DIR = ROOT / ".run"
Replicas = Annotated[
    int | None,
    typer.Option(
        min=1, max=16, help="Replicas of the new build; default: as many as the current one runs."
    ),
]


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


async def start_builds(
    component: str, build: str, run_dir: Path, count: int, cwd: Path | None = None
) -> None:
    """Start ``count`` replicas of ``component`` as ``build`` (those not running
    yet), beside the current build's, and wait until every one polls."""
    env = {
        BUILD_ID_ENV: build,
        "MESH_FILE": str(mesh_path().resolve()),
        **takeover_env(component, count),
    }
    known = components(tuple(load_mesh().teams))
    runs = running_replicas(run_dir, component, build)
    starts, taken = [], set[int]()
    for n in range(1, count + 1):
        if n in runs:
            continue
        replica = Replica(component, n)
        ports = free_ports(run_dir, known, exclude=taken)
        taken |= set(ports.values())
        typer.echo(f"{component}: starting build {build} (log {replica.log(run_dir, build)})")
        starts.append(start_replica(run_dir, replica, ports, env, build=build, cwd=cwd))
    await asyncio.gather(*starts)


def _move(run_dir: Path, component: str, source: str | None, target: str | None) -> None:
    """Rename the pidfiles of ``component``'s replicas from one build's names to
    another's (``None``: the current build's names)."""
    for n, path in replica_files(run_dir, component, source).items():
        pid = read_pid(path)
        path.unlink(missing_ok=True)
        if pid is not None:
            Replica(component, n).pidfile(run_dir, target).write_text(f"{pid}\n")


async def _deploy(
    component: str,
    build: str | None,
    ramp: list[float],
    ramp_wait: float,
    hotfix: bool,
    drain_timeout: float,
    run_dir: Path,
    rollback: bool = False,
    replicas: int | None = None,
) -> None:
    mesh = load_mesh()
    config: NamespaceConfig = mesh.component(component)
    client = await connect(mesh, config, require_namespace=True)
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
    new_runs = running_replicas(run_dir, component, new)
    cwd = None
    if not new_runs and rollback and build != build_id():
        cwd = worktree(run_dir, new)
        if cwd is None:
            raise RolloutError(
                f"{component}: build {new} no longer runs and is not a commit of this "
                f"repository; start it with {BUILD_ID_ENV}={new} and its code, then "
                "run the rollback again"
            )
    # The new build runs the replicas asked for (--replicas, MESH_REPLICAS), else
    # as many as the current one (at least one).
    try:
        asked = parse_replicas(os.environ.get(SPEC_ENV, ""), components(tuple(mesh.teams)))
    except ReplicaError as err:
        raise RolloutError(str(err)) from None
    count = replicas or asked.get(component) or max(len(running_replicas(run_dir, component)), 1)
    # The running replicas of the current build move to their versioned pidfiles.
    if old:
        _move(run_dir, component, None, old)

    async def stop_old() -> None:
        if old is None:
            return
        # Every replica of the old build stops once the new build is current.
        for n, pid in running_replicas(run_dir, component, old).items():
            await stop_pid(pid)
            Replica(component, n).pidfile(run_dir, old).unlink(missing_ok=True)

    try:
        if len(new_runs) >= count:
            pids = ", ".join(str(pid) for pid in new_runs.values())
            typer.echo(f"{component}: the workers of build {new} run already (pid {pids})")
        else:
            await start_builds(component, new, run_dir, count, cwd)
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
        # Whatever happened, the current build's workers are the component's pids.
        state = await routing(client, config.deployment_name)
        if state and state.current and running_replicas(run_dir, component, state.current):
            _move(run_dir, component, state.current, None)


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
    replicas: Replicas = None,
) -> None:
    """Start the new build beside the old, make it current, drain and stop the old."""
    run(
        _deploy(
            component, build_id, ramp or [], ramp_wait, hotfix, drain_timeout, run_dir,
            replicas=replicas,
        )
    )  # fmt: skip


@cli.command()
def rollback(
    component: Annotated[str, typer.Argument(help="'orchestrator' or a team of the mesh file.")],
    drain_timeout: DrainTimeout = 600.0,
    run_dir: RunDir = DEFAULT_RUN_DIR,
    replicas: Replicas = None,
) -> None:
    """Make the build that was current before the current one current again."""
    run(
        _deploy(
            component, None, [], 0, False, drain_timeout, run_dir,
            rollback=True, replicas=replicas,
        )
    )  # fmt: skip


if __name__ == "__main__":
    cli()
