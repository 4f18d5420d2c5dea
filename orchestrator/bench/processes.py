"""The mesh's three workers as real processes: start-up time and memory.

Each worker runs exactly as deployed (``python -m workers.<name>``), so its
start-up time (spawn until it logs that it polls) and its resident memory are
what an operator would see, not those of a test harness sharing one process.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
READY = "worker polling"
WORKERS = ("it", "finance", "orchestrator")
"""Start order: the teams first, so the orchestrator's first turn finds them."""


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    spawned_at: float
    startup_s: float = 0.0
    peak_rss: int = 0
    last_rss: int = 0
    _ps: psutil.Process | None = field(default=None, repr=False)

    def sample(self) -> None:
        """Record the current resident set size, and the peak so far."""
        try:
            if self._ps is None:
                self._ps = psutil.Process(self.process.pid)
            rss = self._ps.memory_info().rss
        except psutil.Error:
            return  # exited; the last sample stands
        self.last_rss = rss
        self.peak_rss = max(self.peak_rss, rss)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 15) -> int | None:
        """SIGTERM, the workers' graceful shutdown; SIGKILL if it hangs."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def spawn(name: str, env: dict[str, str], workdir: Path) -> WorkerProcess:
    log = workdir / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", f"workers.{name}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own session, so a Ctrl-C in the terminal reaches only the
            # bench, which stops every worker itself (and measures nothing
            # half-stopped).
            start_new_session=True,
        )
    return WorkerProcess(name, process, log, time.perf_counter())


async def wait_ready(worker: WorkerProcess, timeout_s: float = 60) -> None:
    """Wait for the worker's "worker polling" line; its arrival is start-up time."""
    deadline = worker.spawned_at + timeout_s
    while time.perf_counter() < deadline:
        if READY in worker.log.read_text(errors="replace"):
            worker.startup_s = time.perf_counter() - worker.spawned_at
            worker.sample()
            return
        if not worker.alive():
            raise RuntimeError(
                f"worker {worker.name} exited with {worker.process.returncode} before polling; "
                f"log {worker.log}:\n{worker.tail()}"
            )
        await asyncio.sleep(0.01)
    raise RuntimeError(
        f"worker {worker.name} did not poll within {timeout_s:.0f} s; log {worker.log}:\n"
        f"{worker.tail()}"
    )


async def start_workers(env: dict[str, str], workdir: Path, started: list[WorkerProcess]) -> None:
    """Start the workers one at a time, so no start-up competes with another
    for this machine's cores; each is appended to ``started`` as soon as it
    is spawned, so the caller can stop it whatever happens next."""
    for name in WORKERS:
        worker = spawn(name, env, workdir)
        started.append(worker)
        await wait_ready(worker)


async def sample_memory(workers: list[WorkerProcess], every_s: float = 0.25) -> None:
    """Sample every worker's RSS until cancelled, for the peak."""
    while True:
        for worker in workers:
            worker.sample()
        await asyncio.sleep(every_s)


def stop_all(workers: list[WorkerProcess]) -> dict[str, int | None]:
    """Stop every worker: signal all first, so their graceful shutdowns overlap."""
    for worker in workers:
        if worker.alive():
            worker.process.send_signal(signal.SIGTERM)
    return {worker.name: worker.stop() for worker in workers}
