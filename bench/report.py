"""The run's figures as one JSON-ready dict, and as tables for the terminal."""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.config import BenchConfig
from bench.floor import FloorResult
from bench.long import LongResult
from bench.mcp_calls import McpResult
from bench.mcp_report import mcp_figures, render_mcp
from bench.processes import WorkerProcess
from bench.push import PushResult
from bench.startup import StartupResult
from bench.stats import Summary, cpu_ms_per, ms_text, ratio_text
from bench.streaming_report import render_streaming
from bench.tracing import TracingResult
from bench.tracing_report import render_tracing, tracing_figures
from bench.turns import (
    BY_NAME,
    UNAVAILABLE_WHILE_ALIVE,
    LevelResult,
    TurnResults,
    composed_floor,
    ratio,
)

MB = 1024 * 1024
MAX_LISTED_ERRORS = 20


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def figures(
    config: BenchConfig,
    results: dict[str, FloorResult],
    agent_floor: dict[str, FloorResult],
    turns: dict[str, TurnResults],
    levels: list[tuple[LevelResult, LevelResult]],
    long: LongResult,
    push: PushResult,
    tracing: TracingResult,
    mcp: McpResult,
    startup: StartupResult,
    workers: list[WorkerProcess],
    duration_s: float,
) -> dict[str, Any]:
    floors = {kind: result.latency for kind, result in results.items()}
    errors = [e for r in turns.values() for e in r.errors]
    errors += [e for level in levels for result in level for e in result.errors]
    errors += long.errors
    errors += push.errors
    errors += tracing.errors
    errors += mcp.errors
    errors += startup.first_turn_errors
    return {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "mode": config.mode,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "temporalio": _version("temporalio"),
            "openai_agents": _version("openai-agents"),
            "duration_s": round(duration_s, 1),
            "config": {
                "warmup": config.warmup,
                "floor_samples": config.floor_samples,
                "turn_samples": config.turn_samples,
                "turns_per_session": config.turns_per_session,
                "levels": list(config.levels),
                "sweep_turns": config.sweep_turns,
                "long_turns": config.long_turns,
                "tracing_samples": config.tracing_samples,
                "mcp_samples": config.mcp_samples,
                "server_config": list(config.server_config),
                "worker_env": list(config.worker_env),
            },
        },
        "floor": {
            **{f"{kind}_ms": s.p50_ms for kind, s in floors.items()},
            **{f"{kind}_p95_ms": s.p95_ms for kind, s in floors.items()},
            "samples": {kind: s.samples for kind, s in floors.items()},
            "cpu_ms_per_op": {
                kind: cpu_ms_per(r.cpu_s, r.latency.samples) for kind, r in results.items()
            },
            # Each turn kind through the Agents SDK's runner and the plugin, with a
            # scripted model and none of the mesh's code (bench/floor_agent.py).
            "agent_turn": {
                kind: {
                    "p50_ms": r.latency.p50_ms,
                    "p95_ms": r.latency.p95_ms,
                    "samples": r.latency.samples,
                    "cpu_ms_per_turn": cpu_ms_per(r.cpu_s, r.latency.samples),
                }
                for kind, r in agent_floor.items()
            },
        },
        "turn": {
            name: _turn(name, result, floors, agent_floor.get(name))
            for name, result in turns.items()
        },
        "concurrency": [_level(ours, floor) for ours, floor in levels],
        "long": {
            "turns": long.turns,
            "turns_asked": config.long_turns,
            "first_failed_turn": long.first_failed_turn,
            "wall_s": long.wall_s,
            "latency_turn_10_ms": long.latency_turn_10_ms,
            "latency_last_ms": long.latency_last_ms,
            "max_history_bytes": long.max_history_bytes,
            "max_history_events": long.max_history_events,
            "runs": [vars(run) for run in long.runs],
            # Every 10th turn's latency, for a growth curve without a huge file.
            "latency_every_10_ms": [round(x, 1) for x in long.latencies[9::10]],
            "errors": len(long.errors),
        },
        "events": {
            "pushed_p50_ms": push.pushed.p50_ms,
            "pushed_p95_ms": push.pushed.p95_ms,
            "polled_p50_ms": push.polled.p50_ms,
            "polled_p95_ms": push.polled.p95_ms,
            "samples": push.pushed.samples,
            "turn_alone_p50_ms": push.turn_alone.p50_ms,
            "turn_followed_p50_ms": push.turn_followed.p50_ms,
            "turn_alone_p95_ms": push.turn_alone.p95_ms,
            "turn_followed_p95_ms": push.turn_followed.p95_ms,
        },
        "tracing": tracing_figures(tracing),
        "mcp": mcp_figures(mcp),
        "startup": {
            "first_turn_ms": startup.first_turn_ms,
            "import_agents_s": startup.import_agents_s,
            # Spawn until the worker's pollers are open (what a restarted
            # replica needs before it serves) ...
            "worker_first_poll_s": {w.name: round(w.first_poll_s, 3) for w in workers},
            # ... and until it serves: on a first deploy, once its version is current.
            "worker_startup_s": {w.name: round(w.startup_s, 3) for w in workers},
            "orchestrator_rss_mb": next(
                (round(w.last_rss / MB, 1) for w in workers if w.name == "orchestrator"), None
            ),
        },
        "workers": {
            w.name: {
                "rss_mb": round(w.last_rss / MB, 1),
                "peak_rss_mb": round(w.peak_rss / MB, 1),
                "first_poll_s": round(w.first_poll_s, 3),
                "startup_s": round(w.startup_s, 3),
            }
            for w in workers
        },
        "errors": {"count": len(errors), "first": errors[:MAX_LISTED_ERRORS]},
        # Turns whose reply left out a team although every worker was alive (must be 0).
        "unavailable_while_alive": sum(UNAVAILABLE_WHILE_ALIVE in e for e in errors),
    }


