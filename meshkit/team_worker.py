"""The generic team worker: runs any team of the mesh file from its registration.

It connects to the team's namespace, builds the team's handler from its
package's ``team.register()``, and runs it with the team's workflows and
activities behind the team's door (caller and approval checks,
:mod:`meshkit.toolkit.door`).
"""

from __future__ import annotations

import asyncio
import importlib
from datetime import timedelta

from temporalio.common import VersioningBehavior
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from meshkit import observability
from meshkit.mesh import Mesh, MeshError, connect, load_mesh
from meshkit.runtime import run_worker
from meshkit.toolkit.door import TeamDoor
from meshkit.toolkit.team import TeamContext, TeamRegistration
from meshkit.versioning import deployment_config


def load_registration(mesh: Mesh, team: str) -> TeamRegistration:
    """Import the team's package and call its ``team.register()``."""
    package = mesh.team_package(team)
    try:
        module = importlib.import_module(f"{package}.team")
    except ModuleNotFoundError as err:
        raise MeshError(
            f"team {team!r}: cannot import {package}.team ({err}); the mesh file's "
            f"`package` must name a package with a `team` module"
        ) from None
    register = getattr(module, "register", None)
    if not callable(register):
        raise MeshError(f"team {team!r}: {package}.team has no register() function")
    registration = register()
    if not isinstance(registration, TeamRegistration):
        raise MeshError(f"team {team!r}: {package}.team.register() must return a TeamRegistration")
    return registration


def team_context(mesh: Mesh, team: str, registration: TeamRegistration) -> TeamContext:
    config = mesh.team(team)
    return TeamContext(
        name=team,
        namespace=config.namespace,
        task_queue=config.task_queue,
        policies=dict(registration.policies),
        hints=dict(registration.hints),
    )


async def main(
    mesh: Mesh,
    team: str,
    registration: TeamRegistration | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run ``team``'s worker until ``stop`` is set (or SIGINT/SIGTERM when None)."""
    config = mesh.team(team)
    registration = registration or load_registration(mesh, team)
    context = team_context(mesh, team, registration)
    door = TeamDoor(team, registration.policies, mesh.team_callers(team))
    # A team's workflows are short tool calls: unless one says otherwise, each
    # finishes on the version that started it, so a rollout never changes
    # the code under a call in flight (and needs no patching to stay safe).
    deployment = deployment_config(config, VersioningBehavior.PINNED)
    telemetry = observability.setup(
        team,
        config.namespace,
        build_id=deployment.version.build_id if deployment else None,
    )
    client = await connect(
        mesh,
        config,
        tracing=telemetry.plugins,
        data_converter=pydantic_data_converter,
        interceptors=[door],
        require_namespace=True,
    )
    worker = Worker(
        client,
        task_queue=config.task_queue,
        nexus_service_handlers=[registration.handler(context)],
        workflows=list(registration.workflows),
        activities=list(registration.activities),
        graceful_shutdown_timeout=timedelta(seconds=10),
        deployment_config=deployment,
    )
    try:
        await run_worker(worker, team, stop, version=deployment.version if deployment else None)
    finally:
        telemetry.shutdown()


async def run_team(team: str) -> None:
    """The team worker process: the mesh file from ``MESH_FILE`` or ./mesh.toml."""
    await main(load_mesh(), team)
