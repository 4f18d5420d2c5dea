"""Start-up: how long a fresh mesh takes before it answers.

Three figures, each what an operator waits for after a deploy, a scale-up or a
crash: a worker's start (spawn until it logs that it polls, measured by
:mod:`bench.processes`), the first turn after the workers started (the
sessions' worker caches are empty, every team's catalog is fetched, the model
plan is asked), and importing the Agents SDK alone, the largest share of the
orchestrator's start.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from temporalio.client import Client

from bench.turns import BY_NAME, TurnResults, end_session, one_turn, open_session
from meshkit.mesh import Mesh

FIRST_TURN = BY_NAME["three_tools"]
"""A turn that reaches every worker: a local tool, IT and Finance."""


@dataclass(frozen=True)
class StartupResult:
    first_turn_ms: float
    """The first turn of the first session after the workers started, sent the
    moment the last one polled."""
    first_turn_errors: list[str]
    import_agents_s: float
    """Median wall time of ``python -c "import agents"`` in a new interpreter."""


async def first_turn(client: Client, mesh: Mesh, timeout_s: float) -> tuple[float, list[str]]:
    results = TurnResults()
    session = await open_session(client, mesh, "first")
    try:
        elapsed = await one_turn(session, FIRST_TURN, timeout_s, results)
    finally:
        await end_session(session)
    return round(elapsed, 1), results.errors


def import_agents_s(runs: int = 3) -> float:
    """Seconds a new interpreter takes to import the Agents SDK (median of ``runs``)."""
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import agents"], check=True)
        took.append(time.perf_counter() - started)
    return round(statistics.median(took), 2)