def div(a: float, b: float) -> float:
    """``a / b`` to two decimals; NaN when either is missing."""
    return round(a / b, 2) if b and math.isfinite(a) and math.isfinite(b) else float("nan")


def _level(ours: LevelResult, floor: LevelResult) -> dict[str, Any]:
    """A row of the sweep: the mesh's figures, the floor's at the same level
    (the same client loop with no agent) and the ratios between them."""
    cores = os.cpu_count() or 1
    orchestrator_cpu = ours.cpu_s.get("orchestrator")
    return {
        "sessions": ours.sessions,
        "turns": ours.turns,
        "wall_s": ours.wall_s,
        "turns_per_s": ours.turns_per_s,
        "p50_ms": ours.latency.p50_ms,
        "p95_ms": ours.latency.p95_ms,
        "p99_ms": ours.latency.p99_ms,
        # Fairness: near 1, every session waits about as long as the others.
        "p95_over_p50": div(ours.latency.p95_ms, ours.latency.p50_ms),
        "errors": len(ours.errors),
        "cpu_s": ours.cpu_s,
        # Share of the machine's cores in use: near 1.0 means CPU-bound.
        "cpu_load": round(sum(ours.cpu_s.values()) / ours.wall_s / cores, 2)
        if ours.wall_s
        else 0.0,
        "orchestrator_cpu_ms_per_turn": round(orchestrator_cpu * 1000 / ours.turns, 2)
        if orchestrator_cpu is not None and ours.turns
        else float("nan"),
        # p95 / p50 within each turn kind: how evenly sessions asking the same
        # thing are served, without the spread that the mix of kinds adds.
        "p95_over_p50_by_kind": {
            kind: div(s.p95_ms, s.p50_ms) for kind, s in sorted(ours.by_kind.items())
        },
        "floor_p95_over_p50_by_kind": {
            kind: div(s.p95_ms, s.p50_ms) for kind, s in sorted(floor.by_kind.items())
        },
        "floor_turns": floor.turns,
        "floor_turns_per_s": floor.turns_per_s,
        "floor_p50_ms": floor.latency.p50_ms,
        "floor_p95_ms": floor.latency.p95_ms,
        "floor_p95_over_p50": div(floor.latency.p95_ms, floor.latency.p50_ms),
        "floor_errors": len(floor.errors),
        "floor_cpu_s": floor.cpu_s,
        # What the mesh carries of what its primitives alone could carry
        # (higher is better, 1 at most in principle), and how much longer its
        # slowest turns wait (lower is better).
        "turns_per_s_over_floor": div(ours.turns_per_s, floor.turns_per_s),
        "p95_over_floor_p95": div(ours.latency.p95_ms, floor.latency.p95_ms),
    }


def _turn(
    name: str, result: TurnResults, floors: dict[str, Summary], agent: FloorResult | None
) -> dict[str, Any]:
    kind = BY_NAME[name]
    # The model calls were local activities when the turns left a marker each.
    history = result.history
    local = history.turns > 0 and history.actions["local_activities"] >= history.turns
    composed = composed_floor(kind, floors, local)
    agent_ms = agent.latency.p50_ms if agent is not None else float("nan")
    return {
        **vars(Summary.of(result.latencies)),
        "errors": len(result.errors),
        "tools": list(kind.tools),
        "floor": kind.floor,
        "ratio_to_floor": ratio(result.latencies, floors[kind.floor].p50_ms),
        "model_calls": "local_activity" if local else "activity",
        "composed_floor_ms": composed,
        "ratio_to_composed_floor": ratio(result.latencies, composed),
        # The turn split three ways: Temporal's (the composed floor), the SDKs'
        # (the agent floor over it), the mesh's own (the turn over the agent floor).
        "agent_floor_ms": agent_ms,
        "agent_floor_over_composed": div(agent_ms, composed),
        "ratio_to_agent_floor": ratio(result.latencies, agent_ms),
        "cpu_ms_per_turn": cpu_ms_per(result.cpu_s, len(result.latencies)),
        "history": history.per_turn(),
    }


