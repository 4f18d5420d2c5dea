"""One level of the sweep on its own: the mesh's sessions and the floor's, in turns.

``python -m bench.level [--sessions 100] [--rounds 3] [--server-config KEY=VALUE]``
starts its own dev server, the mesh's workers and the floor's, warms both with
a 10-session level, then runs the level ``rounds`` times for each, alternating,
and prints turns/s, p50, p95 and CPU ms per turn by process, and the ratio to
the floor, per round. A round takes seconds where ``scripts/bench --quick``
takes minutes, so it is the way to compare two builds at one level; rounds
that stalled (a turn many times the p95) show as such rather than averaged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.config import make_config
from bench.cpu import CpuMeter
from bench.floor import floor_level, floor_workers
from bench.processes import WorkerProcess, start_workers, stop_all
from bench.server import isolated_env, start_server, wait_for_server, write_mesh
from bench.turns import LevelResult, sweep_level
from meshkit.mesh import connect, load_mesh
from meshkit.setup import setup_mesh

WARM_SESSIONS = 10


async def _main(
    sessions: int, rounds: int, server_config: tuple[str, ...], keep_logs: bool
) -> None:
    console = Console()
    config = replace(make_config("quick", server_config=server_config), sweep_turns=3)
    workdir = Path(tempfile.mkdtemp(prefix="bench-level-"))
    server = start_server(workdir, server_config)
    workers: list[WorkerProcess] = []
    ok = False
    try:
        mesh_file = write_mesh(workdir, server.address)
        env = isolated_env(mesh_file)
        os.environ.update(env)
        mesh = load_mesh(mesh_file)
        await wait_for_server(mesh, server)
        await setup_mesh(mesh)
        await start_workers(mesh, env, workdir, workers)
        client = await connect(mesh, mesh.orchestrator, data_converter=pydantic_data_converter)
        async with floor_workers(mesh, env, workdir) as setup:
            meter = CpuMeter.of(
                server.process.pid, {**{w.name: w.process.pid for w in workers}, **setup.pids}
            )
            await sweep_level(client, mesh, WARM_SESSIONS, config)
            await floor_level(setup, WARM_SESSIONS, config)
            table = Table(
                title=f"{sessions} sessions x {config.sweep_turns} turns, mesh and floor in turns "
                "(CPU ms per turn by process)",
                title_justify="left",
            )
            for column in ("round", "who", "turns/s", "p50 ms", "p95 ms", "max ms", "CPU ms/turn"):
                table.add_column(column, justify="left" if column == "who" else "right")
            for n in range(1, rounds + 1):
                ours = await sweep_level(client, mesh, sessions, config, meter)
                floor = await floor_level(setup, sessions, config, meter)
                for who, level in (("mesh", ours), ("floor", floor)):
                    table.add_row(str(n), who, *_row(level))
                ratio = ours.turns_per_s / floor.turns_per_s if floor.turns_per_s else 0.0
                table.add_row("", "x floor", f"{ratio:.2f}", "", "", "", "")
                errors = ours.errors + floor.errors
                if errors:
                    console.print(f"round {n}: {len(errors)} errors, first: {errors[0]}")
            console.print(table)
        ok = True
    finally:
        stop_all(workers)
        server.stop()
        if ok and not keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            console.print(f"logs kept in {workdir}")


def _row(level: LevelResult) -> tuple[str, ...]:
    turns = max(level.turns, 1)
    cpu = ", ".join(
        f"{name} {seconds * 1000 / turns:.1f}" for name, seconds in level.cpu_s.items() if seconds
    )
    return (
        f"{level.turns_per_s:.1f}",
        f"{level.latency.p50_ms:.0f}",
        f"{level.latency.p95_ms:.0f}",
        f"{level.latency.max_ms:.0f}",
        cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-config", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep-logs", action="store_true", help="Keep the workers' logs.")
    args = parser.parse_args()
    if args.sessions < 1 or args.rounds < 1:
        parser.error("--sessions and --rounds must be at least 1")
    asyncio.run(_main(args.sessions, args.rounds, tuple(args.server_config), args.keep_logs))


if __name__ == "__main__":
    main()
