"""The mesh's workers as real processes, to kill, restart and inspect, and the
one way a test gets a mesh of its own to run them on: :func:`own_mesh`.

A thin async face over :mod:`meshdev.processes`, the helper the demo and the
benchmark use too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.service import RPCError

from meshdev.processes import WorkerProcess as Spawned
from meshdev.processes import components, spawn_worker
from meshkit.mesh import Mesh, MeshError, connect
from meshkit.polling import poll_until
from meshkit.setup import Change, setup_mesh


class WorkerProcess:
    """One component (``orchestrator`` or a team) run as a child process."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.env = env
        self.log = log
        self.spawned: Spawned | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.spawned is not None
        return self.spawned.pid

    def alive(self) -> bool:
        return self.spawned is not None and self.spawned.alive()

    async def start(self, timeout_s: float = 60) -> None:
        """Spawn the process and wait until it polls; stopped again if it never does."""
        self.spawned = spawn_worker(self.name, self.env, self.log)
        self.starts += 1
        try:
            await self.spawned.wait_ready(timeout_s)
        except BaseException:
            await self.stop(5)
            raise

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing, as a crash or an OOM kill."""
        assert self.spawned is not None
        await asyncio.to_thread(self.spawned.kill)

    async def stop(self, timeout_s: float = 30) -> int | None:
        """SIGTERM, the graceful shutdown; its exit code (None if it had to be killed)."""
        if self.spawned is None:
            return None
        return await asyncio.to_thread(self.spawned.stop, timeout_s)

    async def restart_after_kill(self) -> None:
        await self.kill()
        await self.start()


@dataclass
class OwnMesh:
    """A mesh that a test runs worker processes on, written to ``file`` in
    ``directory`` and set up; every worker started through it (each logging to
    ``directory/<label>.log``) is stopped when the test is done with it."""

    mesh: Mesh
    directory: Path
    file: Path
    env: dict[str, str]
    """What every worker's environment adds to the test's: the mesh file at least."""
    changes: list[Change]
    """What setup did: the namespaces and endpoints it created or found."""
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    """Every worker started, by label (its component unless the test named it)."""

    @property
    def components(self) -> list[str]:
        """Every component of the mesh: its teams first, then the orchestrator."""
        return components(tuple(self.mesh.teams))

    def __getitem__(self, label: str) -> WorkerProcess:
        return self.workers[label]

    def write(self, mesh: Mesh, name: str) -> Path:
        """Another mesh file in the directory (a variant a build runs with)."""
        path = self.directory / name
        path.write_text(mesh.to_toml())
        return path

    async def start(
        self,
        component: str,
        env: Mapping[str, str] | None = None,
        *,
        label: str | None = None,
        timeout_s: float = 60,
    ) -> WorkerProcess:
        """Start ``component`` with ``env`` added to the mesh's and wait until it polls."""
        label = label or component
        log = self.directory / f"{label}.log"
        worker = WorkerProcess(component, {**self.env, **(env or {})}, log)
        self.workers[label] = worker
        await worker.start(timeout_s)
        return worker

    async def start_all(
        self,
        each: Mapping[str, Mapping[str, str]] | None = None,
        *,
        replicas: int | Mapping[str, int] = 1,
    ) -> None:
        """Start every component at once, each with ``each[component]`` added,
        and ``replicas`` processes of each (or of those named; others get one).

        A component run once is labelled by its name; replicas are
        ``<component>-1``, ``<component>-2``, ...
        """
        each = each or {}
        counts = (
            replicas if isinstance(replicas, Mapping) else dict.fromkeys(self.components, replicas)
        )
        unknown = set(counts) - set(self.components)
        if unknown or any(n < 1 for n in counts.values()):
            raise ValueError(f"replicas must be >= 1 per component of {self.components}: {counts}")
        starts = []
        for name in self.components:
            n = counts.get(name, 1)
            labels = [name] if n == 1 else [f"{name}-{i}" for i in range(1, n + 1)]
            starts += [self.start(name, each.get(name), label=label) for label in labels]
        await asyncio.gather(*starts)

    def replicas(self, component: str) -> list[str]:
        """The labels of the running workers of ``component``."""
        return [label for label, w in self.workers.items() if w.name == component and w.alive()]

    def label_of(self, pid: int) -> str:
        """The label of the running worker whose process is ``pid``."""
        for label, worker in self.workers.items():
            if worker.alive() and worker.pid == pid:
                return label
        raise LookupError(f"no worker of this mesh runs as pid {pid}")

    def logs(self) -> str:
        return "\n".join(w.log.read_text() for w in self.workers.values() if w.log.exists())

    async def stop(self) -> None:
        """Stop every worker still running; their graceful shutdowns overlap."""
        await asyncio.gather(*(w.stop() for w in self.workers.values()))


@asynccontextmanager
async def own_mesh(
    base: Mesh,
    directory: Path,
    name: str | None = None,
    *,
    address: str | None = None,
    teams: Collection[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[OwnMesh]:
    """A mesh of its own for a test that runs worker processes.

    With ``name``, ``base`` isolated: every task queue and endpoint (and so
    every Worker Deployment) gets the suffix ``<name>-<random>``, so the
    test's workers and rollouts share nothing with the session's mesh or
    another test's; ``address`` puts it on another server (one of the test's
    own, or a relay to the session's). Without ``name``, ``base`` as the test
    made it (a team added, one queue changed). ``teams`` keeps only those.

    The mesh is written to ``directory/mesh.toml`` and set up once its
    server answers; ``env`` is added to every worker's environment.
    """
    mesh = base.isolated(f"{name}-{uuid.uuid4().hex[:6]}", address) if name else base
    if teams is not None:
        mesh = mesh.model_copy(update={"teams": {team: mesh.team(team) for team in teams}})
    file = directory / "mesh.toml"
    file.write_text(mesh.to_toml())
    # A server the test has just started answers, and has its namespaces,
    # a moment after its port opens.
    await poll_until(
        lambda: connect(mesh, mesh.orchestrator, require_namespace=True),
        timeout_s=60,
        interval_s=0.25,
        what=f"Temporal at {mesh.temporal.default_address} did not answer",
        retry_on=(MeshError, RPCError),
    )
    changes = await setup_mesh(mesh)
    own = OwnMesh(mesh, directory, file, {"MESH_FILE": str(file), **(env or {})}, changes)
    try:
        yield own
    finally:
        await own.stop()
