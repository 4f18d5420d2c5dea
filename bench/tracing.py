"""What tracing costs a turn: the same turns on a mesh with tracing on and off.

Beside the run's mesh (tracing off, as every other phase measures it) a
second mesh runs on the same server: the same namespaces, its own task
queues and endpoints (``Mesh.isolated``), and three more worker processes
started with ``MESH_TRACE_FILE``, so they export every span of every turn
to a file, as ``scripts/demo --trace`` does. Each turn kind is measured on
one session of each mesh, one turn at a time, alternating between the two
(and which one goes first each round), so both see the same machine, the
same server and the same conversation length.

The trace file says what tracing writes: spans and bytes per traced turn,
session start and end included. The bench's own process does not trace (it
never calls ``meshkit.observability.setup``), so a turn's trace starts in
the orchestrator's worker rather than in a client.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from bench.config import BenchConfig
from bench.cpu import CpuMeter, spent
from bench.processes import WorkerProcess, start_workers, stop_all
from bench.turns import KINDS, TurnKind, TurnResults, end_session, one_turn, open_session
from meshkit.mesh import Mesh
from meshkit.observability.spans import TURN_SPAN
from meshkit.setup import setup_mesh
from orchestrator.session import Session

SUFFIX = "traced"
TRACE_FILE = "traces.jsonl"
EXPORT_WAIT_S = 1.0
"""How long to let the workers' batch span processors (200 ms) export the last
turns' spans before the file is read."""
SETTLE_MAX_S = 10.0


@dataclass
class TraceFile:
    spans: int = 0
    """Lines written by the traced mesh's workers."""
    bytes: int = 0
    turn_spans: int = 0
    """``chat.turn`` spans: one per turn the traced orchestrator ran."""
    by_component: dict[str, int] = field(default_factory=dict)


@dataclass
class TracingResult:
    off: dict[str, TurnResults]
    on: dict[str, TurnResults]
    turns_on: int
    """Turns sent to the traced mesh, warm-up and failed ones included."""
    trace: TraceFile
    workers_on: list[WorkerProcess]
    """The traced mesh's workers, stopped; their memory was sampled at the end."""
    exit_codes: dict[str, int | None]
    """How the traced mesh's workers exited when stopped (None: killed)."""

    @property
    def errors(self) -> list[str]:
        return [e for side in (self.off, self.on) for r in side.values() for e in r.errors]


async def measure_tracing(
    client: Client,
    mesh: Mesh,
    workers: list[WorkerProcess],
    env: dict[str, str],
    workdir: Path,
    config: BenchConfig,
) -> TracingResult:
    """Start the traced mesh beside ``mesh``, measure every turn kind on both,
    stop the traced mesh's workers; ``workers`` are ``mesh``'s own."""
    traced = mesh.isolated(SUFFIX)
    mesh_file = workdir / f"mesh-{SUFFIX}.toml"
    mesh_file.write_text(traced.to_toml())
    trace_file = workdir / TRACE_FILE
    await setup_mesh(traced)
    traced_env = {**env, "MESH_FILE": str(mesh_file), "MESH_TRACE_FILE": str(trace_file)}
    # The bench switches the Agents SDK's tracing off in every process (no
    # span may reach a hosted exporter); a deployment with tracing on leaves
    # it on, and the orchestrator turns its spans into the turn's. Measure that.
    traced_env["OPENAI_AGENTS_DISABLE_TRACING"] = "false"
    started: list[WorkerProcess] = []
    try:
        await start_workers(traced, traced_env, workdir / SUFFIX, started)
        meters = {
            "off": CpuMeter({w.name: w.process.pid for w in workers}),
            "on": CpuMeter({w.name: w.process.pid for w in started}),
        }
        off: dict[str, TurnResults] = {}
        on: dict[str, TurnResults] = {}
        turns_on = 0
        for kind in KINDS:
            off[kind.name], on[kind.name] = await _measure_kind(
                client, {"off": mesh, "on": traced}, meters, kind, config
            )
            turns_on += config.warmup + config.tracing_samples
        dead = [w.name for w in started if not w.alive()]
        if dead:
            raise RuntimeError(f"traced worker(s) {', '.join(dead)} exited during the run")
        trace = await read_trace_file(trace_file, {w.name for w in started})
        for worker in started:
            worker.sample()
    finally:
        codes = stop_all(started)
    return TracingResult(off, on, turns_on, trace, started, codes)


async def _measure_kind(
    client: Client,
    meshes: dict[str, Mesh],
    meters: dict[str, CpuMeter],
    kind: TurnKind,
    config: BenchConfig,
) -> tuple[TurnResults, TurnResults]:
    results = {side: TurnResults() for side in meshes}
    warm = {side: TurnResults() for side in meshes}
    handles: dict[str, Session] = {}
    try:
        for side, mesh in meshes.items():
            handles[side] = await open_session(client, mesh, f"trace-{side}-{kind.name}")
        for side, handle in handles.items():
            for _ in range(config.warmup):
                await one_turn(handle, kind, config.turn_timeout_s, warm[side])
        order = list(meshes)
        for _ in range(config.tracing_samples):
            for side in order:
                meter = meters[side]
                before = meter.snapshot()
                await one_turn(handles[side], kind, config.turn_timeout_s, results[side])
                for name, used in spent(before, meter.snapshot()).items():
                    results[side].cpu_s[name] = results[side].cpu_s.get(name, 0.0) + used
            order.reverse()
    finally:
        await asyncio.gather(*(end_session(handle) for handle in handles.values()))
    for side in meshes:
        results[side].errors = [
            f"tracing {side}: {e}" for e in warm[side].errors + results[side].errors
        ]
    return results["off"], results["on"]


async def read_trace_file(path: Path, components: set[str]) -> TraceFile:
    """The spans ``components`` wrote to ``path``, once the file stops growing."""
    await asyncio.sleep(EXPORT_WAIT_S)
    size, waited = -1, 0.0
    while (now := _size(path)) != size and waited < SETTLE_MAX_S:
        size = now
        await asyncio.sleep(0.25)
        waited += 0.25
    return await asyncio.to_thread(count_spans, path, components)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def count_spans(path: Path, components: set[str]) -> TraceFile:
    found = TraceFile()
    try:
        lines = path.open("rb")
    except FileNotFoundError:
        return found
    with lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short
            component = (record.get("resource") or {}).get("mesh.component")
            if component not in components:
                continue
            found.spans += 1
            found.bytes += len(line)
            found.by_component[component] = found.by_component.get(component, 0) + 1
            if record.get("name") == TURN_SPAN:
                found.turn_spans += 1
    return found
