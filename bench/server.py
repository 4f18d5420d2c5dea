"""The benchmark's own Temporal dev server and mesh file, on free loopback ports.

Nothing is shared with a developer's running mesh (scripts/demo) or with the
test suite's server: the bench writes its own mesh file, with task queues and
endpoints suffixed per run, and points every process at it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from temporalio.service import RPCError

from meshdev.dev_server import DevServer, start_dev_server
from meshkit.mesh import DEFAULT_MESH_FILE, Mesh, MeshError, connect, load_mesh
from meshkit.polling import poll_until

# Environment that would point a process at another cluster or a real backend,
# or change what it traces.
FOREIGN_ENV = (
    "TEMPORAL_ADDRESS",
    "TEMPORAL_API_KEY",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_PROFILE",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "JIRA_URL",
    "MARKET_DATA_URL",
    "OPEN_METEO_URL",
    "OPEN_METEO_GEOCODING_URL",
    "LLM_BASE_URL",
    "LLM_API_KEY",
    # Tracing is off in the run's mesh; only the tracing phase's mesh switches it on.
    "MESH_TRACE_FILE",
    "MESH_TRACE_CONTENT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SDK_DISABLED",
)


def isolated_env(mesh_file: Path) -> dict[str, str]:
    """Environment for every bench process: this run's mesh, the offline
    model, demo backends, and no way to reach a hosted model by accident."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env.update(
        MESH_FILE=str(mesh_file),
        LLM_MODEL="offline",
        # A path that does not exist: no developer profile can redirect the bench.
        TEMPORAL_CONFIG_FILE=str(mesh_file.parent / "no-temporal.toml"),
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        OPENAI_API_KEY="sk-bench-never-valid",
        OPENAI_AGENTS_DISABLE_TRACING="1",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_server(workdir: Path, dynamic_config: Sequence[str] = ()) -> DevServer:
    """The dev server with the mesh's settings (``meshdev.dev_server``), on free
    ports; ``dynamic_config`` adds or overrides ``KEY=VALUE`` settings of the
    server's dynamic config, to see how one changes the figures."""
    return start_dev_server(
        workdir / "server.log", namespaces=namespaces(), dynamic_config=dynamic_config
    )


def write_mesh(workdir: Path, address: str) -> Path:
    """The repository's mesh on the bench's server, with task queues and
    endpoints suffixed so nothing collides with another mesh."""
    path = workdir / "mesh.toml"
    path.write_text(load_mesh(DEFAULT_MESH_FILE).isolated(uuid.uuid4().hex[:6], address).to_toml())
    return path


def namespaces() -> list[str]:
    mesh = load_mesh(DEFAULT_MESH_FILE)
    return [mesh.orchestrator.namespace, *(team.namespace for team in mesh.teams.values())]


async def wait_for_server(mesh: Mesh, server: DevServer, timeout_s: float = 60) -> None:
    async def up() -> bool:
        if server.process.poll() is not None:
            raise RuntimeError(f"the dev server exited; see {server.log}")
        await connect(mesh, mesh.orchestrator, require_namespace=True)
        return True

    # Unreachable (MeshError) or not yet serving the namespace (RPCError): still starting.
    await poll_until(
        up,
        timeout_s=timeout_s,
        interval_s=0.25,
        what="the dev server did not start",
        retry_on=(MeshError, RPCError),
    )
