"""The benchmark's smallest run, end to end: its own server, the three workers
as processes, every phase; then every figure the issue asks for must be in the
JSON, and be a positive number."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agents import FunctionTool, ModelSettings, ModelTracing

from bench.floor_agent import MODEL, AgentTurn, ScriptedProvider
from bench.turns import TOOL_KINDS, UNAVAILABLE_WHILE_ALIVE, TurnResults
from orchestrator.contract import ChatReply, ToolCall

ROOT = Path(__file__).resolve().parent.parent
WORKERS = ("it", "finance", "orchestrator")
TURN_KINDS = ("no_tool", "local_tool", "nexus_sync", "nexus_workflow", "three_tools")
MCP_TOOLS = ("sync", "workflow")
"""The team operations called through the MCP gateway, by kind."""

REQUIRED = [
    "floor.update_ms",
    "floor.activity_ms",
    "floor.local_activity_ms",
    "floor.nexus_sync_ms",
    "floor.nexus_workflow_ms",
    *(f"turn.{kind}.{figure}" for kind in TURN_KINDS for figure in ("p50_ms", "p95_ms", "p99_ms")),
    *(f"turn.{kind}.ratio_to_floor" for kind in TURN_KINDS),
    *(f"turn.{kind}.ratio_to_composed_floor" for kind in TURN_KINDS),
    *(
        f"turn.{kind}.{figure}"
        for kind in TURN_KINDS
        for figure in ("agent_floor_ms", "agent_floor_over_composed", "ratio_to_agent_floor")
    ),
    *(f"floor.agent_turn.{kind}.p50_ms" for kind in TURN_KINDS),
    *(
        f"turn.{kind}.history.{figure}"
        for kind in TURN_KINDS
        for figure in ("bytes_per_turn", "events_per_turn", "actions_per_turn")
    ),
    *(f"turn.{kind}.cpu_ms_per_turn.orchestrator" for kind in TURN_KINDS),
    "long.turns",
    "long.latency_turn_10_ms",
    "long.latency_last_ms",
    "long.max_history_bytes",
    "long.max_history_events",
    *(
        f"events.{figure}"
        for figure in (
            "pushed_p50_ms",
            "pushed_p95_ms",
            "polled_p50_ms",
            "polled_p95_ms",
            "turn_alone_p50_ms",
            "turn_followed_p50_ms",
        )
    ),
    *(
        f"workers.{name}.{figure}"
        for name in WORKERS
        for figure in ("rss_mb", "first_poll_s", "startup_s")
    ),
    *(f"startup.worker_startup_s.{name}" for name in WORKERS),
    *(f"startup.worker_first_poll_s.{name}" for name in WORKERS),
    "startup.first_turn_ms",
    "startup.import_agents_s",
    "startup.orchestrator_rss_mb",
    *(
        f"tracing.kind.{kind}.{figure}"
        for kind in TURN_KINDS
        for figure in ("p50_off_ms", "p50_on_ms", "ratio", "p95_off_ms", "p95_on_ms")
    ),
    "tracing.spans_per_turn",
    *(
        f"streaming.kind.{kind}.{figure}"
        for kind in TURN_KINDS
        for figure in (
            "p50_streamed_ms",
            "p50_unstreamed_ms",
            "ratio",
            "history_kb_per_turn_streamed",
            "history_kb_per_turn_unstreamed",
            "history_kb_per_later_turn_streamed",
            "history_kb_first_turn_streamed",
        )
    ),
    "streaming.orchestrator_rss_mb",
    "tracing.bytes_per_turn",
    *(
        f"mcp.tool.{kind}.{figure}"
        for kind in MCP_TOOLS
        for figure in ("p50_ms", "p95_ms", "floor_p50_ms", "floor_p95_ms", "ratio_to_floor")
    ),
    "meta.cpu_count",
]
ROW_FIGURES = (
    *("sessions", "turns_per_s", "p50_ms", "p95_ms", "p99_ms", "p95_over_p50"),
    *("floor_turns_per_s", "floor_p95_ms", "orchestrator_cpu_ms_per_turn"),
    *("turns_per_s_over_floor", "p95_over_floor_p95"),
)
MIN_SPANS_PER_TURN = 10
"""A traced turn is dozens of spans (the turn, its model calls, tools, Nexus
operations, their handlers): fewer means the traced mesh did not trace."""


def lookup(data: dict[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        assert isinstance(value, dict) and part in value, f"missing {dotted}"
        value = value[part]
    return value


def positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def problems(data: dict[str, Any]) -> list[str]:
    """Every required figure that is missing or not a positive number."""
    found: list[str] = []
    for dotted in REQUIRED:
        try:
            value = lookup(data, dotted)
        except AssertionError as err:
            found.append(str(err))
            continue
        if not positive(value):
            found.append(f"{dotted} = {value!r}")
    rows = data.get("concurrency")
    if not isinstance(rows, list) or not rows:
        found.append("concurrency: no rows")
    else:
        for n, row in enumerate(rows):
            found += [
                f"concurrency[{n}].{key} = {row.get(key)!r}"
                for key in ROW_FIGURES
                if not positive(row.get(key))
            ]
    spans = data.get("tracing", {}).get("spans_per_turn")
    if positive(spans) and spans <= MIN_SPANS_PER_TURN:
        found.append(f"tracing.spans_per_turn = {spans!r}, expected more than {MIN_SPANS_PER_TURN}")
    meta = data.get("meta", {})
    for key in ("date", "mode", "temporalio", "openai_agents"):
        if not meta.get(key):
            found.append(f"meta.{key} missing")
    return found


def test_the_checker_rejects_missing_and_non_positive_figures() -> None:
    # The end-to-end test is only as good as this check, so check the check.
    assert problems({}) != []
    good = {
        "floor": {"update_ms": 1.0},
        "concurrency": [{"sessions": 1, "turns_per_s": 0, "p50_ms": 1, "p95_ms": 1, "p99_ms": 1}],
    }
    found = problems(good)
    assert "concurrency[0].turns_per_s = 0" in found
    assert any(p.startswith("missing floor.activity_ms") for p in found)
    assert not any(p.startswith("missing floor.update_ms") for p in found)
    assert any(p.startswith("missing tracing.kind.no_tool.ratio") for p in found)
    assert any(p.startswith("missing mcp.tool.workflow.floor_p95_ms") for p in found)
    untraced = {"tracing": {"spans_per_turn": 2.0}}
    assert any(p.startswith("tracing.spans_per_turn = 2.0") for p in problems(untraced))


def test_a_reply_that_leaves_out_a_team_counts_as_unavailable_while_alive() -> None:
    # In the bench every worker is alive throughout, so every such reply is wrong,
    # even one whose tools were right.
    kind = TOOL_KINDS[0]
    calls = [ToolCall(call_id=str(n), name=name, location="x", ok=True)
             for n, name in enumerate(kind.tools)]  # fmt: skip
    results = TurnResults()
    results.record(kind, ChatReply(turn=1, text="", ok=True, tools=calls), 1.0)
    results.record(
        kind, ChatReply(turn=2, text="", ok=True, tools=calls, unavailable={"it": "no"}), 1.0
    )
    assert len(results.latencies) == 2 and len(results.errors) == 1
    assert sum(UNAVAILABLE_WHILE_ALIVE in e for e in results.errors) == 1


async def test_the_agent_floors_model_calls_the_named_tools_then_answers_their_outputs() -> None:
    # The agent floor is only a floor if its model does the turn's work and no more.
    turn = AgentTurn(text="t-1", calls={"calculator": "activity", "get_ip": "nexus_sync"})
    offered = [
        FunctionTool(name=name, description="", params_json_schema={}, on_invoke_tool=_unused)
        for name in ("calculator", "weather", "get_ip")
    ]
    model = ScriptedProvider().get_model(MODEL)
    asked = await _ask(model, [{"role": "user", "content": turn.message}], offered)
    assert [item.name for item in asked.output] == ["calculator", "get_ip"]
    outputs = [
        {"type": "function_call_output", "call_id": item.call_id, "output": turn.text}
        for item in asked.output
    ]
    answered = await _ask(model, [{"role": "user", "content": turn.message}, *outputs], offered)
    assert answered.output[0].content[0].text == turn.answer == "t-1 | t-1"
    alone = AgentTurn(text="t-2", calls={})
    plain = await _ask(model, [{"role": "user", "content": alone.message}], offered)
    assert plain.output[0].content[0].text == alone.answer == "t-2"
    with pytest.raises(ValueError, match="one model"):
        ScriptedProvider().get_model("gpt-x")


async def _unused(_ctx: Any, _arguments: str) -> str:
    raise AssertionError("never called")


async def _ask(model: Any, items: list[Any], tools: list[Any]) -> Any:
    return await model.get_response(
        None, items, ModelSettings(), tools, None, [], ModelTracing.DISABLED,
        previous_response_id=None, conversation_id=None, prompt=None,
    )  # fmt: skip


@pytest.mark.timeout(300)
def test_tiny_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    plot = tmp_path / "bench.png"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--json", str(out),
         "--plot", str(plot)],
        cwd=ROOT, capture_output=True, text=True, timeout=270,
    )  # fmt: skip
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    data = json.loads(out.read_text())
    assert problems(data) == []
    assert data["meta"]["mode"] == "tiny"
    assert data["errors"]["count"] == 0, data["errors"]
    assert data["unavailable_while_alive"] == 0
    assert [row["sessions"] for row in data["concurrency"]] == data["meta"]["config"]["levels"]
    assert data["long"]["turns"] == data["meta"]["config"]["long_turns"]
    # Fairness within each kind, for the mesh and the floor, at every level
    # (sessions rotate through the tool kinds: a level of at least as many
    # turns as kinds has every kind).
    sweep_turns = data["meta"]["config"]["sweep_turns"]
    for row in data["concurrency"]:
        for key in ("p95_over_p50_by_kind", "floor_p95_over_p50_by_kind"):
            kinds = {kind.name for kind in TOOL_KINDS}
            every = row["sessions"] * sweep_turns >= len(kinds)
            assert set(row[key]) == kinds if every else set(row[key]) <= kinds, (key, row)
            assert row[key] and all(value >= 1 for value in row[key].values()), (key, row)
    # A worker opens its pollers before it serves (its version made current).
    for name, worker in data["workers"].items():
        assert worker["first_poll_s"] <= worker["startup_s"], (name, worker)
    samples = data["meta"]["config"]["tracing_samples"]
    for kind in TURN_KINDS:
        traced = data["tracing"]["kind"][kind]
        assert traced["samples_off"] == traced["samples_on"] == samples, traced
    # Every traced turn ran in the orchestrator and was exported: one turn span each.
    assert data["tracing"]["turn_spans"] == data["tracing"]["turns_traced"]
    # Every kind was measured both ways, with the model streaming over HTTP.
    for kind in TURN_KINDS:
        assert data["streaming"]["kind"][kind]["samples"] == samples, data["streaming"]
    assert data["streaming"]["provider_requests"]["streamed"] > 0
    # A session's first turn also fetches the teams' catalogs: it is the larger.
    for kind in TURN_KINDS:
        figures = data["streaming"]["kind"][kind]
        first, later = (
            figures["history_kb_first_turn_streamed"],
            figures["history_kb_per_later_turn_streamed"],
        )
        assert first > later, (kind, figures)
    # Every MCP call and every floor call of the same operation was measured.
    mcp_samples = data["meta"]["config"]["mcp_samples"]
    for kind in MCP_TOOLS:
        tool = data["mcp"]["tool"][kind]
        assert tool["samples"] == tool["floor_samples"] == mcp_samples, tool
        assert tool["errors"] == 0, tool
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "Floor" in run.stdout and "Long conversation" in run.stdout
    assert "Tracing:" in run.stdout and "spans/turn" in run.stdout
    assert "MCP tools/call" in run.stdout
    assert "Streaming:" in run.stdout
