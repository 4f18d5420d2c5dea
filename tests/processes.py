"""The mesh's workers as real processes, to kill, restart and inspect."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class WorkerProcess:
    """One worker entry point (``python -m workers.<name>``) run as a child process."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = env
        self.log = log_dir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self, timeout_s: float = 30) -> None:
        marker = f"{self.name} worker polling"
        seen = self.log.read_text().count(marker) if self.log.exists() else 0
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"workers.{self.name}", cwd=ROOT, env={**os.environ, **self.env},
            stdout=self.log.open("a"), stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self.starts += 1
        for _ in range(int(timeout_s * 10)):
            if self.log.read_text().count(marker) > seen:
                return
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} worker did not start:\n{self.log.read_text()[-3000:]}")

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing, as a crash or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    async def restart_after_kill(self) -> None:
        await self.kill()
        await self.start()


class ProcessMesh:
    """The three workers of a mesh file as processes."""

    def __init__(self, mesh_file: Path, env: dict[str, str], log_dir: Path) -> None:
        base = {"MESH_FILE": str(mesh_file), **env}
        self.workers = {
            name: WorkerProcess(name, base, log_dir) for name in ("orchestrator", "it", "finance")
        }

    def __getitem__(self, name: str) -> WorkerProcess:
        return self.workers[name]

    async def start(self) -> None:
        await asyncio.gather(*(w.start() for w in self.workers.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers.values()))

    def logs(self) -> str:
        return "\n".join(w.log.read_text() for w in self.workers.values() if w.log.exists())
