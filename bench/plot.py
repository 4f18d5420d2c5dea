"""The concurrency chart: turn latency (p50, p95) and throughput vs sessions.

matplotlib is a dev dependency: import this module only when a chart is
asked for, and early, before the run (see __main__).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

# Agg: no display on servers and CI.
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_concurrency(data: dict[str, Any], path: Path) -> None:
    rows = data["concurrency"]
    sessions = [row["sessions"] for row in rows]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    ax.plot(sessions, [row["p50_ms"] for row in rows], "o-", label="p50 latency")
    ax.plot(sessions, [row["p95_ms"] for row in rows], "s--", label="p95 latency")
    ax.plot(sessions, [row["floor_p95_ms"] for row in rows], "s--", color="grey", label="floor p95")
    ax.set_xscale("log")
    ax.set_xticks(sessions, [str(s) for s in sessions])
    ax.set_xlabel("concurrent sessions")
    ax.set_ylabel("turn latency (ms)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)

    throughput = ax.twinx()
    throughput.plot(
        sessions, [row["turns_per_s"] for row in rows], "^:", color="tab:green", label="turns/s"
    )
    throughput.plot(
        sessions,
        [row["floor_turns_per_s"] for row in rows],
        "^:",
        color="tab:olive",
        label="floor turns/s",
    )
    throughput.set_ylabel("completed turns per second")
    throughput.set_ylim(bottom=0)

    lines = ax.get_legend_handles_labels()
    more = throughput.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left")
    meta = data["meta"]
    tuned = " · server tuned" if meta["config"].get("server_config") else ""
    ax.set_title(
        f"Mesh: tool turns vs concurrent sessions ({meta['mode']}, {meta['cpu_count']} CPUs{tuned})"
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
