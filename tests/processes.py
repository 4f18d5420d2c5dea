"""The mesh's workers as real processes, to kill, restart and inspect.

A thin async face over :mod:`meshdev.processes`, the helper the demo and the
benchmark use too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from meshdev.processes import WorkerProcess as Spawned
from meshdev.processes import components, spawn_worker
from meshkit.mesh import load_mesh


class WorkerProcess:
    """One component (``orchestrator`` or a team) run as a child process."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = env
        self.log = log_dir / f"{name}.log"
        self.spawned: Spawned | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.spawned is not None
        return self.spawned.pid

    async def start(self, timeout_s: float = 30) -> None:
        self.spawned = spawn_worker(self.name, self.env, self.log)
        self.starts += 1
        await self.spawned.wait_ready(timeout_s)

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing, as a crash or an OOM kill."""
        assert self.spawned is not None
        await asyncio.to_thread(self.spawned.kill)

    async def stop(self) -> None:
        if self.spawned is not None:
            await asyncio.to_thread(self.spawned.stop)

    async def restart_after_kill(self) -> None:
        await self.kill()
        await self.start()


class ProcessMesh:
    """Every worker of a mesh file as processes: its teams and the orchestrator."""

    def __init__(self, mesh_file: Path, env: dict[str, str], log_dir: Path) -> None:
        base = {"MESH_FILE": str(mesh_file), **env}
        names = components(tuple(load_mesh(mesh_file).teams))
        self.workers = {name: WorkerProcess(name, base, log_dir) for name in names}

    def __getitem__(self, name: str) -> WorkerProcess:
        return self.workers[name]

    async def start(self) -> None:
        await asyncio.gather(*(w.start() for w in self.workers.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers.values()))

    def logs(self) -> str:
        return "\n".join(w.log.read_text() for w in self.workers.values() if w.log.exists())
