"""One benchmark run, start to finish: server, mesh, workers, every phase, cleanup.

Whatever happens (a failed phase, Ctrl-C, SIGTERM), the workers are stopped
with SIGTERM and the server after them; on failure the logs' directory and
tails are printed, since the workers' output goes only to those files.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter

from bench.config import BenchConfig
from bench.cpu import CpuMeter
from bench.floor import FLOORS, floor_level, floor_workers, measure_agent_floor, measure_floors
from bench.history import HistoryMeter
from bench.long import long_conversation
from bench.mcp_calls import TOOLS, measure_mcp
from bench.processes import WorkerProcess, sample_memory, start_workers, stop_all
from bench.push import measure_push
from bench.report import figures
from bench.server import (
    DevServer,
    isolated_env,
    start_server,
    wait_for_server,
    write_mesh,
)
from bench.startup import StartupResult, first_turn, import_agents_s
from bench.streaming import StreamingResult, measure_streaming
from bench.streaming_report import add_streaming
from bench.tracing import SUFFIX, TracingResult, measure_tracing
from bench.turns import KINDS, measure_kind, sweep_level
from meshkit.mesh import connect, load_mesh
from meshkit.setup import setup_mesh

Progress = Callable[[str], None]


async def run_bench(
    config: BenchConfig, progress: Progress, keep_logs: bool = False
) -> dict[str, Any]:
    """Run every phase and return the figures (see bench.report.figures)."""
    workdir = Path(tempfile.mkdtemp(prefix="mesh-bench-"))
    server: DevServer | None = None
    workers: list[WorkerProcess] = []
    sampler: asyncio.Task[None] | None = None
    tracing: TracingResult | None = None
    streaming: StreamingResult | None = None
    ok = False
    why = "failed"
    began = time.perf_counter()
    try:
        server = start_server(workdir, config.server_config)
        mesh_file = write_mesh(workdir, server.address)
        env = isolated_env(mesh_file)
        for setting in config.worker_env:
            key, _, value = setting.partition("=")
            env[key] = value
        # This process connects with the same settings as the workers do.
        for key in set(os.environ) - set(env):
            del os.environ[key]
        os.environ.update(env)
        mesh = load_mesh(mesh_file)
        progress(f"dev server at {server.address}; logs in {workdir}")
        await wait_for_server(mesh, server)
        await setup_mesh(mesh)

        progress("starting workers (one at a time)")
        await start_workers(mesh, env, workdir, workers)
        sampler = asyncio.create_task(sample_memory(workers))
        client = await connect(mesh, mesh.orchestrator, data_converter=pydantic_data_converter)
        progress("start-up: the first turn after the workers started, and importing the SDK")
        first_ms, first_errors = await first_turn(client, mesh, config.turn_timeout_s)
        startup = StartupResult(first_ms, first_errors, import_agents_s())
        async with floor_workers(mesh, env, workdir, agent=True) as setup:
            meter = CpuMeter.of(
                server.process.pid, {**{w.name: w.process.pid for w in workers}, **setup.pids}
            )

            progress(f"floor: {', '.join(FLOORS)}")
            floors = await measure_floors(setup, config, meter)
            progress("agent floor: each turn kind through the Agents SDK, with a scripted model")
            agent_floor = await measure_agent_floor(setup, mesh, config, meter)

            turns = {}
            histories = HistoryMeter(client, mesh)
            for kind in KINDS:
                progress(f"turns: {kind.name}")
                turns[kind.name] = await measure_kind(client, mesh, kind, config, meter, histories)

            levels = []
            for sessions in config.levels:
                progress(f"concurrency: {sessions} sessions x {config.sweep_turns} turns")
                ours = await sweep_level(client, mesh, sessions, config, meter)
                progress(
                    f"concurrency: the floor's {sessions} sessions x {config.sweep_turns} turns"
                )
                levels.append((ours, await floor_level(setup, sessions, config, meter)))

        progress(f"long conversation: {config.long_turns} turns")
        long = await long_conversation(client, mesh, config)

        progress("events: pushed vs polled, tool turns watched and not")
        push = await measure_push(client, mesh, config)

        progress(f"tracing: a second, traced mesh; {config.tracing_samples} turns per kind on each")
        tracing = await measure_tracing(client, mesh, workers, env, workdir, config)

        progress(f"streaming: a model over HTTP, {config.tracing_samples} turns per kind each way")
        streaming = await measure_streaming(client, mesh, env, workdir, config)

        # Last, so that the API process it starts runs during no other phase.
        names = " and ".join(tool.name for tool in TOOLS)
        progress(f"mcp: {config.mcp_samples} tools/call of {names} each, and their Nexus floor")
        pids = {"server": server.process.pid, **{w.name: w.process.pid for w in workers}}
        mcp = await measure_mcp(mesh, env, workdir, config, pids)

        for worker in workers:
            worker.sample()
        dead = [w.name for w in workers if not w.alive()]
        if dead:
            raise RuntimeError(f"worker(s) {', '.join(dead)} exited during the run")
        data = figures(
            config,
            floors,
            agent_floor,
            turns,
            levels,
            long,
            push,
            tracing,
            mcp,
            startup,
            workers,
            time.perf_counter() - began,
        )
        add_streaming(data, streaming)
        ok = True
        return data
    except (asyncio.CancelledError, KeyboardInterrupt):
        why = "interrupted"
        raise
    finally:
        if sampler is not None:
            sampler.cancel()
        codes = stop_all(workers)
        if tracing is not None:
            codes |= {f"traced {name}": code for name, code in tracing.exit_codes.items()}
        if streaming is not None:
            codes |= {f"streaming {name}": code for name, code in streaming.exit_codes.items()}
        if server is not None:
            server.stop()
        if not ok:
            _explain_failure(why, workdir, workers, server, progress)
        elif any(code not in (0, None) for code in codes.values()):
            progress(f"workers exited with {codes}; logs in {workdir}")
        elif not keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)


def _explain_failure(
    why: str,
    workdir: Path,
    workers: list[WorkerProcess],
    server: DevServer | None,
    progress: Progress,
) -> None:
    progress(f"benchmark {why}; logs kept in {workdir}")
    for worker in workers:
        progress(f"--- {worker.log} (last lines)\n{worker.tail()}")
    if (workdir / SUFFIX).is_dir():
        progress(f"--- the tracing phase's workers' logs: {workdir / SUFFIX}")
    if server is not None:
        progress(f"--- server log: {server.log}")
