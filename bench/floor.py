"""The floor: what each Temporal primitive of a turn costs on its own.

A floor caller process in the orchestrator's namespace runs ``FloorWorkflow``
and its no-op activity; a floor handler process in the "it" namespace hosts
the bench Nexus service, reached through a bench endpoint, as a team's worker
hosts its service (:mod:`bench.floor_worker`). They are processes of their
own, as the mesh's workers are, and only serve the floor, which keeps the
mesh's workers free of bench code. A third, when asked for, runs the agent
floor: the same turns through the Agents SDK's runner (:mod:`bench.floor_agent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.config import BenchConfig
from bench.cpu import CpuMeter, spent
from bench.floor_agent import AgentFloorSetup, AgentFloorWorkflow, AgentTurn, session_tools
from bench.floor_worker import HANDLER_NAMESPACE
from bench.floor_workflows import FloorTurn, FloorWorkflow
from bench.stats import Summary, timed
from bench.turns import KINDS, TOOL_PRIMITIVE, LevelResult, TurnKind, TurnResults, run_level
from meshdev.processes import WorkerProcess, spawn_worker, stop_all
from meshkit.mesh import Mesh, connect
from meshkit.setup import ensure_endpoint

FLOORS = ("update", "activity", "local_activity", "nexus_sync", "nexus_workflow")
"""Floor names, each the name of the Update of FloorWorkflow that measures it."""


@dataclass(frozen=True)
class FloorSetup:
    client: Client
    task_queue: str
    endpoint: str
    processes: tuple[WorkerProcess, ...]
    """The caller, the handler and the agent floor's worker (when asked for), for CPU figures."""
    agent_task_queue: str | None = None

    @property
    def pids(self) -> dict[str, int]:
        return {process.name: process.pid for process in self.processes}


@asynccontextmanager
async def floor_workers(
    mesh: Mesh, env: Mapping[str, str], workdir: Path, *, agent: bool = False
) -> AsyncIterator[FloorSetup]:
    """The floor processes and the bench endpoint, for as long as the block runs:
    the caller and the handler, and with ``agent`` the agent floor's worker."""
    suffix = uuid.uuid4().hex[:6]
    caller_queue, handler_queue = f"bench-floor-{suffix}", f"bench-nexus-{suffix}"
    agent_queue = f"bench-agent-{suffix}"
    endpoint = f"bench-{suffix}"
    caller = await connect(mesh, mesh.orchestrator, data_converter=pydantic_data_converter)
    await ensure_endpoint(caller, endpoint, HANDLER_NAMESPACE, handler_queue)
    started: list[WorkerProcess] = []
    try:
        roles = [("handler", handler_queue), ("caller", caller_queue)]
        if agent:
            roles.append(("agent", agent_queue))
        for role, queue in roles:
            process = spawn_worker(
                f"floor-{role}",
                dict(env),
                workdir / f"floor-{role}-{suffix}.log",
                command=[sys.executable, "-m", "bench.floor_worker", role, queue],
            )
            started.append(process)
            await process.wait_ready()
        yield FloorSetup(
            caller, caller_queue, endpoint, tuple(started), agent_queue if agent else None
        )
    finally:
        stop_all(started)


@dataclass(frozen=True)
class FloorResult:
    latency: Summary
    cpu_s: dict[str, float]
    """CPU seconds per process over the measured round trips ("floor-caller" runs the floor's workflows)."""


@asynccontextmanager
async def floor_workflow(setup: FloorSetup, label: str) -> AsyncIterator[WorkflowHandle]:
    """A running ``FloorWorkflow`` to send floor Updates to, finished after the block."""
    async with _running(
        setup.client.start_workflow(
            FloorWorkflow.run,
            setup.endpoint,
            id=f"bench-floor-{label}-{uuid.uuid4().hex[:8]}",
            task_queue=setup.task_queue,
        )
    ) as handle:
        yield handle


@asynccontextmanager
async def _running(started: Awaitable[WorkflowHandle]) -> AsyncIterator[WorkflowHandle]:
    """The workflow ``started`` starts, for the block; then its ``finish`` Update."""
    handle = await started
    try:
        yield handle
    finally:
        # Bounded: a broken bench worker must not hang the run's cleanup.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(handle.execute_update("finish"), 10)


Ask = Callable[[int], tuple[Callable[[], Awaitable[str]], str]]
"""The ``n``-th round trip to time, and the answer it must give."""


