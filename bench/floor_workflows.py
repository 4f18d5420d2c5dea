"""The floor's workflows and activity: each primitive a chat turn is built from,
with nothing inside it.

``FloorWorkflow`` runs in the orchestrator's namespace and, like a chat
session, does its work in Update handlers, so every floor figure is an Update
round trip seen from the client, as a chat turn is.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from bench.floor_contract import BenchService
    from meshkit.toolkit.catalog import call_headers


class FloorTurn(BaseModel):
    """A composed turn: its tools' primitives (``activity``, ``nexus_sync``,
    ``nexus_workflow``), run in parallel between two model calls."""

    text: str
    tools: list[str]


class TeamOperation(BaseModel):
    """A team's own operation, reached through the team's endpoint and door."""

    endpoint: str
    service: str
    operation: str
    arguments: dict[str, Any] | None
    """As the team's operation takes them: None for an operation without input."""


@activity.defn(name="bench_noop")
async def noop(text: str) -> str:
    return text


@workflow.defn(name="BenchEcho")
class BenchEchoWorkflow:
    """The workflow behind the workflow-backed operation: one activity, on its
    own task queue, and nothing else.

    A team's workflow-backed tool exists to run its side effect in an activity
    (Finance's ``StockPriceWorkflow`` fetches the quote in one,
    ``services/finance/workflows.py``), so that activity is a primitive of the
    turn; a workflow that returned at once would leave it out of the floor.
    """

    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            noop, text, schedule_to_close_timeout=timedelta(seconds=60)
        )


@workflow.defn(name="BenchFloor")
class FloorWorkflow:
    """One update per primitive; runs until ``finish``."""

    @workflow.init
    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint
        self._done = False

    @workflow.run
    async def run(self, endpoint: str) -> None:
        await workflow.wait_condition(lambda: self._done)
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update(name="update")
    async def only_update(self, text: str) -> str:
        return text

    @workflow.update(name="activity")
    async def one_activity(self, text: str) -> str:
        return await run_primitive("activity", self._endpoint, text)

    @workflow.update(name="local_activity")
    async def one_local_activity(self, text: str) -> str:
        return await run_primitive("local_activity", self._endpoint, text)

    @workflow.update(name="nexus_sync")
    async def one_nexus_sync(self, text: str) -> str:
        return await run_primitive("nexus_sync", self._endpoint, text)

    @workflow.update(name="nexus_workflow")
    async def one_nexus_workflow(self, text: str) -> str:
        return await run_primitive("nexus_workflow", self._endpoint, text)

    @workflow.update(name="turn")
    async def composed_turn(self, turn: FloorTurn) -> str:
        # A turn of the mesh with nothing but its primitives: the model call
        # that asks for the tools, the tools in parallel, the model call that
        # reads their results (one model call when there is no tool).
        await run_primitive("local_activity", self._endpoint, turn.text)
        if not turn.tools:
            return turn.text
        await asyncio.gather(
            *(run_primitive(tool, self._endpoint, turn.text) for tool in turn.tools)
        )
        return await run_primitive("local_activity", self._endpoint, turn.text)

    @workflow.update(name="team_operation")
    async def one_team_operation(self, op: TeamOperation) -> Any:
        # Called as the MCP gateway's call workflow calls it: by name, with the
        # headers a team logs, so the two differ only by what lies before Nexus.
        client = workflow.create_nexus_client(service=op.service, endpoint=op.endpoint)
        update = workflow.current_update_info()
        return await client.execute_operation(
            op.operation,
            op.arguments,
            schedule_to_close_timeout=timedelta(seconds=120),
            headers=call_headers(
                workflow.info().workflow_id, call_id=update.id if update else None
            ),
        )

    @workflow.update
    async def finish(self) -> None:
        self._done = True


async def run_primitive(primitive: str, endpoint: str, text: str) -> str:
    """One primitive of a turn, by its floor name, echoing ``text``; shared with
    the agent floor's tools (bench/floor_agent.py). ``endpoint``: the bench
    Nexus endpoint."""
    if primitive == "activity":
        return await _activity(text)
    if primitive == "local_activity":
        return await _local_activity(text)
    if primitive == "nexus_sync":
        return await _nexus_sync(endpoint, text)
    if primitive == "nexus_workflow":
        return await _nexus_workflow(endpoint, text)
    raise ValueError(f"no floor primitive {primitive!r}")


async def _activity(text: str) -> str:
    # The same options a local tool uses (orchestrator/tools.py).
    return await workflow.execute_activity(
        noop, text, schedule_to_close_timeout=timedelta(seconds=60)
    )


async def _local_activity(text: str) -> str:
    # What a model call that is not streamed is (orchestrator/model_calls.py).
    return await workflow.execute_local_activity(
        noop, text, start_to_close_timeout=timedelta(seconds=60)
    )


async def _nexus_sync(endpoint: str, text: str) -> str:
    return await _bench_service(endpoint).execute_operation(
        BenchService.echo, text, schedule_to_close_timeout=timedelta(seconds=120)
    )


async def _nexus_workflow(endpoint: str, text: str) -> str:
    return await _bench_service(endpoint).execute_operation(
        BenchService.echo_workflow, text, schedule_to_close_timeout=timedelta(seconds=120)
    )


def _bench_service(endpoint: str) -> workflow.NexusClient[Any]:
    return workflow.create_nexus_client(service=BenchService, endpoint=endpoint)
