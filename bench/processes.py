"""Every worker of the mesh as a real process: start-up time and memory.

Each worker runs exactly as deployed, started by the same helper as the demo's
(``meshdev.processes``), so its start-up time (spawn until it logs that it
polls) and its resident memory are what an operator would see, not those of a
test harness sharing one process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from meshdev.processes import WorkerProcess, components, spawn_worker, stop_all
from meshkit.mesh import Mesh

__all__ = ["WorkerProcess", "sample_memory", "start_workers", "stop_all"]


async def start_workers(
    mesh: Mesh, env: dict[str, str], workdir: Path, started: list[WorkerProcess]
) -> None:
    """Start the workers one at a time, so no start-up competes with another
    for this machine's cores; each is appended to ``started`` as soon as it
    is spawned, so the caller can stop it whatever happens next."""
    for name in components(tuple(mesh.teams)):
        worker = spawn_worker(name, env, workdir / f"{name}.log")
        started.append(worker)
        await worker.wait_ready()


async def sample_memory(workers: list[WorkerProcess], every_s: float = 0.25) -> None:
    """Sample every worker's RSS until cancelled, for the peak."""
    while True:
        for worker in workers:
            worker.sample()
        await asyncio.sleep(every_s)
