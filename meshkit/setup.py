"""Create the mesh's namespaces and Nexus endpoints if they are missing.

Run: ``python -m workers.setup [--mesh PATH]``. Idempotent: it says, for every
namespace and endpoint, whether it was found, created or updated. Namespaces
are registered on the cluster each one's profile points at; endpoints on the
orchestrator's cluster, which is where callers resolve them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import Payload
from temporalio.api.nexus.v1 import EndpointSpec, EndpointTarget
from temporalio.api.operatorservice.v1 import (
    CreateNexusEndpointRequest,
    ListNexusEndpointsRequest,
    UpdateNexusEndpointRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from meshkit.mesh import Mesh, MeshError, NamespaceConfig, connect, load_mesh
from meshkit.runtime import exit_now
from meshkit.team_worker import load_registration, team_context
from meshkit.toolkit.catalog import build_catalog

RETENTION = timedelta(days=3)


@dataclass(frozen=True)
class Change:
    kind: str  # "namespace" or "endpoint"
    name: str
    action: str  # "found", "created" or "updated"
    detail: str = ""

    def __str__(self) -> str:
        suffix = f" ({self.detail})" if self.detail else ""
        return f"{self.kind} {self.name}: {self.action}{suffix}"


async def ensure_namespace(client: Client, namespace: str) -> Change:
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
        return Change("namespace", namespace, "found")
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    try:
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=namespace,
                workflow_execution_retention_period=Duration(
                    seconds=int(RETENTION.total_seconds())
                ),
            )
        )
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise
        return Change("namespace", namespace, "found")
    return Change("namespace", namespace, "created", f"retention {RETENTION.days} days")


def endpoint_description(mesh: Mesh, team: str) -> str:
    """Markdown the Temporal UI shows for a team's endpoint: its catalog.

    Built from the team's code (its registration), as its worker would serve
    it; a team whose code is not importable here gets a one-line description.
    """
    config = mesh.team(team)
    try:
        registration = load_registration(mesh, team)
        context = team_context(mesh, team, registration)
        if registration.handler is None:
            raise ValueError("its tools come from its MCP servers, listed when its worker starts")
        catalog = build_catalog(
            registration.handler(context).__class__,
            team=team,
            namespace=config.namespace,
            policies=dict(registration.policies),
            hints=dict(registration.hints),
            imports_pending=bool(registration.mcp_servers),
        )
    except Exception as err:  # the team's code is not here: describe what the mesh file says
        return f"Team {team}: {config.service} in namespace {config.namespace} ({err})."
    lines = [f"**Team {team}**: `{catalog.service}` in namespace `{config.namespace}`.", ""]
    for tool in catalog.tools:
        approval = " Needs approval." if tool.approval else ""
        lines.append(
            f"- `{tool.name}` ({tool.kind}, {tool.timeout_s:g} s): {tool.description}{approval}"
        )
    servers = ", ".join(server.name for server in registration.mcp_servers)
    if servers:
        lines.append(
            f"- and the tools of its MCP servers ({servers}), listed when its worker starts"
        )
    lines += ["", f"Callers: {', '.join(mesh.team_callers(team))}. Catalog {catalog.version}."]
    return "\n".join(lines)


def _description_payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


async def ensure_endpoint(
    client: Client, name: str, namespace: str, task_queue: str, description: str = ""
) -> Change:
    target = EndpointTarget(
        worker=EndpointTarget.Worker(namespace=namespace, task_queue=task_queue)
    )
    spec = EndpointSpec(name=name, target=target)
    if description:
        spec.description.CopyFrom(_description_payload(description))
    listed = await client.operator_service.list_nexus_endpoints(
        ListNexusEndpointsRequest(name=name)
    )
    where = f"-> {namespace}/{task_queue}"
    for endpoint in listed.endpoints:
        if endpoint.spec.name != name:
            continue
        if endpoint.spec.target == target and endpoint.spec.description == spec.description:
            return Change("endpoint", name, "found", where)
        await client.operator_service.update_nexus_endpoint(
            UpdateNexusEndpointRequest(id=endpoint.id, version=endpoint.version, spec=spec)
        )
        return Change("endpoint", name, "updated", where)
    # A namespace registered a moment ago is not visible to every part of the
    # server at once: creating an endpoint that targets it fails with
    # FAILED_PRECONDITION until the namespace cache refreshes (~10 s).
    for delay in _NAMESPACE_VISIBILITY_BACKOFF:
        try:
            await client.operator_service.create_nexus_endpoint(
                CreateNexusEndpointRequest(spec=spec)
            )
        except RPCError as err:
            if err.status == RPCStatusCode.ALREADY_EXISTS:
                return Change("endpoint", name, "found", where)
            if err.status != RPCStatusCode.FAILED_PRECONDITION or delay is None:
                raise
            await asyncio.sleep(delay)
        else:
            return Change("endpoint", name, "created", where)
    raise AssertionError("unreachable")


_NAMESPACE_VISIBILITY_BACKOFF = [0.5, 1, 1, 2, 2, 2, 4, 4, 4, 4, None]


async def setup_mesh(mesh: Mesh) -> list[Change]:
    """Make the namespaces and endpoints of ``mesh`` exist; returns what was done."""
    changes: list[Change] = []
    targets: list[NamespaceConfig] = [mesh.orchestrator, *mesh.teams.values()]
    for target in targets:
        client = await connect(mesh, target)
        changes.append(await _rpc(ensure_namespace(client, target.namespace), target.namespace))
    caller = await connect(mesh, mesh.orchestrator)
    for name, team in mesh.teams.items():
        changes.append(
            await _rpc(
                ensure_endpoint(
                    caller,
                    team.endpoint,
                    team.namespace,
                    team.task_queue,
                    endpoint_description(mesh, name),
                ),
                team.endpoint,
            )
        )
    return changes


async def _rpc(call, what: str) -> Change:  # type: ignore[no-untyped-def]
    try:
        return await call
    except RPCError as err:
        raise MeshError(f"setting up {what} failed: {err.status.name}: {err.message}") from err


def cli(
    mesh_file: Annotated[
        Path | None, typer.Option("--mesh", help="Mesh file (default: MESH_FILE or ./mesh.toml).")
    ] = None,
) -> None:
    """Create the mesh's namespaces and Nexus endpoints if missing, and say what was done."""
    code = 0
    try:
        mesh = load_mesh(mesh_file)
        for change in asyncio.run(setup_mesh(mesh)):
            typer.echo(str(change))
    except MeshError as err:
        typer.echo(f"error: {err}", err=True)
        code = 2
    exit_now(code)
