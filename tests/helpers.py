"""Test doubles that stand in for a hosted model, never for Temporal."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from agents import ModelResponse, Usage
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from temporalio import activity, workflow
from temporalio.api.operatorservice.v1 import DeleteNexusEndpointRequest, ListNexusEndpointsRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from meshkit.mesh import Mesh
from meshkit.setup import ensure_endpoint
from orchestrator.contract import WORKFLOW_TYPE, SessionConfig, SessionResult
from orchestrator.models.offline import plain
from orchestrator.models.provider import LlmSettings, MeshModelProvider
from orchestrator.session_types import SessionState
from orchestrator.shared_catalogs import shared_catalogs
from orchestrator.worker import agent_plugins, model_plan_activity
from orchestrator.workflow import ChatSessionWorkflow
from services.finance.workflows import StockPriceWorkflow, SubmitExpenseWorkflow
from services.it.projects import ProjectChoiceWorkflow
from services.it.workflows import CreateTicketWorkflow, JiraMetricsWorkflow

SCRIPTED = "scripted"


def say(text: str, input_tokens: int = 10, output_tokens: int = 5) -> ModelResponse:
    return ModelResponse(
        output=[
            ResponseOutputMessage(
                id="msg",
                type="message",
                role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
            )
        ],
        usage=Usage(
            requests=1,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        ),
        response_id=None,
    )


def call(*calls: tuple[str, dict[str, Any] | str]) -> ModelResponse:
    """One model response asking for one or more tool calls."""
    return ModelResponse(
        output=[
            ResponseFunctionToolCall(
                type="function_call",
                id=f"fc_{n}",
                call_id=f"call_{name}_{n}",
                name=name,
                arguments=args if isinstance(args, str) else json.dumps(args),
                status="completed",
            )
            for n, (name, args) in enumerate(calls)
        ],
        usage=Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15),
        response_id=None,
    )


class ScriptedModel(Model):
    """Answers each session from its own script and records what it was shown.

    The script is keyed by the session's workflow id, read from the model
    activity's info, so many tests share one orchestrator worker.
    """

    def __init__(self) -> None:
        self.scripts: dict[str, list[ModelResponse]] = defaultdict(list)
        self.seen: dict[str, list[list[Any]]] = defaultdict(list)
        self.tools_seen: dict[str, list[Any]] = {}

    def script(self, workflow_id: str, *responses: ModelResponse) -> None:
        self.scripts[workflow_id].extend(responses)

    async def get_response(
        self, system_instructions, input, model_settings, tools, *args, **kwargs
    ):  # type: ignore[no-untyped-def,override]
        workflow_id = activity.info().workflow_id
        self.seen[workflow_id].append(plain(input) if not isinstance(input, str) else [input])
        self.tools_seen[workflow_id] = list(tools)
        script = self.scripts[workflow_id]
        if not script:
            raise AssertionError(f"scripted model has no response left for {workflow_id}")
        return script.pop(0)

    def stream_response(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        raise NotImplementedError


@workflow.defn(name=WORKFLOW_TYPE)
class UnversionedSession(ChatSessionWorkflow):
    """The session, for a worker of no Worker Deployment (its own task queue)."""

    @workflow.run
    async def run(self, state: SessionState) -> SessionResult:
        return await super().run(state)


def session_worker(client: Client, queue: str, provider: MeshModelProvider) -> Worker:
    """A worker of sessions on their own task queue, with no Worker Deployment,
    and the local activities a session's turn runs."""
    return Worker(
        client,
        task_queue=queue,
        workflows=[UnversionedSession],
        activities=[model_plan_activity(provider), shared_catalogs],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


@asynccontextmanager
async def own_team_routes(
    client: Client, mesh: Mesh, config: SessionConfig
) -> AsyncIterator[SessionConfig]:
    """``config`` with each team reached through a Nexus endpoint of its own, to
    the team's task queue, for the block; the endpoints are deleted after it.

    Catalogs are shared per route by every session worker of a process
    (``orchestrator.shared_catalogs.STORE``), and the suite's orchestrator
    worker (``running_mesh``) runs in the tests' process: its sessions put the
    teams' catalogs into the store at any time. A test that counts which of
    its sessions fetch a catalog gives them routes nobody else uses."""
    suffix = uuid.uuid4().hex[:6]
    teams = {}
    for name, route in config.teams.items():
        team = mesh.teams[name]
        endpoint = f"{team.endpoint}-{suffix}"
        await ensure_endpoint(client, endpoint, team.namespace, team.task_queue)
        teams[name] = route.model_copy(update={"endpoint": endpoint})
    try:
        yield config.model_copy(update={"teams": teams})
    finally:
        for route in teams.values():
            listed = await client.operator_service.list_nexus_endpoints(
                ListNexusEndpointsRequest(name=route.endpoint)
            )
            for endpoint in listed.endpoints:
                await client.operator_service.delete_nexus_endpoint(
                    DeleteNexusEndpointRequest(id=endpoint.id, version=endpoint.version)
                )


def replayer() -> Replayer:
    """A replayer configured like the orchestrator worker, but in the workflow sandbox,
    which fails a replay on any non-deterministic call of workflow code."""
    return Replayer(
        workflows=[ChatSessionWorkflow],
        plugins=agent_plugins(LlmSettings(model="offline")),
        workflow_runner=SandboxedWorkflowRunner(),
    )


def it_replayer() -> Replayer:
    """A replayer configured like the IT worker."""
    return Replayer(
        workflows=[JiraMetricsWorkflow, CreateTicketWorkflow, ProjectChoiceWorkflow],
        data_converter=pydantic_data_converter,
    )


def finance_replayer() -> Replayer:
    """A replayer configured like the Finance worker."""
    return Replayer(
        workflows=[StockPriceWorkflow, SubmitExpenseWorkflow],
        data_converter=pydantic_data_converter,
    )
