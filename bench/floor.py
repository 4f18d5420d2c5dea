"""The floor: what each Temporal primitive of a turn costs on its own.

A bench worker in the orchestrator's namespace runs ``FloorWorkflow`` and its
no-op activity; one in the "it" namespace hosts the bench Nexus service,
reached through a bench endpoint, as a team's worker hosts its service. Both
run in this process: they only serve the floor, measured while nothing else
runs, and keep the mesh's own workers free of bench code.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from bench.config import BenchConfig
from bench.cpu import CpuMeter, spent
from bench.floor_handler import BenchServiceHandler
from bench.floor_workflows import BenchEchoWorkflow, FloorWorkflow, noop
from bench.stats import Summary, timed
from meshkit.mesh import Mesh, NamespaceConfig, connect
from meshkit.setup import ensure_endpoint

FLOORS = ("update", "activity", "local_activity", "nexus_sync", "nexus_workflow")
"""Floor names, each the name of the Update of FloorWorkflow that measures it."""
HANDLER_NAMESPACE = "it"


@dataclass(frozen=True)
class FloorSetup:
    client: Client
    task_queue: str
    endpoint: str


@asynccontextmanager
async def floor_workers(mesh: Mesh) -> AsyncIterator[FloorSetup]:
    """The two bench workers and the bench endpoint, for as long as the block runs."""
    suffix = uuid.uuid4().hex[:6]
    caller_queue, handler_queue = f"bench-floor-{suffix}", f"bench-nexus-{suffix}"
    endpoint = f"bench-{suffix}"
    caller = await connect(mesh, mesh.orchestrator, data_converter=pydantic_data_converter)
    handler = await connect(
        mesh,
        NamespaceConfig(namespace=HANDLER_NAMESPACE, task_queue=handler_queue),
        data_converter=pydantic_data_converter,
    )
    await ensure_endpoint(caller, endpoint, HANDLER_NAMESPACE, handler_queue)
    async with (
        Worker(
            caller,
            task_queue=caller_queue,
            workflows=[FloorWorkflow],
            activities=[noop],
        ),
        Worker(
            handler,
            task_queue=handler_queue,
            workflows=[BenchEchoWorkflow],
            nexus_service_handlers=[BenchServiceHandler(handler_queue)],
        ),
    ):
        yield FloorSetup(caller, caller_queue, endpoint)


@dataclass(frozen=True)
class FloorResult:
    latency: Summary
    cpu_s: dict[str, float]
    """CPU seconds per process over the measured round trips ("bench" hosts the floor's workers)."""


@asynccontextmanager
async def floor_workflow(setup: FloorSetup, label: str) -> AsyncIterator[WorkflowHandle]:
    """A running ``FloorWorkflow`` to send floor Updates to, finished after the block."""
    handle: WorkflowHandle = await setup.client.start_workflow(
        FloorWorkflow.run,
        setup.endpoint,
        id=f"bench-floor-{label}-{uuid.uuid4().hex[:8]}",
        task_queue=setup.task_queue,
    )
    try:
        yield handle
    finally:
        # Bounded: a broken bench worker must not hang the run's cleanup.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(handle.execute_update(FloorWorkflow.finish), 10)


async def measure_floor(
    setup: FloorSetup, kind: str, config: BenchConfig, meter: CpuMeter | None
) -> FloorResult:
    """``warmup`` + ``floor_samples`` round trips of one floor Update, one at a time."""
    samples: list[float] = []
    cpu: dict[str, float] = {}
    async with floor_workflow(setup, kind) as handle:
        for n in range(config.warmup + config.floor_samples):
            text = f"{kind}-{n}"

            async def call(text: str = text) -> str:
                result: str = await handle.execute_update(kind, text, result_type=str)
                return result

            before = meter.snapshot() if meter else {}
            result, elapsed = await asyncio.wait_for(timed(call), config.turn_timeout_s)
            if meter and n >= config.warmup:
                for name, used in spent(before, meter.snapshot()).items():
                    cpu[name] = cpu.get(name, 0.0) + used
            if result != text:
                raise RuntimeError(f"floor {kind} returned {result!r}, expected {text!r}")
            if n >= config.warmup:
                samples.append(elapsed)
    return FloorResult(Summary.of(samples), cpu)


async def measure_floors(
    mesh: Mesh, config: BenchConfig, meter: CpuMeter | None = None
) -> dict[str, FloorResult]:
    async with floor_workers(mesh) as setup:
        return {kind: await measure_floor(setup, kind, config, meter) for kind in FLOORS}
