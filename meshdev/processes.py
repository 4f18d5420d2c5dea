"""Worker processes: start one, wait until it polls, stop or kill it.

The one helper the demo script, the tests and the benchmark use to run a
component of the mesh (``orchestrator`` or a team of the mesh file) exactly
as deployed: ``python -m workers.orchestrator`` or ``python -m workers.team
<team>``. A worker is ready when it logs that it polls.

Command line (one process; scripts/demo starts its replicas with
:mod:`meshdev.replicas`)::

    python -m meshdev.processes <component> --log FILE --pidfile FILE
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import psutil
import typer

from meshkit.polling import poll_until, poll_until_blocking

ROOT = Path(__file__).resolve().parent.parent
READY = "worker polling"
"""What a worker logs once it serves its task queue (meshkit.runtime.run_worker):
it polls, and its version is current."""
POLLING = "worker opened its pollers"
"""What a worker logs once its pollers are open. For a first deploy, READY
follows when its version is made current; for a restart, at once."""
ORCHESTRATOR = "orchestrator"


def worker_command(component: str) -> list[str]:
    """The command that runs one component of the mesh."""
    if component == ORCHESTRATOR:
        return [sys.executable, "-m", "workers.orchestrator"]
    return [sys.executable, "-m", "workers.team", component]


def components(teams: list[str] | tuple[str, ...]) -> list[str]:
    """Every component, teams first, so the orchestrator's first turn finds them."""
    return [*teams, ORCHESTRATOR]


@dataclass
class WorkerProcess:
    """One component of the mesh as a child process, logging to ``log``."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    spawned_at: float
    log_offset: int = 0
    startup_s: float = 0.0
    """Spawn until it serves (READY)."""
    first_poll_s: float = 0.0
    """Spawn until its pollers are open (POLLING)."""
    peak_rss: int = 0
    last_rss: int = 0
    _ps: psutil.Process | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def ready(self) -> bool:
        """Whether this process has logged that it serves (earlier runs' lines ignored)."""
        return READY.encode() in self._logged()

    def _logged(self) -> bytes:
        try:
            with self.log.open("rb") as f:
                f.seek(self.log_offset)
                return f.read()
        except OSError:
            return b""

    def _ready(self) -> bool:
        """Whether it serves (its start-up times are then recorded); an exit is an error."""
        logged = self._logged()
        if not self.first_poll_s and POLLING.encode() in logged:
            self.first_poll_s = time.perf_counter() - self.spawned_at
        if READY.encode() in logged:
            self.startup_s = time.perf_counter() - self.spawned_at
            self.sample()
            return True
        if not self.alive():
            raise RuntimeError(
                f"the {self.name} worker exited with {self.process.returncode} before polling; "
                f"log {self.log}:\n{self.tail()}"
            )
        return False

    def _timeout_s(self, timeout_s: float) -> float:
        # The deadline counts from the spawn, not from the call.
        return max(0.0, self.spawned_at + timeout_s - time.perf_counter())

    async def wait_ready(self, timeout_s: float = 60) -> None:
        """Wait for the worker to poll; the time it took is its start-up time."""
        await poll_until(
            self._ready,
            timeout_s=self._timeout_s(timeout_s),
            interval_s=0.01,
            what=f"the {self.name} worker did not poll",
            explain=lambda: f"log {self.log}:\n{self.tail()}",
        )

    def wait_ready_blocking(self, timeout_s: float = 60) -> None:
        poll_until_blocking(
            self._ready,
            timeout_s=self._timeout_s(timeout_s),
            what=f"the {self.name} worker did not poll",
            explain=lambda: f"log {self.log}:\n{self.tail()}",
        )

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

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing, as a crash or an OOM kill."""
        if self.alive():
            self.process.kill()
        self.process.wait()

    def stop(self, timeout_s: float = 30) -> int | None:
        """SIGTERM, the workers' graceful shutdown; SIGKILL if it hangs."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def running(pid: int) -> bool:
    """Whether ``pid`` runs (an exited child its parent has not reaped does not)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def spawn_worker(
    component: str,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    cwd: Path | None = None,
    *,
    command: list[str] | None = None,
) -> WorkerProcess:
    """Start ``component`` (or ``command``, a process that logs as a worker
    does, named ``component``) in its own session (a Ctrl-C in the terminal reaches
    only the parent, which stops its workers itself), appending to ``log``.

    ``cwd`` runs another checkout's code (``python -m`` imports from there
    first), e.g. an older build being rolled back to."""
    log = log or Path(os.devnull)
    log.parent.mkdir(parents=True, exist_ok=True)
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        process = subprocess.Popen(
            command or worker_command(component),
            cwd=cwd or ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess(component, process, log, time.perf_counter(), log_offset=offset)


async def start_worker(
    component: str, env: dict[str, str] | None, log: Path, timeout_s: float = 60
) -> WorkerProcess:
    """Spawn ``component`` and wait until it polls; stopped again if it never does."""
    worker = spawn_worker(component, env, log)
    try:
        await worker.wait_ready(timeout_s)
    except BaseException:
        worker.stop(5)
        raise
    return worker


def stop_all(workers: list[WorkerProcess]) -> dict[str, int | None]:
    """Stop every worker: signal all first, so their graceful shutdowns overlap."""
    for worker in workers:
        if worker.alive():
            worker.process.send_signal(signal.SIGTERM)
    return {worker.name: worker.stop() for worker in workers}


cli = typer.Typer(add_completion=False, help=__doc__)


@cli.command()
def start(
    component: Annotated[str, typer.Argument(help="'orchestrator' or a team of the mesh file.")],
    log: Annotated[Path, typer.Option(help="Log file (appended).")],
    pidfile: Annotated[Path, typer.Option(help="Where to write the worker's pid.")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for it to poll.")] = 60,
) -> None:
    """Start a worker in the background and return once it polls."""
    worker = spawn_worker(component, None, log)
    pidfile.write_text(f"{worker.pid}\n")
    try:
        worker.wait_ready_blocking(timeout)
    except (RuntimeError, TimeoutError) as err:
        worker.stop(5)
        pidfile.unlink(missing_ok=True)
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None


if __name__ == "__main__":
    cli()
