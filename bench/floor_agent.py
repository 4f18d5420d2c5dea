"""The agent floor: a floor turn run by the Agents SDK, with none of the mesh's code.

Between the composed floor (a turn's Temporal primitives, nothing else) and a
turn of the mesh lies the agent: the Agents SDK's runner, the Temporal plugin
that makes each model call an activity, and the session's own work (catalogs,
memory, approvals, events, the offline model). This floor runs the first two
and nothing of the third: ``AgentFloorWorkflow``'s ``turn`` Update runs
``Runner.run`` under the plugin, as a session does. Its agent is offered the
tools a new session of the mesh is offered, with their names, descriptions
and schemas (the runner and the plugin do work for every tool offered, on
every model call); the turn's tools run the floor's primitives, the others
are never called. Its model answers at once from a script: it calls the tools
the user's text names, then answers with their outputs. The plugin is set as
the orchestrator sets it for a model that is not streamed: model calls as
local activities, the orchestrator's payload converter, no span header,
tracing off.

So a turn's time splits three ways: the composed floor is Temporal's, the
agent floor minus it is the two SDKs', and the turn minus the agent floor is
the mesh's own. It runs in a process of its own (``bench.floor_worker
agent``): the plugin's interceptors and converter would otherwise weigh on
the composed floor's workflows too.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from temporalio import workflow
from temporalio.client import Client

with workflow.unsafe.imports_passed_through():
    from agents import (
        Agent,
        FunctionTool,
        ModelResponse,
        ModelSettings,
        RunContextWrapper,
        Runner,
        Tool,
        TResponseInputItem,
        Usage,
    )
    from agents.items import TResponseStreamEvent
    from agents.models.interface import Model, ModelProvider
    from openai.types.responses import (
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
    )
    from pydantic import BaseModel

    from bench.floor_workflows import run_primitive
    from meshkit.mesh import Mesh

MODEL = "bench-scripted"
ANSWER_SEPARATOR = " | "


class OfferedTool(BaseModel):
    """A tool as the model sees it."""

    name: str
    description: str
    params_json_schema: dict[str, Any]


class AgentFloorSetup(BaseModel):
    endpoint: str
    """The bench Nexus endpoint."""
    tools: list[OfferedTool]
    """What a session of the mesh is offered (see :func:`session_tools`)."""


class AgentTurn(BaseModel):
    """A turn: ``calls`` maps each tool the model is to call to the primitive it runs."""

    text: str
    calls: dict[str, str]

    @property
    def message(self) -> str:
        """The user's message: the text, then the tools to call."""
        return f"{self.text}: {' '.join(self.calls)}" if self.calls else self.text

    @property
    def answer(self) -> str:
        """What the turn answers: each tool's output (each primitive echoes the text)."""
        return ANSWER_SEPARATOR.join([self.text] * len(self.calls)) if self.calls else self.text


class ScriptedModel(Model):
    """Calls the offered tools the user's message names, then answers with their
    outputs; costs nothing."""

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else input
        outputs = [
            str(item.get("output"))
            for item in items
            if isinstance(item, dict) and item.get("type") == "function_call_output"
        ]
        message = _last_user_text(items)
        named = set(message.rpartition(": ")[2].split())
        wanted = [tool for tool in tools if tool.name in named]
        if outputs or not wanted:
            return _response(_message(ANSWER_SEPARATOR.join(outputs) if outputs else message))
        calls = [
            ResponseFunctionToolCall(
                type="function_call",
                id=f"fc_{n}",
                call_id=f"call_{uuid.uuid4().hex[:12]}",
                name=tool.name,
                arguments="{}",
            )
            for n, tool in enumerate(wanted)
        ]
        return _response(*calls)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("the agent floor's model is not streamed")


class ScriptedProvider(ModelProvider):
    def get_model(self, model_name: str | None) -> Model:
        if model_name != MODEL:
            raise ValueError(f"the agent floor has one model, {MODEL!r}, not {model_name!r}")
        return ScriptedModel()


def _last_user_text(items: list[Any]) -> str:
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user":
            return str(item.get("content"))
    return ""


