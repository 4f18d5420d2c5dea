"""What streaming costs a turn: the same turns streamed and not, with a model
that streams over HTTP.

Beside the run's mesh a second one runs on the same server (``Mesh.isolated``)
with three more worker processes whose orchestrator calls a LiteLLM model,
``openai/bench-fake``, served by :class:`bench.fake_provider.FakeProvider` on
127.0.0.1 (``LLM_MODEL``, ``LLM_BASE_URL``, ``LLM_API_KEY``; ``LLM_STREAM``
stays ``auto``, so each session gets the way it asks for). Each turn kind is
measured on two sessions of that mesh, one that streams and one that does
not, one turn at a time, alternating (and which one goes first each round),
so both see the same machine, process and conversation length. History per
turn is read from each session's history (:mod:`bench.history`).

Run on its own (a few minutes on 2 cores): ``python -m bench.streaming_report``.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from bench.config import BenchConfig
from bench.cpu import CpuMeter, spent
from bench.fake_provider import FakeProvider
from bench.history import HistoryCost, HistoryMeter
from bench.processes import WorkerProcess, start_workers, stop_all
from bench.turns import KINDS, TurnKind, TurnResults, end_session, new_session_id, one_turn
from meshkit.mesh import Mesh
from meshkit.setup import setup_mesh
from orchestrator.session import Session
from orchestrator.session_client import SessionClient

SUFFIX = "llm"
MODEL = "openai/bench-fake"
SIDES = ("streamed", "unstreamed")
CHUNK_DELAY_MS = float(os.environ.get("BENCH_CHUNK_DELAY_MS", "0"))
"""Between two streamed pieces of the fake model's answer (0: as fast as it can,
so the figures are the mesh's own cost; a model's pace only dilutes them)."""


@dataclass
class StreamingResult:
    turns: dict[str, dict[str, TurnResults]]
    """By side (streamed, unstreamed), by turn kind."""
    history: dict[str, dict[str, HistoryCost]]
    workers: list[WorkerProcess]
    """The streaming mesh's workers, stopped; their memory was sampled at the end."""
    exit_codes: dict[str, int | None]
    requests: dict[str, int]
    """Chat completions the fake served, streamed and not."""
    chunk_delay_ms: float

    @property
    def errors(self) -> list[str]:
        return [e for side in self.turns.values() for r in side.values() for e in r.errors]


async def measure_streaming(
    client: Client, mesh: Mesh, env: dict[str, str], workdir: Path, config: BenchConfig
) -> StreamingResult:
    """Start the streaming mesh beside ``mesh`` and its fake model, measure every
    turn kind both ways (``tracing_samples`` turns each), stop them."""
    provider = FakeProvider(CHUNK_DELAY_MS / 1000)
    llm = mesh.isolated(SUFFIX)
    mesh_file = workdir / f"mesh-{SUFFIX}.toml"
    mesh_file.write_text(llm.to_toml())
    await setup_mesh(llm)
    llm_env = {
        **env,
        "MESH_FILE": str(mesh_file),
        "LLM_MODEL": MODEL,
        "LLM_BASE_URL": provider.url,
        "LLM_API_KEY": "sk-bench-fake",
        "LLM_STREAM": "auto",
    }
    started: list[WorkerProcess] = []
    turns: dict[str, dict[str, TurnResults]] = {side: {} for side in SIDES}
    history: dict[str, dict[str, HistoryCost]] = {side: {} for side in SIDES}
    try:
        await start_workers(llm, llm_env, workdir / SUFFIX, started)
        meter = CpuMeter({w.name: w.process.pid for w in started})
        histories = HistoryMeter(client, llm)
        for kind in KINDS:
            results, costs = await _measure_kind(client, llm, meter, histories, kind, config)
            for side in SIDES:
                turns[side][kind.name] = results[side]
                history[side][kind.name] = costs[side]
        dead = [w.name for w in started if not w.alive()]
        if dead:
            raise RuntimeError(f"streaming mesh worker(s) {', '.join(dead)} exited during the run")
        for worker in started:
            worker.sample()
    finally:
        codes = stop_all(started)
        provider.close()
    return StreamingResult(turns, history, started, codes, dict(provider.requests), CHUNK_DELAY_MS)


async def _measure_kind(
    client: Client,
    mesh: Mesh,
    meter: CpuMeter,
    histories: HistoryMeter,
    kind: TurnKind,
    config: BenchConfig,
) -> tuple[dict[str, TurnResults], dict[str, HistoryCost]]:
    results = {side: TurnResults() for side in SIDES}
    warm = {side: TurnResults() for side in SIDES}
    handles: dict[str, Session] = {}
    costs: dict[str, HistoryCost] = {}
    try:
        for side in SIDES:
            handles[side] = await SessionClient(client, mesh).open(
                new_session_id(f"{side}-{kind.name}"), model=MODEL, stream=side == "streamed"
            )
        for side, handle in handles.items():
            for _ in range(config.warmup):
                await one_turn(handle, kind, config.turn_timeout_s, warm[side])
        order = list(SIDES)
        for _ in range(config.tracing_samples):
            for side in order:
                before = meter.snapshot()
                await one_turn(handles[side], kind, config.turn_timeout_s, results[side])
                for name, used in spent(before, meter.snapshot()).items():
                    results[side].cpu_s[name] = results[side].cpu_s.get(name, 0.0) + used
            order.reverse()
        for side, handle in handles.items():
            costs[side] = await histories.session(handle.handle)
    finally:
        await asyncio.gather(*(end_session(handle) for handle in handles.values()))
    for side in SIDES:
        results[side].errors = [
            f"streaming {side}: {e}" for e in warm[side].errors + results[side].errors
        ]
    return results, costs
