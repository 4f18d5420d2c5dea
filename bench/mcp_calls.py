"""MCP ``tools/call`` through the gateway, next to the Nexus floor of the same operation.

The API process (``python -m orchestrator.api``, as scripts/demo runs it)
serves the MCP gateway at ``/mcp``. The official MCP client calls a sync and
a workflow-backed team tool over Streamable HTTP with a bearer token, one call
at a time, each with a fresh idempotency key so that the gateway runs every
one. Alternating with those calls, the floor's Update calls the same team
operation with the same arguments over Nexus, with no gateway and no MCP, so
both series see the same machine at the same moments: the difference is what
the MCP door costs (HTTP, the protocol, the gateway's call workflow).

The API runs during this phase only: its catalog refreshes load no other phase.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from temporalio.client import WorkflowHandle

from bench.config import BenchConfig
from bench.cpu import CpuMeter, spent
from bench.floor import floor_workers, floor_workflow
from bench.floor_workflows import TeamOperation
from bench.stats import timed
from meshdev.dev_server import free_port
from meshdev.processes import ROOT, WorkerProcess
from meshkit.mesh import Mesh
from meshkit.polling import poll_until
from meshkit.toolkit.catalog import ToolKind
from orchestrator.gateway.http import PATH
from orchestrator.gateway.server import IDEMPOTENCY_META

BENCH_USER = "bench"


@dataclass(frozen=True)
class McpTool:
    """A team tool the phase calls, and how to tell its answer is right."""

    kind: ToolKind
    """What the team's operation is: "sync" or "workflow" (workflow-backed)."""
    team: str
    name: str
    """The tool's name in ``tools/list``, and the team's operation."""
    arguments: dict[str, Any] | None
    """As the team's operation takes them: None for an operation without input."""
    right: Callable[[Any], bool]
    """Whether a result is the answer the arguments ask for."""


TOOLS = (
    # The tools of the sync and workflow-backed agent turns (bench.turns): neither
    # needs a person's approval, and neither changes anything, however often called.
    McpTool("sync", "it", "get_ip", None, lambda r: isinstance(r, dict) and bool(r.get("primary"))),
    McpTool(
        "workflow",
        "finance",
        "stock_price",
        {"ticker": "AAPL"},
        lambda r: isinstance(r, dict) and r.get("ticker") == "AAPL" and r.get("price", 0) > 0,
    ),
)


@dataclass
class McpToolResult:
    tool: McpTool
    mcp: list[float] = field(default_factory=list)
    """Milliseconds per measured ``tools/call``, as the MCP client sees it."""
    floor: list[float] = field(default_factory=list)
    """Milliseconds per measured floor Update calling the same operation."""
    errors: list[str] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds per process over the measured MCP calls only."""


@dataclass(frozen=True)
class McpResult:
    protocol: str
    """The MCP protocol revision the client and the gateway agreed on."""
    api_startup_s: float
    tools: dict[ToolKind, McpToolResult]
    """By the operation's kind: "sync", "workflow"."""

    @property
    def errors(self) -> list[str]:
        return [e for result in self.tools.values() for e in result.errors]


async def measure_mcp(
    mesh: Mesh,
    env: Mapping[str, str],
    workdir: Path,
    config: BenchConfig,
    pids: Mapping[str, int],
) -> McpResult:
    """Start the API, then measure every tool of :data:`TOOLS`; ``pids`` names the
    processes (server and workers) whose CPU the MCP calls are charged with."""
    token = secrets.token_hex(16)
    async with api_process(env, workdir, token) as (api, url):
        meter = CpuMeter({**pids, "api": api.pid})
        http = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx2.Timeout(30, read=config.turn_timeout_s),
        )
        async with (
            http,
            Client(streamable_http_client(f"{url}{PATH}", http_client=http)) as mcp,
            floor_workers(mesh, env, workdir) as setup,
            floor_workflow(setup, "mcp") as floor,
        ):
            listed = {tool.name for tool in (await mcp.list_tools()).tools}
            missing = [tool.name for tool in TOOLS if tool.name not in listed]
            if missing:
                raise RuntimeError(f"the gateway does not list {missing}; it lists {listed}")
            results: dict[ToolKind, McpToolResult] = {}
            for tool in TOOLS:
                route = mesh.teams[tool.team]
                operation = TeamOperation(
                    endpoint=route.endpoint,
                    service=route.service,
                    operation=tool.name,
                    arguments=tool.arguments,
                )
                results[tool.kind] = await _measure_tool(tool, mcp, floor, operation, config, meter)
            return McpResult(mcp.protocol_version, api.startup_s, results)