def _message(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        type="message",
        id="msg_floor",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def _response(*output: Any) -> ModelResponse:
    return ModelResponse(output=list(output), usage=Usage(requests=1), response_id=None)


@workflow.defn(name="BenchAgentFloor")
class AgentFloorWorkflow:
    """One ``turn`` Update per agent turn; runs until ``finish``."""

    @workflow.init
    def __init__(self, setup: AgentFloorSetup) -> None:
        self._setup = setup
        self._done = False

    @workflow.run
    async def run(self, setup: AgentFloorSetup) -> None:
        await workflow.wait_condition(lambda: self._done)
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update(name="turn")
    async def turn(self, turn: AgentTurn) -> str:
        # Built every turn, as a session builds its tools and agent every turn.
        agent: Agent[Any] = Agent(
            name="floor",
            instructions="Call the tools the user names, then answer with what they returned.",
            model=MODEL,
            tools=[self._tool(offered, turn) for offered in self._setup.tools],
        )
        result = await Runner.run(agent, turn.message)
        return str(result.final_output)

    @workflow.update
    async def finish(self) -> None:
        self._done = True

    def _tool(self, offered: OfferedTool, turn: AgentTurn) -> FunctionTool:
        endpoint = self._setup.endpoint
        primitive = turn.calls.get(offered.name)

        async def invoke(_ctx: RunContextWrapper[Any], _arguments: str) -> str:
            if primitive is None:
                raise ValueError(f"the agent floor's tool {offered.name} runs no primitive")
            return await run_primitive(primitive, endpoint, turn.text)

        return FunctionTool(
            name=offered.name,
            description=offered.description,
            params_json_schema=offered.params_json_schema,
            on_invoke_tool=invoke,
            # As the session's tools (orchestrator/tools.py).
            strict_json_schema=True,
        )


async def session_tools(client: Client, mesh: Mesh, timeout_s: float) -> list[OfferedTool]:
    """The tools a new session of ``mesh`` is offered, as its model sees them: the
    local tools and every team's catalog (read as the MCP gateway reads them)."""
    from orchestrator.contract import SessionConfig
    from orchestrator.gateway.calls import CATALOGS_WORKFLOW, CatalogRequest, GatewayCatalogs
    from orchestrator.tools import build_tools

    config = SessionConfig.for_mesh(mesh)
    listed: GatewayCatalogs = await client.execute_workflow(
        CATALOGS_WORKFLOW,
        CatalogRequest(teams=config.teams, timeout_s=timeout_s),
        id=f"bench-agent-catalogs-{uuid.uuid4().hex[:8]}",
        task_queue=mesh.orchestrator.task_queue,
        result_type=GatewayCatalogs,
    )
    if listed.unavailable:
        raise RuntimeError(f"the agent floor could not list every team: {listed.unavailable}")
    tools = build_tools(config, listed.catalogs, host=_NoHost())
    return [
        OfferedTool(
            name=tool.name,
            description=tool.description,
            params_json_schema=tool.params_json_schema,
        )
        for tool in tools
        if isinstance(tool, FunctionTool)
    ]


class _NoHost:
    """The session tools are only read here, never run."""

    @property
    def turn(self) -> int:
        return 0

    def tool_started(self, call: Any) -> None:
        raise AssertionError("the agent floor runs no session tool")

    def tool_finished(self, call: Any) -> None:
        raise AssertionError("the agent floor runs no session tool")

    def catalog_stale(self, team: str) -> None:
        raise AssertionError("the agent floor runs no session tool")

    async def await_approval(self, call: Any, arguments: dict[str, Any], policy: Any) -> Any:
        raise AssertionError("the agent floor runs no session tool")


def agent_client_options() -> dict[str, Any]:
    """``connect`` options for the agent floor's client: the plugin as the
    orchestrator sets it (``orchestrator.worker``), with tracing off and model
    calls as local activities, in one piece."""
    from orchestrator import model_calls
    from orchestrator.worker import agent_client_options as orchestrators

    return orchestrators(
        ScriptedProvider(),
        tracing=False,
        model_params=model_calls.parameters(stream=False, local_activity=True),
    )
