"""Agent turns through the real ChatSession workflow, with the offline model.

Every turn goes the way a user's does: a message sent with
``orchestrator.session.Session.send`` to a ChatSession opened by the
``SessionClient``, answered by the orchestrator worker process, which calls
the teams' worker processes. A reply whose tools differ from what the
question needs counts as an error. Turns are sent with no listener, so the
client follows no event stream: the figure is the turn's own cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from temporalio.client import Client

from bench.config import BenchConfig
from bench.cpu import CpuMeter, spent
from bench.history import HistoryCost, HistoryMeter
from bench.stats import Summary, percentile, timed
from meshkit.mesh import Mesh
from orchestrator.contract import ChatReply
from orchestrator.session import Session
from orchestrator.session_client import SessionClient


@dataclass(frozen=True)
class TurnKind:
    name: str
    question: str
    tools: tuple[str, ...]
    """Tools the reply must list, in any order."""
    floor: str
    """The floor primitive the turn is built from, to read its latency against."""


KINDS = (
    TurnKind("no_tool", "Tell me a joke", (), "update"),
    TurnKind("local_tool", "What is 15 * 23?", ("calculator",), "activity"),
    TurnKind("nexus_sync", "What is my IP address?", ("get_ip",), "nexus_sync"),
    TurnKind(
        "nexus_workflow", "What is the stock price of AAPL?", ("stock_price",), "nexus_workflow"
    ),
    TurnKind(
        "three_tools",
        "What is 2 + 2 and the stock price of MSFT and my IP address?",
        ("calculator", "stock_price", "get_ip"),
        # Its tools run in parallel, so the slowest, workflow-backed one bounds it.
        "nexus_workflow",
    ),
)
BY_NAME = {kind.name: kind for kind in KINDS}
TOOL_KINDS = tuple(kind for kind in KINDS if kind.tools)


def reply_problem(kind: TurnKind, reply: ChatReply) -> str | None:
    """Why a reply is wrong for its question, or None when it is right."""
    if not reply.ok:
        return f"turn failed: {reply.text[:200]}"
    called = Counter(call.name for call in reply.tools)
    if called != Counter(kind.tools):
        return f"tools {sorted(called.elements())}, expected {sorted(kind.tools)}"
    failed = [call.name for call in reply.tools if not call.ok]
    if failed:
        return f"tools failed: {failed}"
    return None


UNAVAILABLE_WHILE_ALIVE = "team reported unavailable while its worker was alive:"


@dataclass
class TurnResults:
    latencies: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    """The same latencies, by turn kind."""
    errors: list[str] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds per process over the measured turns only."""
    history: HistoryCost = field(default_factory=HistoryCost)
    """History bytes and actions of the turns (warm-up turns included)."""

    def answered(self, kind: TurnKind, elapsed: float) -> None:
        """A turn answered as expected, in ``elapsed`` ms."""
        self.latencies.append(elapsed)
        self.by_kind.setdefault(kind.name, []).append(elapsed)

    def record(
        self, kind: TurnKind, reply: ChatReply | None, elapsed: float, error: str = ""
    ) -> None:
        problem = error or (reply_problem(kind, reply) if reply else "no reply")
        if problem:
            self.errors.append(f"{kind.name}: {problem}")
        else:
            self.answered(kind, elapsed)
        if reply is not None and reply.unavailable:
            # Every worker of the bench is alive throughout: any such report is wrong.
            self.errors.append(f"{kind.name}: {UNAVAILABLE_WHILE_ALIVE} {reply.unavailable}")


def new_session_id(label: str) -> str:
    return f"bench-{label}-{uuid.uuid4().hex[:10]}"


async def open_session(client: Client, mesh: Mesh, label: str) -> Session:
    return await SessionClient(client, mesh).open(new_session_id(label))


async def end_session(session: Session) -> None:
    """Close a session the way the chat does; a session already gone is fine."""
    # Ended, terminated (history limit) or timed out: nothing left to close.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(session.end(), 30)


async def one_turn(
    session: Session, kind: TurnKind, timeout_s: float, results: TurnResults | None
) -> float:
    """Send one turn; record it in ``results`` and return its latency in ms."""
    reply: ChatReply | None = None
    error = ""
    started = time.perf_counter()
    try:
        reply, elapsed = await timed(lambda: session.send(kind.question, timeout_s))
    except Exception as err:  # a failed turn (timeout, RPC error) is a figure, not a crash
        elapsed = (time.perf_counter() - started) * 1000
        error = f"{type(err).__name__}: {err}"
    if results is not None:
        results.record(kind, reply, elapsed, error)
    return elapsed


