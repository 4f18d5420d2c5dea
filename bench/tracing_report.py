"""The tracing phase's figures (:mod:`bench.tracing`), as JSON and as a table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bench.stats import cpu_ms_per, ms_text, percentile
from bench.tracing import TracingResult
from bench.turns import TurnResults

MB = 1024 * 1024


def tracing_figures(result: TracingResult) -> dict[str, Any]:
    """Per turn kind, latency with tracing off and on; what the trace file got per turn."""
    kinds: dict[str, Any] = {}
    for name, off in result.off.items():
        on = result.on[name]
        p50_off, p50_on = percentile(off.latencies, 50), percentile(on.latencies, 50)
        kinds[name] = {
            "p50_off_ms": round(p50_off, 2),
            "p50_on_ms": round(p50_on, 2),
            "ratio": round(p50_on / p50_off, 3) if p50_off > 0 else float("nan"),
            "p95_off_ms": round(percentile(off.latencies, 95), 2),
            "p95_on_ms": round(percentile(on.latencies, 95), 2),
            "samples_off": len(off.latencies),
            "samples_on": len(on.latencies),
            "errors": len(off.errors) + len(on.errors),
            "cpu_ms_per_turn_off": cpu_ms_per(off.cpu_s, len(off.latencies)),
            "cpu_ms_per_turn_on": cpu_ms_per(on.cpu_s, len(on.latencies)),
        }
    ratios = [k["ratio"] for k in kinds.values() if k["ratio"] == k["ratio"]]
    trace, turns = result.trace, result.turns_on

    def cpu(side: dict[str, TurnResults], process: str) -> float:
        # Over every measured turn of every kind: the CPU one turn costs on average.
        done = sum(len(r.latencies) for r in side.values())
        used = sum(r.cpu_s.get(process, 0.0) for r in side.values())
        return round(used * 1000 / done, 1) if done else float("nan")

    return {
        "kind": kinds,
        "max_ratio": max(ratios) if ratios else float("nan"),
        "turns_traced": turns,
        "turn_spans": trace.turn_spans,
        "spans": trace.spans,
        "spans_per_turn": round(trace.spans / turns, 1) if turns else 0.0,
        "bytes_per_turn": round(trace.bytes / turns) if turns else 0,
        "spans_by_component": trace.by_component,
        "orchestrator_cpu_ms_per_turn_off": cpu(result.off, "orchestrator"),
        "orchestrator_cpu_ms_per_turn_on": cpu(result.on, "orchestrator"),
        "orchestrator_rss_mb_on": next(
            (round(w.last_rss / MB, 1) for w in result.workers_on if w.name == "orchestrator"),
            float("nan"),
        ),
    }


def render_tracing(tracing: dict[str, Any], console: Console) -> None:
    table = Table(
        title="Tracing: the same turns with tracing on (spans to a file) vs off "
        "(ms; ratio = p50 on / p50 off)",
        title_justify="left",
    )
    for column in ("kind", "p50 off", "p50 on", "ratio", "p95 off", "p95 on"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for name, k in tracing["kind"].items():
        ratio = k["ratio"]
        table.add_row(
            name,
            ms_text(k["p50_off_ms"]),
            ms_text(k["p50_on_ms"]),
            "-" if ratio is None or ratio != ratio else f"{ratio:.3f}",
            ms_text(k["p95_off_ms"]),
            ms_text(k["p95_on_ms"]),
        )
    console.print(table)
    console.print(
        f"[bold]Trace file[/]: {tracing['spans_per_turn']:.1f} spans/turn, "
        f"{tracing['bytes_per_turn'] / 1024:.1f} KB/turn ({tracing['spans']:,} spans over "
        f"{tracing['turns_traced']} traced turns, session start and end included) · "
        f"orchestrator CPU {ms_text(tracing['orchestrator_cpu_ms_per_turn_off'])} ms/turn off, "
        f"{ms_text(tracing['orchestrator_cpu_ms_per_turn_on'])} on"
    )
