"""The Temporal dev server (`temporal server start-dev`) as scripts/demo, the
tests and the benchmark start it: one helper, one set of settings.

Command line (used by scripts/demo)::

    python -m meshdev.dev_server --port 7233 --db-filename F --log F --pidfile F
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from meshkit.polling import poll_until_blocking

DYNAMIC_CONFIG = (
    # New Nexus endpoints are visible at once instead of after a refresh.
    'system.refreshNexusEndpointsMinWait="0s"',
    # The dev server has one history shard, and each shard reads its task
    # queues at most 20 times a second by default: past a small burst every
    # activity, Nexus call and workflow task waits for the next 50 ms tick, and
    # a tool turn takes ~300 ms instead of ~70 ms (measured by scripts/bench).
    # A production cluster spreads this over many shards.
    "history.transferProcessorMaxPollRPS=1000",
    "history.outboundProcessorMaxPollRPS=1000",
    # A workflow may set Nexus headers on its calls; by default that includes
    # `Nexus-Link`, which replaces the server's link to the caller and so lets
    # a workflow claim another namespace. The teams' door reads the caller
    # from that link: refuse the header (the list replaces the default, which
    # is repeated here).
    "component.nexusoperations.disallowedHeaders="
    '["request-timeout","xdc-redirection-api","xdc-redirection","caller-name",'
    '"caller-type","call-initiation","nexus-link"]',
    # A rollout stops the old build's worker once Temporal reports the version
    # drained (no open pinned workflow). The server checks that on a timer, 3
    # minutes by default, after a 3-minute grace period for visibility to
    # catch up; the dev server's SQLite visibility is current at once.
    'matching.wv.VersionDrainageStatusVisibilityGracePeriod="2s"',
    'matching.wv.VersionDrainageStatusRefreshInterval="1s"',
    # The server sends Nexus requests through a circuit breaker per caller
    # namespace and endpoint: after 6 failed requests in a row (a team's
    # workers all down, or cut off) it sends none to that endpoint for 60 s,
    # and the calls held back wait with a growing backoff. So a team back after
    # a 5 s outage stayed unanswered for a minute more, and sessions left it
    # out although its worker was alive and polling (scripts/soak counted
    # them). Half-open after 2 s: one request is let through, and its success
    # closes the breaker.
    'history.outboundQueue.circuitBreakerSettings={"Timeout": "2s"}',
    # Server 1.29 can lose a sync Nexus answer: matching hands the task to a
    # poller before it registers where the answer goes, and a handler that
    # answers in between is told "task not found" (fixed upstream in
    # temporalio/temporal#8627). The caller then waits out the request's
    # timeout, 10 s by default, before the server asks again: at 100 sessions
    # on 2 cores about one benchmark level in three stalled that long. At 4 s
    # a lost answer costs about 5 s. A sync handler must answer within it
    # (queueing included) or be asked again; the mesh's take milliseconds.
    'component.nexusoperations.request.timeout="4s"',
)


def dynamic_config_args(extra: Sequence[str] = ()) -> list[str]:
    args: list[str] = []
    for setting in (*DYNAMIC_CONFIG, *extra):
        args += ["--dynamic-config-value", setting]
    return args


def temporal_cli() -> str:
    """The Temporal CLI that scripts/install builds (``TEMPORAL_CLI`` overrides)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    for candidate in (
        os.environ.get("TEMPORAL_CLI"),
        str(cache / "nexus-tool-mesh" / "bin" / "temporal"),
        shutil.which("temporal"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    raise RuntimeError(
        "Temporal CLI not found: run scripts/install (it builds it) or set TEMPORAL_CLI"
    )


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 now. Each probe stays bound
    until all are chosen, so the kernel cannot hand out one twice."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class DevServer:
    process: subprocess.Popen[bytes]
    address: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_healthy(self, timeout_s: float = 60) -> None:
        """Wait until the server answers a health check."""
        poll_until_blocking(
            self._healthy,
            timeout_s=timeout_s,
            interval_s=0.25,
            what="the dev server did not become healthy",
            explain=lambda: f"see {self.log}",
        )

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the dev server exited; see {self.log}")
        done = subprocess.run(
            [temporal_cli(), "operator", "cluster", "health", "--address", self.address],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_dev_server(
    log: Path,
    *,
    ip: str = "127.0.0.1",
    port: int | None = None,
    ui_port: int | None = None,
    db_filename: Path | None = None,
    namespaces: Sequence[str] = (),
    dynamic_config: Sequence[str] = (),
    log_level: str = "error",
) -> DevServer:
    """Start the dev server with the mesh's settings, in its own session.

    Without ``ui_port`` it runs headless; without ``port`` it takes free ports
    (tests, benchmark); without ``db_filename`` its state is in memory.
    ``dynamic_config`` adds or overrides ``KEY=VALUE`` settings.
    """
    spare = [p for p in free_ports(3) if p != port]
    port = port or spare.pop()
    http_port, metrics_port = spare[:2]
    args = [
        temporal_cli(), "server", "start-dev", "--ip", ip, "--port", str(port),
        "--http-port", str(http_port), "--metrics-port", str(metrics_port),
        "--log-level", log_level, *dynamic_config_args(dynamic_config),
    ]  # fmt: skip
    args += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if db_filename:
        args += ["--db-filename", str(db_filename)]
    for namespace in namespaces:
        args += ["--namespace", namespace]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        # Its own session: a Ctrl-C in a terminal reaches the parent, which
        # stops the server after its workers rather than all at once.
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return DevServer(process, f"{ip}:{port}", log)


cli = typer.Typer(add_completion=False, help=__doc__)


@cli.command()
def start(
    log: Annotated[Path, typer.Option(help="Server log (appended).")],
    pidfile: Annotated[Path, typer.Option(help="Where to write the server's pid.")],
    ip: str = "127.0.0.1",
    port: int = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal UI port; 0 for none.")] = 8233,
    db_filename: Annotated[Path | None, typer.Option(help="SQLite file; unset: memory.")] = None,
    timeout: float = 60,
) -> None:
    """Start a dev server in the background and return once it is healthy."""
    server = start_dev_server(
        log, ip=ip, port=port, ui_port=ui_port or None, db_filename=db_filename, log_level="warn"
    )
    pidfile.write_text(f"{server.pid}\n")
    try:
        server.wait_healthy(timeout)
    except (RuntimeError, TimeoutError) as err:
        server.stop()
        pidfile.unlink(missing_ok=True)
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None


if __name__ == "__main__":
    cli()
