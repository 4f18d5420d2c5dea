"""A worker's health check, for Kubernetes probes and compose health checks.

With ``MESH_HEALTH_PORT`` set, a worker answers HTTP on that port:

- ``GET /livez``: 200 while the worker's event loop answers within 5 s (a
  wedged loop polls nothing and should be restarted);
- ``GET /readyz``: 200 when the worker polls its task queue and its namespace
  answers a ``DescribeNamespace`` within 3 s; 503 with the reason otherwise.

Both answer JSON: ``{"status": "ok" | "unhealthy", "component", "namespace",
"build_id", "reason"?}``. The server runs on a thread of its own, so a probe
never waits behind the worker's tasks, and it asks the event loop for each
answer, so it cannot report a loop that no longer runs as alive.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.worker import Worker

log = logging.getLogger("meshkit.health")

PORT_ENV = "MESH_HEALTH_PORT"
HOST_ENV = "MESH_HEALTH_HOST"
LIVE_TIMEOUT_S = 5.0
READY_TIMEOUT_S = 3.0


@dataclass
class Verdict:
    ok: bool
    reason: str | None = None


class WorkerHealth:
    """What the probes ask of one worker."""

    def __init__(self, worker: Worker, component: str, build_id: str | None) -> None:
        self.worker = worker
        self.component = component
        self.build_id = build_id

    async def live(self) -> Verdict:
        return Verdict(True)

    async def ready(self) -> Verdict:
        if not self.worker.is_running or self.worker.is_shutdown:
            return Verdict(False, "the worker is not polling")
        client = self.worker.client
        try:
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=client.namespace),
                timeout=timedelta(seconds=READY_TIMEOUT_S - 0.5),
            )
        except Exception as err:  # any failure to reach the namespace means not ready
            return Verdict(False, f"namespace {client.namespace!r} does not answer: {err}")
        return Verdict(True)

    def body(self, verdict: Verdict) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "ok" if verdict.ok else "unhealthy",
            "component": self.component,
            "namespace": self.worker.client.namespace,
            "build_id": self.build_id,
        }
        if verdict.reason:
            body["reason"] = verdict.reason
        return body


class HealthServer:
    """``/livez`` and ``/readyz`` over HTTP, answered by asking the worker's loop."""

    def __init__(
        self, health: WorkerHealth, loop: asyncio.AbstractEventLoop, host: str, port: int
    ) -> None:
        self.health = health
        routes: dict[str, tuple[Callable[[], Coroutine[Any, Any, Verdict]], float]] = {
            "/livez": (health.live, LIVE_TIMEOUT_S),
            "/readyz": (health.ready, READY_TIMEOUT_S),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self._send(404, {"error": "not found: use /livez or /readyz"})
                    return
                check, timeout_s = route
                verdict: Verdict
                try:
                    verdict = asyncio.run_coroutine_threadsafe(check(), loop).result(timeout_s)
                except FutureTimeout:
                    verdict = Verdict(False, f"the worker did not answer within {timeout_s:.0f} s")
                except RuntimeError as err:  # the loop is closed
                    verdict = Verdict(False, f"the worker's event loop is gone: {err}")
                self._send(200 if verdict.ok else 503, health.body(verdict))

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would drown the worker's log

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()
        log.info("health checks on http://%s:%d/readyz", *self.server.server_address[:2])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_health(
    worker: Worker, component: str, build_id: str | None, port: int | None = None
) -> HealthServer | None:
    """Start the health server when ``port`` (or ``MESH_HEALTH_PORT``) is given."""
    if port is None:
        raw = os.environ.get(PORT_ENV, "").strip()
        if not raw:
            return None
        try:
            port = int(raw)
        except ValueError:
            raise ValueError(f"{PORT_ENV} must be a port number, got {raw!r}") from None
    host = os.environ.get(HOST_ENV, "0.0.0.0")
    server = HealthServer(
        WorkerHealth(worker, component, build_id), asyncio.get_running_loop(), host, port
    )
    server.start()
    return server
