"""The generic team worker: runs any team of the mesh file from its registration.

It connects to the team's namespace, builds the team's handler from its
package's ``team.register()``, and runs it with the team's workflows and
activities behind the team's door (caller and approval checks,
:mod:`meshkit.toolkit.door`).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from nexusrpc import get_service_definition
from temporalio.common import VersioningBehavior
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from meshkit import failover, observability
from meshkit.mesh import Mesh, MeshError, connect, load_mesh
from meshkit.runtime import run_worker
from meshkit.toolkit.catalog import ToolEntry
from meshkit.toolkit.door import TeamDoor
from meshkit.toolkit.team import TeamContext, TeamRegistration, TeamServiceHandler
from meshkit.tuning import PollerSettings
from meshkit.versioning import deployment_config

if TYPE_CHECKING:
    from meshkit.toolkit.mcp_servers import McpLink


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


def team_context(
    mesh: Mesh,
    team: str,
    registration: TeamRegistration,
    imported: Mapping[str, ToolEntry] | None = None,
) -> TeamContext:
    config = mesh.team(team)
    return TeamContext(
        name=team,
        namespace=config.namespace,
        task_queue=config.task_queue,
        policies=dict(registration.policies),
        hints=dict(registration.hints),
        imported=dict(imported or {}),
    )


async def serve_mcp_tools(
    mesh: Mesh, team: str, registration: TeamRegistration
) -> tuple[TeamServiceHandler, dict[str, McpLink]]:
    """The team's handler with the tools of its MCP servers added, and the
    servers' links (started; the caller closes them). The catalog is built
    once here, so a policy or hint that fits no tool stops the worker at start.

    The MCP client is imported here, not with this module: importing it costs
    a worker about a second of its start, and only a team with servers needs it.
    """
    from meshkit.toolkit.mcp_operations import with_imported_tools
    from meshkit.toolkit.mcp_servers import close_servers, open_servers

    context = team_context(mesh, team, registration)
    base = registration.handler(context) if registration.handler else TeamServiceHandler(context)
    definition = get_service_definition(type(base))
    hand_written = set(definition.operation_definitions) if definition else set()
    links, tools = await open_servers(registration.mcp_servers, hand_written)
    try:
        # The handler serves its catalog from its context, now with the imported tools.
        base.team = team_context(
            mesh, team, registration, {name: tool.entry for name, tool in tools.items()}
        )
        handler = with_imported_tools(base, mesh.team(team).service, tools)
        handler.served_catalog()
    except BaseException:
        await close_servers(links)
        raise
    return handler, links


async def main(
    mesh: Mesh,
    team: str,
    registration: TeamRegistration | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run ``team``'s worker until ``stop`` is set (or SIGINT/SIGTERM when None)."""
    config = mesh.team(team)
    pollers = PollerSettings()
    registration = registration or load_registration(mesh, team)
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
    workflows, activities = list(registration.workflows), list(registration.activities)
    links: dict[str, McpLink] = {}
    try:
        if registration.mcp_servers:
            from meshkit.toolkit.mcp_servers import McpActivities
            from meshkit.toolkit.mcp_workflow import McpToolWorkflow

            handler, links = await serve_mcp_tools(mesh, team, registration)
            workflows.append(McpToolWorkflow)
            activities.append(McpActivities(links).call_mcp_tool)
        else:
            assert registration.handler is not None
            handler = registration.handler(team_context(mesh, team, registration))
        worker = Worker(
            client,
            task_queue=config.task_queue,
            nexus_service_handlers=[handler],
            workflows=workflows,
            activities=activities,
            graceful_shutdown_timeout=timedelta(seconds=10),
            deployment_config=deployment,
            **pollers.worker_options(),
            # A replica takes over a dead one's calls within seconds (meshkit.failover).
            interceptors=[failover.Heartbeats()],
            **failover.worker_options(),
            # meshkit's modules (the MCP tool workflow among them) are loaded once,
            # not per workflow run: the package's import runs code the sandbox forbids.
            workflow_runner=SandboxedWorkflowRunner(
                restrictions=SandboxRestrictions.default.with_passthrough_modules("meshkit")
            ),
        )
        await run_worker(worker, team, stop, version=deployment.version if deployment else None)
    finally:
        if links:
            from meshkit.toolkit.mcp_servers import close_servers

            await close_servers(links)
        telemetry.shutdown()


async def run_team(team: str) -> None:
    """The team worker process: the mesh file from ``MESH_FILE`` or ./mesh.toml."""
    await main(load_mesh(), team)
