"""Workers answer the health checks that Kubernetes probes and compose use:
ready while they poll and their namespace answers, unhealthy when Temporal
cannot be reached, alive while their event loop runs.

The worker is a real process reaching Temporal through a TCP relay that the
test can cut, as a network partition would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from meshdev.dev_server import free_port
from meshkit.mesh import Mesh
from tests.processes import WorkerProcess, own_mesh

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Relay:
    """Forwards TCP connections to ``target``; :meth:`cut` drops them all."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.open = True
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        self.open = False
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()


@pytest_asyncio.fixture(loop_scope="session")
async def relayed_worker(
    running_mesh: Mesh, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[WorkerProcess, Relay, str]]:
    relay = Relay(running_mesh.temporal.default_address)
    await relay.start()
    directory = tmp_path_factory.mktemp("health")
    async with own_mesh(running_mesh, directory, "hc", address=relay.address) as own:
        port = free_port()
        env = {"MESH_HEALTH_PORT": str(port), "MESH_BUILD_ID": "hc1"}
        worker = await own.start("finance", env)
        yield worker, relay, f"http://127.0.0.1:{port}"
        await worker.stop(10)
    await relay.close()


async def test_a_polling_worker_is_alive_and_ready(
    relayed_worker: tuple[WorkerProcess, Relay, str],
) -> None:
    _, _, url = relayed_worker
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        live = await http.get("/livez")
        ready = await http.get("/readyz")
        missing = await http.get("/metrics")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ok",
        "component": "finance",
        "namespace": "finance",
        "build_id": "hc1",
    }
    assert missing.status_code == 404


async def test_a_worker_that_cannot_reach_its_namespace_reports_unhealthy(
    relayed_worker: tuple[WorkerProcess, Relay, str],
) -> None:
    worker, relay, url = relayed_worker
    relay.cut()
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        ready = await http.get("/readyz")
        live = await http.get("/livez")
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert body["status"] == "unhealthy"
    assert "namespace 'finance' does not answer" in body["reason"]
    # Not reaching Temporal is no reason to restart the process: it stays alive.
    assert live.status_code == 200
    assert worker.alive()