def _busiest(cpu: dict[str, float], total_s: float) -> str:
    """The process that used the most CPU, and its share of ``total_s`` of one core."""
    if not cpu or total_s <= 0:
        return "-"
    name = max(cpu, key=lambda n: cpu[n])
    return f"{name} {cpu[name] / total_s:.0%}"


def _render_costs(turn: dict[str, Any], console: Console) -> None:
    table = Table(
        title="What a turn leaves in Temporal (per turn, counted from the sessions' histories; "
        "team = the handler workflows its Nexus operations started)",
        title_justify="left",
    )
    columns = (
        *("turn", "history KB", "events", "actions", "WF tasks", "activities"),
        *("local act.", "Nexus ops", "signals", "team actions"),
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "turn" else "right")
    for name, t in turn.items():
        h = t["history"]
        actions = h["actions"]
        table.add_row(
            name,
            f"{h['bytes_per_turn'] / 1024:.1f}",
            f"{h['events_per_turn']:.1f}",
            f"{h['actions_per_turn']:.1f}",
            f"{actions.get('workflow_tasks', 0):.1f}",
            f"{actions.get('activities', 0):.1f}",
            f"{actions.get('local_activities', 0):.1f}",
            f"{actions.get('nexus_operations', 0):.1f}",
            f"{actions.get('signals', 0):.1f}",
            f"{h['team_actions_per_turn']:.1f}",
        )
    console.print(table)