async def _round_trips(
    label: str, ask: Ask, config: BenchConfig, meter: CpuMeter | None
) -> FloorResult:
    """``warmup`` + ``floor_samples`` round trips, one at a time; each answer checked."""
    samples: list[float] = []
    cpu: dict[str, float] = {}
    for n in range(config.warmup + config.floor_samples):
        call, expected = ask(n)
        before = meter.snapshot() if meter else {}
        result, elapsed = await asyncio.wait_for(timed(call), config.turn_timeout_s)
        if result != expected:
            raise RuntimeError(f"{label} returned {result!r}, expected {expected!r}")
        if n >= config.warmup:
            samples.append(elapsed)
            if meter:
                for name, used in spent(before, meter.snapshot()).items():
                    cpu[name] = cpu.get(name, 0.0) + used
    return FloorResult(Summary.of(samples), cpu)


async def measure_floor(
    setup: FloorSetup, kind: str, config: BenchConfig, meter: CpuMeter | None
) -> FloorResult:
    """Round trips of one floor Update (see :func:`_round_trips`)."""
    async with floor_workflow(setup, kind) as handle:

        def ask(n: int) -> tuple[Callable[[], Awaitable[str]], str]:
            text = f"{kind}-{n}"

            async def call() -> str:
                result: str = await handle.execute_update(kind, text, result_type=str)
                return result

            return call, text

        return await _round_trips(f"floor {kind}", ask, config, meter)


async def measure_agent_floor(
    setup: FloorSetup, mesh: Mesh, config: BenchConfig, meter: CpuMeter | None = None
) -> dict[str, FloorResult]:
    """Each turn kind as the agent floor runs it (:mod:`bench.floor_agent`), one
    session per kind (see :func:`_round_trips`), offered the tools a session of
    ``mesh`` is offered."""
    if setup.agent_task_queue is None:
        raise ValueError("the agent floor needs floor_workers(..., agent=True)")
    agent_setup = AgentFloorSetup(
        endpoint=setup.endpoint,
        tools=await session_tools(setup.client, mesh, config.turn_timeout_s),
    )
    return {kind.name: await _agent_kind(setup, agent_setup, kind, config, meter) for kind in KINDS}


async def _agent_kind(
    setup: FloorSetup,
    agent_setup: AgentFloorSetup,
    kind: TurnKind,
    config: BenchConfig,
    meter: CpuMeter | None,
) -> FloorResult:
    calls = {tool: TOOL_PRIMITIVE[tool] for tool in kind.tools}
    started = setup.client.start_workflow(
        AgentFloorWorkflow.run,
        agent_setup,
        id=f"bench-agent-{kind.name}-{uuid.uuid4().hex[:8]}",
        task_queue=setup.agent_task_queue or "",
    )
    async with _running(started) as handle:

        def ask(n: int) -> tuple[Callable[[], Awaitable[str]], str]:
            turn = AgentTurn(text=f"{kind.name}-{n}", calls=calls)

            async def call() -> str:
                result: str = await handle.execute_update("turn", turn, result_type=str)
                return result

            return call, turn.answer

        return await _round_trips(f"agent floor {kind.name}", ask, config, meter)


async def measure_floors(
    setup: FloorSetup, config: BenchConfig, meter: CpuMeter | None = None
) -> dict[str, FloorResult]:
    return {kind: await measure_floor(setup, kind, config, meter) for kind in FLOORS}


async def floor_level(
    setup: FloorSetup, sessions: int, config: BenchConfig, meter: CpuMeter | None = None
) -> LevelResult:
    """One level of the sweep with no agent: each session a ``FloorWorkflow``
    whose ``turn`` Update runs the primitives of the mesh's turn of the same
    kind (two model calls as local activities around its tools), through the
    same client loop as the mesh's sessions."""
    async with contextlib.AsyncExitStack() as stack:
        handles = await asyncio.gather(
            *(
                stack.enter_async_context(floor_workflow(setup, f"c{sessions}"))
                for _ in range(sessions)
            )
        )
        sent = [0] * sessions

        async def send(index: int, kind: TurnKind, results: TurnResults) -> None:
            sent[index] += 1
            turn = FloorTurn(
                text=f"{kind.name}-{index}-{sent[index]}",
                tools=[TOOL_PRIMITIVE[tool] for tool in kind.tools],
            )

            async def call() -> str:
                result: str = await handles[index].execute_update("turn", turn, result_type=str)
                return result

            try:
                result, elapsed = await asyncio.wait_for(timed(call), config.turn_timeout_s)
            except Exception as err:  # a failed turn is a figure, not a crash
                results.errors.append(f"floor {kind.name}: {type(err).__name__}: {err}")
                return
            if result != turn.text:
                results.errors.append(f"floor {kind.name}: returned {result!r}")
            else:
                results.answered(kind, elapsed)

        return await run_level(sessions, send, config, meter)
