"""The demo's replicas: how many processes of each worker run, and each one's
pidfile, log, metrics port and health port.

A replica count comes from ``--replicas`` (scripts/demo) or ``MESH_REPLICAS``:
``N`` for every component, ``COMPONENT=N`` for one, comma-separated, the
later entries winning: ``2,it=3`` runs two of each worker and three of IT's.
Without either, a component keeps the replicas it runs, or gets one.

Replica 1 of a component keeps the single worker's names (``<run dir>/it.pid``,
``logs/it.log``); replica ``n`` is ``it-<n>`` (``it-2.pid``, ``logs/it-2.log``).
The demo's replicas serve metrics on ``MESH_METRICS_BASE`` (9090) + slot and
health checks (:mod:`meshkit.health`) on ``MESH_HEALTH_BASE`` (9190) + slot,
where slot 0, 1, ... are replica 1 of the orchestrator and then of each team
(the single worker's ports), then replica 2 of each, and so on. A worker that
a rollout starts beside them takes the next free ports. Each worker's ports are
recorded under ``<run dir>/ports/<pid>.json``, where ``status`` reads them.

Command line (used by scripts/demo)::

    python -m meshdev.replicas start [--replicas SPEC] [--component C] --run-dir DIR
    python -m meshdev.replicas restart <component> [--replicas SPEC] --run-dir DIR
    python -m meshdev.replicas status --run-dir DIR
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from meshdev.processes import ORCHESTRATOR, components, running, spawn_worker
from meshkit.failover import replica_env
from meshkit.mesh import MeshError, load_mesh
from meshkit.polling import poll_until

SPEC_ENV = "MESH_REPLICAS"
MAX_REPLICAS = 16
METRICS_BASE_ENV, HEALTH_BASE_ENV = "MESH_METRICS_BASE", "MESH_HEALTH_BASE"
DEFAULT_METRICS_BASE, DEFAULT_HEALTH_BASE = 9090, 9190


class ReplicaError(ValueError):
    """A replica count the demo cannot run."""


def parse_replicas(spec: str, known: Sequence[str]) -> dict[str, int]:
    """``N``, ``COMPONENT=N`` or both, comma-separated, as counts per component;
    components the spec does not name are left out."""
    counts: dict[str, int] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        name, _, value = item.rpartition("=")
        if name and name not in known:
            raise ReplicaError(f"replicas: no component {name!r} (components: {', '.join(known)})")
        if not re.fullmatch(r"\d+", value) or not 1 <= int(value) <= MAX_REPLICAS:
            raise ReplicaError(
                f"replicas: {item!r} is not a count: use N or COMPONENT=N with N from 1 "
                f"to {MAX_REPLICAS}, comma-separated, e.g. 2,it=3"
            )
        for component in [name] if name else known:
            counts[component] = int(value)
    return counts


@dataclass(frozen=True)
class Replica:
    component: str
    n: int

    @property
    def label(self) -> str:
        return self.component if self.n == 1 else f"{self.component}-{self.n}"

    def pidfile(self, run_dir: Path, build: str | None = None) -> Path:
        return run_dir / (f"{self.label}@{build}.pid" if build else f"{self.label}.pid")

    def log(self, run_dir: Path, build: str | None = None) -> Path:
        return run_dir / "logs" / (f"{self.label}@{build}.log" if build else f"{self.label}.log")


def read_pid(path: Path) -> int | None:
    """The pid in ``path`` if that process runs."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if running(pid) else None


def replica_files(run_dir: Path, component: str, build: str | None = None) -> dict[int, Path]:
    """The pidfiles of ``component``'s replicas (of ``build``, else current), by number."""
    suffix = f"@{build}.pid" if build else ".pid"
    found: dict[int, Path] = {}
    for path in run_dir.glob(f"{component}*{suffix}"):
        rest = path.name[len(component) : -len(suffix)]
        if rest == "":
            found[1] = path
        elif (number := re.fullmatch(r"-(\d+)", rest)) and int(number[1]) >= 2:
            found[int(number[1])] = path
    return dict(sorted(found.items()))


def running_replicas(run_dir: Path, component: str, build: str | None = None) -> dict[int, int]:
    """The running replicas of ``component`` (of ``build``, else current): number -> pid."""
    pids = {n: read_pid(path) for n, path in replica_files(run_dir, component, build).items()}
    return {n: pid for n, pid in pids.items() if pid is not None}


def _base(env: str, default: int) -> int:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65000:
        raise ReplicaError(f"{env} must be a port number, got {raw!r}")
    return int(raw)


def slot(replica: Replica, known: Sequence[str]) -> int:
    """The replica's place in the demo's port ranges: the orchestrator, then the teams."""
    order = [ORCHESTRATOR, *(c for c in known if c != ORCHESTRATOR)]
    return (replica.n - 1) * len(order) + order.index(replica.component)