async def _measure_tool(
    tool: McpTool,
    mcp: Client,
    floor: WorkflowHandle,
    operation: TeamOperation,
    config: BenchConfig,
    meter: CpuMeter,
) -> McpToolResult:
    """``warmup`` + ``mcp_samples`` rounds of one floor Update then one MCP call."""
    result = McpToolResult(tool)

    async def nexus() -> Any:
        return await floor.execute_update("team_operation", operation, result_type=dict)

    async def call() -> Any:
        # A fresh key per call: a repeated key would be answered from the first call.
        meta: Any = {IDEMPOTENCY_META: uuid.uuid4().hex}
        answer = await mcp.call_tool(tool.name, tool.arguments or {}, meta=meta)
        if answer.is_error:
            text = " ".join(getattr(part, "text", "") for part in answer.content)
            raise RuntimeError(f"isError: {text[:200]}")
        return answer.structured_content

    for n in range(config.warmup + config.mcp_samples):
        measured = n >= config.warmup
        latency = await _one(f"floor {tool.name}", tool, nexus, config, result.errors)
        if latency is not None and measured:
            result.floor.append(latency)
        before = meter.snapshot()
        latency = await _one(f"mcp {tool.name}", tool, call, config, result.errors)
        if measured:
            for name, used in spent(before, meter.snapshot()).items():
                result.cpu_s[name] = result.cpu_s.get(name, 0.0) + used
            if latency is not None:
                result.mcp.append(latency)
    return result


async def _one(
    label: str,
    tool: McpTool,
    call: Callable[[], Awaitable[Any]],
    config: BenchConfig,
    errors: list[str],
) -> float | None:
    """One round trip's latency in ms, or None with the reason in ``errors``."""
    try:
        answer, elapsed = await asyncio.wait_for(timed(call), config.turn_timeout_s)
    except Exception as err:  # a failed call is a figure of the run, not a crash
        errors.append(f"{label}: {type(err).__name__}: {err}")
        return None
    if not tool.right(answer):
        errors.append(f"{label}: unexpected result {str(answer)[:200]}")
        return None
    return elapsed


def spawn_api(env: Mapping[str, str], log: Path, port: int, token: str) -> WorkerProcess:
    """``python -m orchestrator.api`` on ``port``, with one user (``BENCH_USER``)
    holding ``token``, in its own session as the workers run, logging to ``log``."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.api"],
            cwd=ROOT,
            env={
                **env,
                "MESH_API_HOST": "127.0.0.1",
                "MESH_API_PORT": str(port),
                "MESH_API_TOKENS": f"{BENCH_USER}:{token}",
            },
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess("api", process, log, time.perf_counter())


@asynccontextmanager
async def api_process(
    env: Mapping[str, str], workdir: Path, token: str, timeout_s: float = 60
) -> AsyncIterator[tuple[WorkerProcess, str]]:
    """The API (:func:`spawn_api`) on a free port until the block ends, stopped
    as the workers are; yields it, once it serves, and its base URL."""
    port = free_port()
    log = workdir / "api.log"
    api = spawn_api(env, log, port, token)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=5) as http:

            async def serving() -> bool:
                if not api.alive():
                    raise RuntimeError(
                        f"the API exited with {api.process.returncode}; log {log}:\n{api.tail()}"
                    )
                # The app answers once its lifespan (the gateway among it) has started.
                return (await http.get(f"{url}/openapi.json")).status_code == 200

            await poll_until(
                serving,
                timeout_s=timeout_s,
                interval_s=0.05,
                what="the API did not serve",
                retry_on=(httpx.TransportError,),
                explain=lambda: f"log {log}:\n{api.tail()}",
            )
        api.startup_s = time.perf_counter() - api.spawned_at
        yield api, url
    finally:
        api.stop()