async def measure_kind(
    client: Client,
    mesh: Mesh,
    kind: TurnKind,
    config: BenchConfig,
    meter: CpuMeter | None = None,
    histories: HistoryMeter | None = None,
) -> TurnResults:
    """``turn_samples`` turns of one kind, one at a time, on sessions of at most
    ``turns_per_session`` turns. Only the first session starts with discarded
    warm-up turns; later ones pay what a real new session pays."""
    results = TurnResults()
    warm = TurnResults()
    remaining = config.turn_samples
    first = True
    while remaining > 0:
        session = await open_session(client, mesh, kind.name)
        try:
            if first:
                for _ in range(config.warmup):
                    await one_turn(session, kind, config.turn_timeout_s, warm)
                first = False
            for _ in range(min(remaining, config.turns_per_session)):
                before = meter.snapshot() if meter else {}
                await one_turn(session, kind, config.turn_timeout_s, results)
                if meter:
                    for name, used in spent(before, meter.snapshot()).items():
                        results.cpu_s[name] = results.cpu_s.get(name, 0.0) + used
                remaining -= 1
        finally:
            await end_session(session)
        if histories is not None:
            results.history.add(await histories.session(session.handle))
    results.errors = warm.errors + results.errors
    return results


@dataclass(frozen=True)
class LevelResult:
    sessions: int
    turns: int
    wall_s: float
    turns_per_s: float
    latency: Summary
    errors: list[str]
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds per process while the turns ran."""
    by_kind: dict[str, Summary] = field(default_factory=dict)
    """Latency by turn kind: a spread between kinds is the mix (a turn of
    more steps waits in more queues); a spread within one is unfairness."""


Send = Callable[[int, TurnKind, TurnResults], Awaitable[object]]
"""Sends session ``index`` one turn of a kind and records it."""


async def run_level(
    sessions: int, send: Send, config: BenchConfig, meter: CpuMeter | None
) -> LevelResult:
    """The sweep's client loop: ``sessions`` sessions at once, each sending
    ``sweep_turns`` tool turns in a row, rotating through the tool kinds. The
    mesh and the floor are driven by this one loop, so they differ only by
    what answers a turn."""
    results = TurnResults()

    async def converse(index: int) -> None:
        for turn in range(config.sweep_turns):
            await send(index, TOOL_KINDS[(index + turn) % len(TOOL_KINDS)], results)

    before = meter.snapshot() if meter else {}
    started = time.perf_counter()
    await asyncio.gather(*(converse(i) for i in range(sessions)))
    wall = time.perf_counter() - started
    cpu = spent(before, meter.snapshot()) if meter else {}
    done = len(results.latencies)
    return LevelResult(
        sessions=sessions,
        turns=done,
        wall_s=round(wall, 3),
        turns_per_s=round(done / wall, 2) if wall > 0 else 0.0,
        latency=Summary.of(results.latencies),
        errors=results.errors,
        cpu_s=cpu,
        by_kind={kind: Summary.of(values) for kind, values in results.by_kind.items()},
    )


async def sweep_level(
    client: Client, mesh: Mesh, sessions: int, config: BenchConfig, meter: CpuMeter | None = None
) -> LevelResult:
    """One level of the sweep through the mesh's sessions. Sessions open before
    the clock starts: the figure is turns, not workflow starts."""
    opened = await asyncio.gather(
        *(open_session(client, mesh, f"c{sessions}") for _ in range(sessions))
    )

    async def send(index: int, kind: TurnKind, results: TurnResults) -> float:
        return await one_turn(opened[index], kind, config.turn_timeout_s, results)

    try:
        return await run_level(sessions, send, config, meter)
    finally:
        await asyncio.gather(*(end_session(s) for s in opened))


def ratio(turn: list[float], floor_ms: float) -> float:
    """Turn p50 over a floor's p50: how many floors one turn costs."""
    if not turn or not floor_ms > 0:
        return float("nan")
    return round(percentile(turn, 50) / floor_ms, 2)


TOOL_PRIMITIVE = {"calculator": "activity", "get_ip": "nexus_sync", "stock_price": "nexus_workflow"}
"""The floor primitive each benchmarked tool call is."""


def composed_floor(kind: TurnKind, floors: dict[str, Summary], model_calls_local: bool) -> float:
    """What the turn would cost if it were nothing but its Temporal primitives.

    A turn is one Update, one model call per model response (two when tools
    run: one asks for them, one reads their results), and its tool calls,
    which run in parallel, so the slowest counts. A model call is the
    primitive the turns used: a local activity, or an activity when streamed
    (``model_calls_local`` is read from the turns' histories). Each
    primitive's cost is its floor minus the Update round trip every floor
    includes. A ratio to this near 1 means the turn's time is Temporal's;
    above 1, the agent's own work.
    """
    update = floors["update"].p50_ms

    def extra(primitive: str) -> float:
        return max(floors[primitive].p50_ms - update, 0.0)

    model_calls = 2 if kind.tools else 1
    model = extra("local_activity" if model_calls_local else "activity")
    tools = max((extra(TOOL_PRIMITIVE[tool]) for tool in kind.tools), default=0.0)
    return round(update + model_calls * model + tools, 2)