def render(data: dict[str, Any], console: Console) -> None:
    meta = data["meta"]
    console.print(
        f"[bold]Mesh benchmark[/] · {meta['mode']} · {meta['date']} · {meta['cpu_count']} CPUs · "
        f"temporalio {meta['temporalio']} · openai-agents {meta['openai_agents']} · "
        f"{meta['duration_s']} s"
    )
    floor = Table(
        title="Floor: Update round trips, no agent (ms; CPU ms per round trip of the "
        "floor's caller process, which runs the floor's workflows)",
        title_justify="left",
    )
    for column in ("primitive", "p50", "p95", "caller CPU", "server CPU", "samples"):
        floor.add_column(column, justify="left" if column == "primitive" else "right")
    for kind, samples in data["floor"]["samples"].items():
        cpu = data["floor"]["cpu_ms_per_op"][kind]
        floor.add_row(
            kind,
            ms_text(data["floor"][f"{kind}_ms"]),
            ms_text(data["floor"][f"{kind}_p95_ms"]),
            ms_text(cpu.get("floor-caller")),
            ms_text(cpu.get("server")),
            str(samples),
        )
    console.print(floor)

    turns = Table(
        title="Agent turns, offline model (ms; composed = Update + model calls + slowest tool "
        "from the floor; agent floor = the same turn through the Agents SDK with a scripted "
        "model and none of the mesh's code; CPU = CPU ms per turn of that process)",
        title_justify="left",
    )
    for column in (
        *("turn", "p50", "p95", "p99", "floor", "x floor", "composed", "x composed"),
        *("agent floor", "x agent", "orch. CPU", "server CPU", "n", "errors"),
    ):
        turns.add_column(column, justify="left" if column in ("turn", "floor") else "right")
    for name, t in data["turn"].items():
        turns.add_row(
            name,
            ms_text(t["p50_ms"]),
            ms_text(t["p95_ms"]),
            ms_text(t["p99_ms"]),
            t["floor"],
            ms_text(t["ratio_to_floor"]),
            ms_text(t["composed_floor_ms"]),
            ms_text(t["ratio_to_composed_floor"]),
            ms_text(t.get("agent_floor_ms")),
            ms_text(t.get("ratio_to_agent_floor")),
            ms_text(t["cpu_ms_per_turn"].get("orchestrator")),
            ms_text(t["cpu_ms_per_turn"].get("server")),
            str(t["samples"]),
            str(t["errors"]),
        )
    console.print(turns)
    _render_costs(data["turn"], console)

    sweep = Table(
        title="Concurrent sessions, tool turns, beside the floor: the same client loop and "
        "turns made of the same primitives with no agent (ms; orch. CPU = ms per turn)",
        title_justify="left",
    )
    for column in (
        *("sessions", "turns/s", "floor", "x floor", "p50", "p95", "p95/p50"),
        *("floor p95", "x floor p95", "orch. CPU", "CPU load", "busiest", "errors"),
    ):
        sweep.add_column(column, justify="right")
    for row in data["concurrency"]:
        sweep.add_row(
            str(row["sessions"]),
            f"{row['turns_per_s']:.1f}",
            f"{row['floor_turns_per_s']:.1f}",
            ratio_text(row["turns_per_s_over_floor"]),
            ms_text(row["p50_ms"]),
            ms_text(row["p95_ms"]),
            ratio_text(row["p95_over_p50"]),
            ms_text(row["floor_p95_ms"]),
            ratio_text(row["p95_over_floor_p95"]),
            ms_text(row["orchestrator_cpu_ms_per_turn"]),
            f"{row['cpu_load']:.0%}",
            _busiest(row["cpu_s"], row["wall_s"]),
            str(row["errors"] + row["floor_errors"]),
        )
    console.print(sweep)
    for row in data["concurrency"]:
        if row["sessions"] > 1:
            floor_within = row["floor_p95_over_p50_by_kind"]
            console.print(
                f"p95/p50 within each kind at {row['sessions']} sessions: "
                + ", ".join(
                    f"{kind} {ratio_text(r)} (floor {ratio_text(floor_within.get(kind))})"
                    for kind, r in row["p95_over_p50_by_kind"].items()
                )
            )

    long = data["long"]
    failed = (
        f" · [yellow]stopped at turn {long['first_failed_turn']}[/]"
        if long["first_failed_turn"]
        else ""
    )
    console.print(
        f"[bold]Long conversation[/]: {long['turns']}/{long['turns_asked']} turns in "
        f"{long['wall_s']} s{failed} · latency turns 9-12 "
        f"{ms_text(long['latency_turn_10_ms'])} ms, last 4 {ms_text(long['latency_last_ms'])} ms"
        " · largest history "
        f"{long['max_history_events']:,} events, {long['max_history_bytes'] / MB:,.2f} MB "
        f"({len(long['runs'])} run(s))"
    )

    events = data["events"]
    cost = (
        events["turn_followed_p50_ms"] / events["turn_alone_p50_ms"] - 1
        if events["turn_alone_p50_ms"]
        else float("nan")
    )
    console.print(
        f"[bold]Events[/] (tool start in the workflow to the client, {events['samples']} "
        f"workflow-backed tool turns): pushed p50 {ms_text(events['pushed_p50_ms'])} / p95 "
        f"{ms_text(events['pushed_p95_ms'])} ms; polled every 250 ms p50 "
        f"{ms_text(events['polled_p50_ms'])} / p95 {ms_text(events['polled_p95_ms'])} ms"
        f" · turn p50 {ms_text(events['turn_alone_p50_ms'])} ms unwatched, "
        f"{ms_text(events['turn_followed_p50_ms'])} ms followed ({cost:+.0%})"
    )

    render_tracing(data["tracing"], console)
    if "streaming" in data:
        render_streaming(data["streaming"], console)
    render_mcp(data["mcp"], console)

    footprint = Table(title="Workers (separate processes)", title_justify="left")
    for column in ("worker", "first poll s", "serving s", "RSS MB", "peak RSS MB"):
        footprint.add_column(column, justify="left" if column == "worker" else "right")
    for name, w in data["workers"].items():
        footprint.add_row(
            name,
            f"{w['first_poll_s']:.2f}",
            f"{w['startup_s']:.2f}",
            f"{w['rss_mb']:.0f}",
            f"{w['peak_rss_mb']:.0f}",
        )
    console.print(footprint)
    startup = data["startup"]
    console.print(
        "[bold]Start-up[/]: each worker spawn to first poll "
        + ", ".join(f"{name} {s:.2f} s" for name, s in startup["worker_first_poll_s"].items())
        + " (serving, its version made current on this first deploy: "
        + ", ".join(f"{name} {s:.2f} s" for name, s in startup["worker_startup_s"].items())
        + ")"
        + f" · first turn after the start (three tools) {ms_text(startup['first_turn_ms'])} ms"
        f" · `import agents` {startup['import_agents_s']:.2f} s"
    )

    console.print(
        "Turns that reported a team unavailable while its worker was alive: "
        f"{data.get('unavailable_while_alive', 0)}"
    )
    errors = data["errors"]
    if errors["count"]:
        console.print(f"[red]{errors['count']} error(s)[/], first ones:")
        for line in errors["first"]:
            console.print(f"  [red]{line}[/]", markup=False)
