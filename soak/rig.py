"""Everything a soak run starts, and the handles its faults pull on.

- A dev server on fixed ports persisted to SQLite, so it can be restarted
  without losing a workflow (``meshdev.dev_server``).
- Its own mesh file, task queues and endpoints suffixed (``bench.server``).
- Fake HTTP backends for the teams (``meshdev.fakes``): Jira, expenses, market
  data, each able to answer 5xx or hang.
- A TCP relay per team (:mod:`soak.relay`): a team's workers reach Temporal
  only through it, so the team can be cut off.
- ``replicas`` processes of every worker (``meshdev.processes``), each with
  its own log; metrics are off, so no two replicas contend for a port.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.server import isolated_env, namespaces, wait_for_server, write_mesh
from meshdev.dev_server import DevServer, free_port, start_dev_server
from meshdev.fakes import FakeExpenses, FakeJira, FakeMarket, FakeServer
from meshdev.processes import ORCHESTRATOR, WorkerProcess, components, spawn_worker, stop_all
from meshkit.mesh import Mesh, load_mesh
from meshkit.versioning import BUILD_ID_ENV, build_id
from soak.relay import Relay

BACKENDS = ("jira", "expenses", "market")
BACKEND_TEAM = {"jira": "it", "expenses": "finance", "market": "finance"}
BACKEND_TOOLS = {
    "jira": ("create_ticket", "jira_metrics"),
    "expenses": ("submit_expense",),
    "market": ("stock_price",),
}
"""The tools each backend serves: a turn calling one of them touches the backend."""

Interval = tuple[float, float]


@dataclass
class Replica:
    """One process slot of a component: killed and restarted in place."""

    component: str
    index: int
    log: Path
    env: dict[str, str]
    worker: WorkerProcess | None = None
    down: list[Interval] = field(default_factory=list)
    """When this slot was not serving: killed until its replacement polled."""
    starts: int = 0

    @property
    def name(self) -> str:
        return f"{self.component}-{self.index}"

    def alive(self) -> bool:
        return self.worker is not None and self.worker.alive()

    async def start(self) -> None:
        self.worker = spawn_worker(self.component, self.env, self.log)
        self.starts += 1
        await self.worker.wait_ready(120)

    def kill(self) -> float:
        """kill -9; returns when."""
        killed = time.monotonic()
        if self.worker is not None:
            self.worker.kill()
        return killed

    async def restart(self, killed: float) -> None:
        await self.start()
        self.down.append((killed, time.monotonic()))


class Rig:
    """The soak's server, backends, relays and worker replicas."""

    def __init__(self, workdir: Path, replicas: int) -> None:
        self.workdir = workdir
        self.replica_count = replicas
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.server: DevServer | None = None
        self.server_down: list[Interval] = []
        self.jira = FakeJira()
        self.expenses = FakeExpenses()
        self.market = FakeMarket()
        self.relays: dict[str, Relay] = {}
        self.cut: dict[str, list[Interval]] = {}
        self.replicas: dict[str, list[Replica]] = {}
        self.mesh_file = write_mesh(workdir, self.address)
        self.mesh: Mesh = load_mesh(self.mesh_file)
        self.env = self._env()

    def backend(self, name: str) -> FakeServer:
        servers = {
            "jira": self.jira.http,
            "expenses": self.expenses.http,
            "market": self.market.http,
        }
        return servers[name]

    @property
    def teams(self) -> list[str]:
        return list(self.mesh.teams)

    def _env(self) -> dict[str, str]:
        env = isolated_env(self.mesh_file)
        env.pop("MESH_METRICS_PORT", None)
        env.pop("MESH_HEALTH_PORT", None)
        env.update(
            MESH_STATE_DIR=str(self.workdir / "state"),
            JIRA_URL=self.jira.url,
            JIRA_API="server",
            JIRA_EMAIL="soak@example.com",
            JIRA_API_TOKEN="soak-jira-token",
            EXPENSES_URL=self.expenses.url,
            EXPENSES_API_KEY="soak-expenses-key",
            MARKET_DATA_URL=self.market.url,
            MARKET_DATA_API_KEY="soak-market-key",
        )
        # One build id for every replica, read once: a replica restarted after
        # the checkout changed must not come back as a new Worker Deployment
        # version, which Temporal would route nothing to until promoted.
        env.setdefault(BUILD_ID_ENV, build_id())
        return env

    def start_server(self) -> None:
        self.server = start_dev_server(
            self.workdir / "server.log",
            port=self.port,
            db_filename=self.workdir / "temporal.db",
            namespaces=namespaces(),
        )

    async def wait_for_server(self) -> None:
        assert self.server is not None
        await wait_for_server(self.mesh, self.server, timeout_s=120)

    async def restart_server(self, pause_s: float) -> tuple[float, float]:
        """Stop the server, wait ``pause_s``, start it again on the same port and
        database; returns (stopped, started), the moment it was started again."""
        assert self.server is not None
        stopped = time.monotonic()
        await asyncio.to_thread(self.server.stop)
        await asyncio.sleep(pause_s)
        self.start_server()
        started = time.monotonic()
        await self.wait_for_server()
        self.server_down.append((stopped, time.monotonic()))
        return stopped, started

    async def start_relays(self) -> None:
        for team in self.teams:
            relay = Relay(self.address)
            await relay.start()
            self.relays[team] = relay
            self.cut[team] = []

    async def start_workers(self) -> None:
        """Every replica of every component, one at a time (start-ups compete for CPU)."""
        for component in components(tuple(self.teams)):
            env = dict(self.env)
            if component != ORCHESTRATOR:
                env["TEMPORAL_ADDRESS"] = self.relays[component].address
            slots = [
                Replica(component, i, self.workdir / f"{component}-{i}.log", env)
                for i in range(self.replica_count)
            ]
            self.replicas[component] = slots
            for slot in slots:
                await slot.start()

    def all_down(self, component: str) -> list[Interval]:
        """When no replica of ``component`` was serving (every slot down at once),
        or the component could not reach Temporal (server restart, cut)."""
        slots = self.replicas[component]
        windows = _intersection([slot.down for slot in slots])
        windows += self.server_down + self.cut.get(component, [])
        return windows

    def stop(self) -> None:
        stop_all([s.worker for slots in self.replicas.values() for s in slots if s.worker])
        if self.server is not None:
            self.server.stop()
        for fake in (self.jira, self.expenses, self.market):
            fake.http.close()


def _intersection(sets: list[list[Interval]]) -> list[Interval]:
    """The intervals covered by every list of ``sets`` at once."""
    if not sets:
        return []
    current = sorted(sets[0])
    for other in sets[1:]:
        merged = []
        for a_start, a_end in current:
            for b_start, b_end in sorted(other):
                start, end = max(a_start, b_start), min(a_end, b_end)
                if start < end:
                    merged.append((start, end))
        current = merged
    return current