def demo_ports(replica: Replica, known: Sequence[str]) -> dict[str, int]:
    at = slot(replica, known)
    return {
        "metrics": _base(METRICS_BASE_ENV, DEFAULT_METRICS_BASE) + at,
        "health": _base(HEALTH_BASE_ENV, DEFAULT_HEALTH_BASE) + at,
    }


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_ports(
    run_dir: Path, known: Sequence[str], exclude: set[int] | None = None
) -> dict[str, int]:
    """Ports for a worker started beside the demo's replicas (a rollout's new
    build): the first free ones past the single workers' ports, skipping those
    recorded by running workers and ``exclude``."""
    taken = {p for ports in recorded_ports(run_dir).values() for p in ports.values()}
    taken |= exclude or set()
    chosen: dict[str, int] = {}
    for kind, env, default in (
        ("metrics", METRICS_BASE_ENV, DEFAULT_METRICS_BASE),
        ("health", HEALTH_BASE_ENV, DEFAULT_HEALTH_BASE),
    ):
        port = _base(env, default) + len(known)
        while port in taken or not _port_free(port):
            port += 1
        chosen[kind] = port
    return chosen


def takeover_env(component: str, count: int) -> dict[str, str]:
    """With replicas, the settings that let one take over a dead one's work in
    seconds (:mod:`meshkit.failover`); a single worker keeps Temporal's."""
    return replica_env(component) if count > 1 else {}


def ports_env(ports: dict[str, int]) -> dict[str, str]:
    return {"MESH_METRICS_PORT": str(ports["metrics"]), "MESH_HEALTH_PORT": str(ports["health"])}


def record_ports(run_dir: Path, pid: int, ports: dict[str, int]) -> None:
    (run_dir / "ports").mkdir(parents=True, exist_ok=True)
    (run_dir / "ports" / f"{pid}.json").write_text(json.dumps(ports))


