"""Promote a running build, wait for one to drain, or show a component's versions.

Where a platform runs the workers (Kubernetes), for a build whose worker
already runs::

    python -m meshkit.rollout promote finance --build-id B   # current, then wait for the old to drain
    python -m meshkit.rollout wait-drained finance           # a preStop hook: until this build drained
    python -m meshkit.rollout versions finance

These start no process. The demo's ``deploy`` and ``rollback``, which start and
stop worker processes on this machine, are :mod:`meshdev.rollout`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from temporalio.api.enums.v1 import VersionDrainageStatus
from temporalio.common import WorkerDeploymentVersion

from meshkit.mesh import MeshError, connect, load_mesh
from meshkit.polling import poll_until
from meshkit.rollout.steps import RolloutError, describe_version, drainage, rollout
from meshkit.runtime import exit_now
from meshkit.versioning import build_id as build_id_default
from meshkit.versioning import registered_builds, routing

cli = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)

# The options promote and the demo's deploy (meshdev.rollout) share.
Ramp = Annotated[
    list[float] | None, typer.Option(help="Ramp percentages to pass through, in order.")
]
RampWait = Annotated[float, typer.Option(help="Seconds at each ramp step.")]
Hotfix = Annotated[
    bool, typer.Option(help="Also move the old build's open pinned calls to the new one.")
]
DrainTimeout = Annotated[float, typer.Option(help="Seconds to wait for draining.")]


def run(coroutine: object) -> None:
    """Run a command's coroutine; a failure is one line on stderr and exit status 1."""
    code = 0
    try:
        asyncio.run(coroutine)  # type: ignore[arg-type]
    except (RolloutError, MeshError, RuntimeError, TimeoutError) as err:
        typer.echo(f"error: {err}", err=True)
        code = 1
    exit_now(code)


async def _versions(component: str) -> None:
    mesh = load_mesh()
    config = mesh.component(component)
    client = await connect(mesh, config, require_namespace=True)
    state = await routing(client, config.deployment_name)
    typer.echo(f"deployment {config.deployment_name} (namespace {config.namespace})")
    for build in sorted(await registered_builds(client, config.deployment_name)):
        info = await describe_version(client, config.deployment_name, build)
        drainage = VersionDrainageStatus.Name(info.drainage_info.status)  # type: ignore[attr-defined]
        if state and build == state.current:
            role = "current"
        elif state and build == state.ramping:
            role = f"ramping {state.ramp_percentage:g}%"
        else:
            role = drainage.removeprefix("VERSION_DRAINAGE_STATUS_").lower()
            role = "inactive" if role == "unspecified" else role
        typer.echo(f"  {build}: {role}")


@cli.command()
def versions(
    component: Annotated[str, typer.Argument(help="'orchestrator' or a team of the mesh file.")],
) -> None:
    """The deployment's versions and which one is current."""
    run(_versions(component))


async def _promote(
    component: str, build: str, ramp: list[float], ramp_wait: float, hotfix: bool, drain_s: float
) -> None:
    mesh = load_mesh()
    config = mesh.component(component)
    client = await connect(mesh, config, require_namespace=True)
    report = await rollout(
        client,
        component,
        WorkerDeploymentVersion(config.deployment_name, build),
        ramp=tuple(ramp),
        ramp_wait_s=ramp_wait,
        move_pinned_calls=hotfix,
        drain_timeout_s=drain_s,
        report=typer.echo,
    )
    if report.old_build and report.drained:
        typer.echo(f"{component}: build {report.old_build} drained; its workers may stop now")


@cli.command()
def promote(
    component: Annotated[str, typer.Argument(help="'orchestrator' or a team of the mesh file.")],
    build_id: Annotated[str, typer.Option(help="Build id of the running new version.")],
    ramp: Ramp = None,
    ramp_wait: RampWait = 10.0,
    hotfix: Hotfix = False,
    drain_timeout: DrainTimeout = 600.0,
) -> None:
    """Make a running build current and wait for the old one to drain (no processes started)."""
    run(_promote(component, build_id, ramp or [], ramp_wait, hotfix, drain_timeout))


async def _wait_drained(component: str, build: str, limit_s: float) -> None:
    mesh = load_mesh()
    config = mesh.component(component)
    client = await connect(mesh, config)
    said = False

    async def done() -> str | None:
        nonlocal said
        state = await routing(client, config.deployment_name)
        if state is None or (state.current in (None, build) and state.ramping != build):
            # Still current (a node drain, a scale-down): other workers of this
            # build carry on, and this one may stop now.
            return "is current; nothing to wait for"
        if await drainage(client, config.deployment_name, build) == "DRAINED":
            return "drained"
        if not said:
            typer.echo(f"{component}: build {build} is draining; waiting for its pinned workflows")
            said = True
        return None

    try:
        outcome = await poll_until(
            done, timeout_s=limit_s, interval_s=1, what=f"{component}: build {build} did not drain"
        )
    except TimeoutError as err:
        raise RolloutError(str(err)) from None
    typer.echo(f"{component}: build {build} {outcome}")


@cli.command("wait-drained")
def wait_drained(
    component: Annotated[str, typer.Argument(help="'orchestrator' or a team of the mesh file.")],
    build_id: Annotated[
        str | None, typer.Option(help="The build to wait for; default: MESH_BUILD_ID.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most.")] = 570.0,
) -> None:
    """Return once this build is no longer needed: drained, or still current."""
    run(_wait_drained(component, build_id or build_id_default(), timeout))
