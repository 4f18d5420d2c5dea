"""The MCP phase's figures (:mod:`bench.mcp_calls`), as JSON and as a table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bench.mcp_calls import McpResult
from bench.stats import Summary, cpu_ms_per, ms_text


def mcp_figures(result: McpResult) -> dict[str, Any]:
    """Per tool: MCP ``tools/call`` latency, and the Nexus floor of its operation."""
    tools: dict[str, Any] = {}
    for kind, one in result.tools.items():
        mcp, floor = Summary.of(one.mcp), Summary.of(one.floor)
        tools[kind] = {
            "tool": one.tool.name,
            "team": one.tool.team,
            "p50_ms": mcp.p50_ms,
            "p95_ms": mcp.p95_ms,
            "samples": mcp.samples,
            "floor_p50_ms": floor.p50_ms,
            "floor_p95_ms": floor.p95_ms,
            "floor_samples": floor.samples,
            # What the MCP door adds to the bare operation, at the median.
            "added_p50_ms": round(mcp.p50_ms - floor.p50_ms, 2),
            "ratio_to_floor": round(mcp.p50_ms / floor.p50_ms, 2)
            if floor.p50_ms > 0
            else float("nan"),
            "errors": len(one.errors),
            "cpu_ms_per_call": cpu_ms_per(one.cpu_s, len(one.mcp)),
        }
    return {
        "transport": "streamable-http",
        "protocol": result.protocol,
        "api_startup_s": round(result.api_startup_s, 3),
        "tool": tools,
    }


def render_mcp(mcp: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"MCP tools/call over Streamable HTTP (protocol {mcp['protocol']}) vs the Nexus "
        "floor of the same operation from an Update, alternated (ms; CPU ms per MCP call)",
        title_justify="left",
    )
    columns = (
        *("tool", "operation", "MCP p50", "MCP p95", "floor p50", "floor p95", "x floor"),
        *("API CPU", "orch. CPU", "server CPU", "n", "errors"),
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("tool", "operation") else "right")
    for kind, t in mcp["tool"].items():
        cpu = t["cpu_ms_per_call"]
        table.add_row(
            f"{t['tool']} ({t['team']})",
            kind,
            ms_text(t["p50_ms"]),
            ms_text(t["p95_ms"]),
            ms_text(t["floor_p50_ms"]),
            ms_text(t["floor_p95_ms"]),
            ms_text(t["ratio_to_floor"]),
            ms_text(cpu.get("api")),
            ms_text(cpu.get("orchestrator")),
            ms_text(cpu.get("server")),
            str(t["samples"]),
            str(t["errors"]),
        )
    console.print(table)