def recorded_ports(run_dir: Path) -> dict[int, dict[str, int]]:
    """The ports of every running worker that recorded them (stale records removed)."""
    found: dict[int, dict[str, int]] = {}
    for path in (run_dir / "ports").glob("*.json"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(path.stem)
            if not running(pid):
                path.unlink(missing_ok=True)
                continue
            found[pid] = json.loads(path.read_text())
    return found


async def start_replica(
    run_dir: Path,
    replica: Replica,
    ports: dict[str, int],
    env: dict[str, str] | None = None,
    *,
    build: str | None = None,
    cwd: Path | None = None,
    timeout_s: float = 90,
) -> int:
    """Start one replica, wait until it polls, record its pidfile and ports."""
    worker = spawn_worker(
        replica.component, {**(env or {}), **ports_env(ports)}, replica.log(run_dir, build), cwd=cwd
    )
    replica.pidfile(run_dir, build).write_text(f"{worker.pid}\n")
    record_ports(run_dir, worker.pid, ports)
    try:
        await worker.wait_ready(timeout_s)
    except BaseException:
        worker.stop(5)
        replica.pidfile(run_dir, build).unlink(missing_ok=True)
        raise
    return worker.pid


async def stop_pid(pid: int, timeout_s: float = 30) -> None:
    """SIGTERM (the worker's graceful shutdown), then SIGKILL if it hangs."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:
        await poll_until(
            lambda: not running(pid), timeout_s=timeout_s, interval_s=0.1, what=f"{pid} stopped"
        )
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        await poll_until(
            lambda: not running(pid), timeout_s=10, interval_s=0.1, what=f"{pid} killed"
        )


# --- command line ----------------------------------------------------------------------

cli = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)

RunDir = Annotated[Path, typer.Option(help="The demo's run directory (pids, logs, ports).")]
Spec = Annotated[
    str | None,
    typer.Option(
        "--replicas", help=f"N, COMPONENT=N or both, comma-separated; default ${SPEC_ENV}."
    ),
]
PROMOTE = {"MESH_VERSION_PROMOTION": "on-start"}
"""A worker the demo starts (not a rollout) becomes its deployment's current build."""


def _components() -> list[str]:
    return components(tuple(load_mesh().teams))


def _wanted(spec: str | None, known: Sequence[str], run_dir: Path) -> dict[str, int]:
    """Replicas per component: the spec's, else as many as run, else one."""
    asked = parse_replicas(os.environ.get(SPEC_ENV, "") if spec is None else spec, known)
    return {c: asked.get(c) or len(running_replicas(run_dir, c)) or 1 for c in known}


def _fail(err: Exception) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(2 if isinstance(err, ReplicaError) else 1) from None


async def _start(run_dir: Path, spec: str | None, only: str | None) -> None:
    known = _components()
    if only is not None and only not in known:
        raise ReplicaError(f"no component {only!r} (components: {', '.join(known)})")
    wanted = _wanted(spec, known, run_dir)
    starts, stops = [], []
    for component in [only] if only else known:
        runs = running_replicas(run_dir, component)
        for n in range(1, wanted[component] + 1):
            if n not in runs:
                replica = Replica(component, n)
                typer.echo(f"starting {replica.label} (log {replica.log(run_dir)})", err=True)
                env = {**PROMOTE, **takeover_env(component, wanted[component])}
                starts.append(start_replica(run_dir, replica, demo_ports(replica, known), env))
        stops += [(Replica(component, n), pid) for n, pid in runs.items() if n > wanted[component]]
    # Teams and orchestrator replicas start together: each polls within seconds.
    results = await asyncio.gather(*starts, return_exceptions=True)
    for replica, pid in stops:
        await stop_pid(pid)
        replica.pidfile(run_dir).unlink(missing_ok=True)
        typer.echo(f"stopped {replica.label} (pid {pid})", err=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError("; ".join(str(err).splitlines()[0] for err in failed))


async def _restart(run_dir: Path, component: str, spec: str | None) -> None:
    known = _components()
    if component not in known:
        raise ReplicaError(f"no component {component!r} (components: {', '.join(known)})")
    count = _wanted(spec, known, run_dir)[component]
    runs = running_replicas(run_dir, component)
    # One replica at a time: the others keep serving the component meanwhile.
    for n in range(1, max(count, *runs, 1) + 1):
        replica = Replica(component, n)
        if n in runs:
            await stop_pid(runs[n])
            replica.pidfile(run_dir).unlink(missing_ok=True)
            typer.echo(f"stopped {replica.label} (pid {runs[n]})", err=True)
        if n <= count:
            typer.echo(f"starting {replica.label} (log {replica.log(run_dir)})", err=True)
            env = {**PROMOTE, **takeover_env(component, count)}
            await start_replica(run_dir, replica, demo_ports(replica, known), env)


def ready(health_port: int) -> str:
    """What the replica's ``/readyz`` says."""
    url = f"http://127.0.0.1:{health_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return "ready" if json.load(answer).get("status") == "ok" else "not ready"
    except urllib.error.HTTPError as err:
        reason = json.loads(err.read() or b"{}").get("reason", err.reason)
        return f"not ready: {reason}"
    except (OSError, ValueError):
        return "no health answer"


def status_lines(run_dir: Path, known: Sequence[str]) -> list[str]:
    """A line per replica: its pid, ports and readiness; draining builds after."""
    ports = recorded_ports(run_dir)
    lines = []

    def describe(label: str, pid: int, state: str) -> str:
        mine = ports.get(pid)
        if not mine:
            return f"{label}: {state} (pid {pid})"
        return (
            f"{label}: {state} (pid {pid}, metrics http://127.0.0.1:{mine['metrics']}/metrics, "
            f"{ready(mine['health'])})"
        )

    for component in known:
        runs = running_replicas(run_dir, component)
        if not runs:
            lines.append(f"{component}: stopped")
        lines += [describe(Replica(component, n).label, pid, "running") for n, pid in runs.items()]
    for path in sorted(run_dir.glob("*@*.pid")):  # older builds still draining after a rollout
        if (pid := read_pid(path)) is not None:
            lines.append(describe(path.stem, pid, "draining"))
    return lines


@cli.command()
def start(
    run_dir: RunDir,
    replicas: Spec = None,
    component: Annotated[str | None, typer.Option(help="Only this component.")] = None,
) -> None:
    """Start the replicas that are not running (and stop those beyond the count)."""
    try:
        asyncio.run(_start(run_dir, replicas, component))
    except (ReplicaError, MeshError, RuntimeError, TimeoutError) as err:
        _fail(err)


@cli.command()
def restart(
    component: Annotated[str, typer.Argument(help="'orchestrator' or a team of the mesh file.")],
    run_dir: RunDir,
    replicas: Spec = None,
) -> None:
    """Replace each replica of a component in place, one at a time."""
    try:
        asyncio.run(_restart(run_dir, component, replicas))
    except (ReplicaError, MeshError, RuntimeError, TimeoutError) as err:
        _fail(err)


@cli.command()
def status(run_dir: RunDir) -> None:
    """Every replica of every worker: pid, metrics URL and health."""
    try:
        typer.echo("\n".join(status_lines(run_dir, _components())))
    except (ReplicaError, MeshError) as err:
        _fail(err)


@cli.command()
def check(run_dir: RunDir, replicas: Spec = None) -> None:
    """Check a replica spec against the mesh file (exit 2 with the reason if bad)."""
    try:
        _wanted(replicas, _components(), run_dir)
    except (ReplicaError, MeshError) as err:
        _fail(err)


@cli.command()
def count(
    component: Annotated[str, typer.Argument(help="'orchestrator' or a team of the mesh file.")],
    run_dir: RunDir,
    replicas: Spec = None,
) -> None:
    """How many replicas of ``component`` the spec asks for (else run, else 1)."""
    try:
        typer.echo(_wanted(replicas, _components(), run_dir).get(component, 1))
    except (ReplicaError, MeshError) as err:
        _fail(err)


if __name__ == "__main__":
    cli()
