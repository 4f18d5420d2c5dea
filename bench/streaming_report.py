"""The streaming phase's figures (:mod:`bench.streaming`), as JSON and as a table.

``python -m bench.streaming_report [--samples N] [--server-config KEY=VALUE]``
runs that phase alone, on its own dev server, and prints them
(``BENCH_CHUNK_DELAY_MS`` paces the fake model's pieces).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.config import PRESETS
from bench.server import isolated_env, start_server, wait_for_server, write_mesh
from bench.stats import cpu_ms_per, ms_text, percentile
from bench.streaming import StreamingResult, measure_streaming
from meshkit.mesh import connect, load_mesh
from meshkit.setup import setup_mesh

MB = 1024 * 1024
HISTORY_TARGET_KB = 8.0
RATIO_TARGET = 1.2
MAX_LISTED_ERRORS = 20


def kb(size: object) -> float:
    """Bytes as KB (1,024 bytes), two decimals."""
    return round(int(size) / 1024, 2)  # type: ignore[call-overload]


def streaming_figures(result: StreamingResult) -> dict[str, Any]:
    """Per turn kind, p50 and history per turn both ways, and their ratios."""
    kinds: dict[str, Any] = {}
    streamed, unstreamed = result.turns["streamed"], result.turns["unstreamed"]
    for name, on in streamed.items():
        off = unstreamed[name]
        p50_on, p50_off = percentile(on.latencies, 50), percentile(off.latencies, 50)
        cost_on = result.history["streamed"][name].per_turn()
        cost_off = result.history["unstreamed"][name].per_turn()
        kinds[name] = {
            "p50_streamed_ms": round(p50_on, 2),
            "p50_unstreamed_ms": round(p50_off, 2),
            "ratio": round(p50_on / p50_off, 3) if p50_off > 0 else math.nan,
            "p95_streamed_ms": round(percentile(on.latencies, 95), 2),
            "p95_unstreamed_ms": round(percentile(off.latencies, 95), 2),
            "history_kb_per_turn_streamed": kb(cost_on["bytes_per_turn"]),
            "history_kb_per_turn_unstreamed": kb(cost_off["bytes_per_turn"]),
            "history_kb_per_later_turn_streamed": kb(cost_on["bytes_per_later_turn"]),
            "history_kb_per_later_turn_unstreamed": kb(cost_off["bytes_per_later_turn"]),
            "history_kb_first_turn_streamed": kb(cost_on["first_turn_bytes"]),
            "history_kb_first_turn_unstreamed": kb(cost_off["first_turn_bytes"]),
            "actions_per_turn_streamed": cost_on["actions_per_turn"],
            "actions_per_turn_unstreamed": cost_off["actions_per_turn"],
            "signals_per_turn_streamed": cost_on["actions"].get("signals", 0.0),  # type: ignore[attr-defined]
            "samples": min(len(on.latencies), len(off.latencies)),
            "errors": len(on.errors) + len(off.errors),
            "cpu_ms_per_turn_streamed": cpu_ms_per(on.cpu_s, len(on.latencies)),
            "cpu_ms_per_turn_unstreamed": cpu_ms_per(off.cpu_s, len(off.latencies)),
        }
    tool_kinds = [k for name, k in kinds.items() if name != "no_tool"]
    ratios = [k["ratio"] for k in kinds.values() if k["ratio"] == k["ratio"]]
    orchestrator = next((w for w in result.workers if w.name == "orchestrator"), None)
    return {
        "kind": kinds,
        "model": "openai/bench-fake over HTTP (bench.fake_provider)",
        "chunk_delay_ms": result.chunk_delay_ms,
        "max_ratio": max(ratios) if ratios else math.nan,
        "max_tool_turn_history_kb_streamed": max(
            (k["history_kb_per_turn_streamed"] for k in tool_kinds), default=math.nan
        ),
        "max_later_tool_turn_history_kb_streamed": max(
            (k["history_kb_per_later_turn_streamed"] for k in tool_kinds), default=math.nan
        ),
        "targets": {"history_kb_per_tool_turn": HISTORY_TARGET_KB, "p50_ratio": RATIO_TARGET},
        "provider_requests": result.requests,
        "orchestrator_rss_mb": round(orchestrator.last_rss / MB, 1) if orchestrator else math.nan,
        "orchestrator_peak_rss_mb": round(orchestrator.peak_rss / MB, 1)
        if orchestrator
        else math.nan,
    }


def add_streaming(data: dict[str, Any], result: StreamingResult) -> None:
    """Put the phase's figures and errors into a run's figures (bench.report.figures)."""
    data["streaming"] = streaming_figures(result)
    errors = data.setdefault("errors", {"count": 0, "first": []})
    errors["count"] += len(result.errors)
    errors["first"] = (errors["first"] + result.errors)[:MAX_LISTED_ERRORS]


def render_streaming(streaming: dict[str, Any], console: Console) -> None:
    table = Table(
        title="Streaming: the same turns with a LiteLLM model over HTTP, streamed vs not "
        f"(ms; KB of history per turn, all / after the session's first / its first; "
        f"targets: tool turn <= {HISTORY_TARGET_KB:g} KB, ratio <= {RATIO_TARGET:g})",
        title_justify="left",
    )
    columns = ("kind", "p50 streamed", "p50 not", "ratio", "KB streamed", "KB not", "signals")
    for column in columns:
        table.add_column(column, justify="left" if column == "kind" else "right")
    for name, k in streaming["kind"].items():
        ratio = k["ratio"]
        table.add_row(
            name,
            ms_text(k["p50_streamed_ms"]),
            ms_text(k["p50_unstreamed_ms"]),
            "-" if ratio != ratio else f"{ratio:.3f}",
            _kb_text(k, "streamed"),
            _kb_text(k, "unstreamed"),
            f"{k['signals_per_turn_streamed']:.1f}",
        )
    console.print(table)
    console.print(
        f"[bold]Streaming mesh[/]: orchestrator RSS {ms_text(streaming['orchestrator_rss_mb'])} MB "
        f"(peak {ms_text(streaming['orchestrator_peak_rss_mb'])}), both ways in one process · "
        f"model pieces {streaming['chunk_delay_ms']:g} ms apart · "
        f"requests {streaming['provider_requests']}"
    )


def _kb_text(kind: dict[str, Any], side: str) -> str:
    return (
        f"{kind[f'history_kb_per_turn_{side}']:.1f} / "
        f"{kind[f'history_kb_per_later_turn_{side}']:.1f} / "
        f"{kind[f'history_kb_first_turn_{side}']:.1f}"
    )


async def _main(samples: int, server_config: tuple[str, ...]) -> None:
    """The same server, mesh and workers as scripts/bench, and this phase alone."""
    config = replace(PRESETS["tiny"], tracing_samples=samples, server_config=server_config)
    workdir = Path(tempfile.mkdtemp(prefix="mesh-bench-streaming-"))
    server = start_server(workdir, config.server_config)
    try:
        mesh_file = write_mesh(workdir, server.address)
        env = isolated_env(mesh_file)
        for key in set(os.environ) - set(env):
            del os.environ[key]
        os.environ.update(env)
        mesh = load_mesh(mesh_file)
        await wait_for_server(mesh, server)
        await setup_mesh(mesh)
        client = await connect(mesh, mesh.orchestrator, data_converter=pydantic_data_converter)
        result = await measure_streaming(client, mesh, env, workdir, config)
        data = streaming_figures(result)
        render_streaming(data, Console())
        print(json.dumps(data, indent=2))
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=15, help="measured turns per kind and side")
    parser.add_argument(
        "--server-config", action="append", default=[], help="KEY=VALUE dynamic config"
    )
    args = parser.parse_args()
    asyncio.run(_main(args.samples, tuple(args.server_config)))
