"""The benchmark's own Temporal dev server and mesh file, on free loopback ports.

Nothing is shared with a developer's running mesh (scripts/demo) or with the
test suite's server: the bench writes its own mesh file, with task queues and
endpoints suffixed per run, and points every process at it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workers.dev_server import dynamic_config_args
from workers.mesh import DEFAULT_MESH_FILE, Mesh, connect, load_mesh

NAMESPACES = ("orchestrator", "it", "finance")

# Environment that would point a process at another cluster or a real backend.
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
)


def temporal_cli() -> str:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    for candidate in (
        os.environ.get("TEMPORAL_CLI"),
        str(cache / "nexus-tool-mesh" / "bin" / "temporal"),
        shutil.which("temporal"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    raise RuntimeError(
        "Temporal CLI not found: run scripts/bench (it builds it) or set TEMPORAL_CLI"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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


@dataclass
class DevServer:
    process: subprocess.Popen[bytes]
    address: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(workdir: Path, dynamic_config: Sequence[str] = ()) -> DevServer:
    """Start the dev server with the mesh's dev-server settings
    (``workers.dev_server``); ``dynamic_config`` adds or overrides ``KEY=VALUE``
    settings of the server's dynamic config, to see how one changes the figures."""
    port = free_port()
    log = workdir / "server.log"
    args = [
        temporal_cli(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
        "--port", str(port), "--http-port", str(free_port()), "--metrics-port", str(free_port()),
        "--log-level", "error", *dynamic_config_args(tuple(dynamic_config)),
    ]  # fmt: skip
    for namespace in NAMESPACES:
        args += ["--namespace", namespace]
    with log.open("w") as out:
        # Its own session: a Ctrl-C in the terminal reaches the bench, which
        # then stops the server after the workers, not all at once.
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return DevServer(process, f"127.0.0.1:{port}", log)


def write_mesh(workdir: Path, address: str) -> Path:
    """The repository's mesh on the bench's server, with task queues and
    endpoints suffixed so nothing collides with another mesh."""
    path = workdir / "mesh.toml"
    path.write_text(load_mesh(DEFAULT_MESH_FILE).isolated(uuid.uuid4().hex[:6], address).to_toml())
    return path


async def wait_for_server(mesh: Mesh, server: DevServer, timeout_s: float = 60) -> None:
    last: Exception | None = None
    for _ in range(int(timeout_s / 0.25)):
        if server.process.poll() is not None:
            raise RuntimeError(f"the dev server exited; see {server.log}")
        try:
            await connect(mesh, mesh.orchestrator, require_namespace=True)
            return
        except Exception as err:  # still starting
            last = err
            await asyncio.sleep(0.25)
    raise RuntimeError(f"the dev server did not start within {timeout_s:.0f} s: {last}")
