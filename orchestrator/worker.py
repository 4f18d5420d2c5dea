"""Worker of the orchestrator's namespace: chat sessions, model calls, local tools.

Run: ``python -m workers.orchestrator``. Model choice comes from ``LLM_MODEL``
(default ``offline``), weather from ``OPEN_METEO_URL``; see README.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from agents import set_trace_processors, set_tracing_disabled
from agents.models.interface import Model, ModelProvider
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio import activity
from temporalio.common import VersioningBehavior
from temporalio.openai_agents import ModelActivityParameters, OpenAIAgentsPlugin
from temporalio.plugin import SimplePlugin
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from meshkit import failover, observability
from meshkit.mesh import Mesh, connect
from meshkit.runtime import run_worker
from meshkit.tuning import PollerSettings
from meshkit.versioning import deployment_config
from orchestrator import model_calls, payloads
from orchestrator.activities import LocalTools
from orchestrator.gateway.workflows import McpCatalogs, McpToolCall
from orchestrator.models.provider import LlmSettings, MeshModelProvider
from orchestrator.models.streamed_call import streamed_call_activity
from orchestrator.session_types import ModelPlan, ModelPlanRequest
from orchestrator.shared_catalogs import shared_catalogs
from orchestrator.span_header import DropSpanHeader, drop_client_span_header
from orchestrator.weather import WeatherSettings
from orchestrator.workflow import ChatSessionWorkflow


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORCHESTRATOR_", extra="ignore")

    workflow_sandbox: bool = Field(
        default=False,
        description="Run the session workflow in Temporal's workflow sandbox, which checks at "
        "run time that workflow code calls nothing non-deterministic and re-imports its "
        "modules per run. Off by default: it costs about a quarter of the worker's CPU per "
        "turn (scripts/bench), and the test suite replays every recorded session history "
        "inside the sandbox instead.",
    )


def agent_plugins(
    llm: LlmSettings | ModelProvider,
    extra_models: Mapping[str, Model] | None = None,
    *,
    tracing: bool = False,
    model_params: ModelActivityParameters = model_calls.STREAMED,
) -> list[SimplePlugin]:
    """The OpenAI Agents plugin, then the orchestrator's faster payload converter.

    The plugin makes every model call an activity. Each session decides per
    run how its calls run (see ``orchestrator.model_calls``); the worker-wide
    parameters here (``model_params``) are the way of sessions started before
    that. With ``tracing``, the Agents SDK's own spans (the agent, each model
    response, each tool) become OpenTelemetry spans of the turn's trace.
    """
    provider = llm if isinstance(llm, ModelProvider) else MeshModelProvider(llm, extra_models)
    agents = OpenAIAgentsPlugin(
        use_otel_instrumentation=tracing,
        # Temporal's own OpenTelemetry plugin traces the activities, once.
        add_temporal_spans=False,
        model_params=model_params,
        model_provider=provider,
    )
    return [agents, payloads.plugin()]


def agent_client_options(
    provider: ModelProvider,
    *,
    tracing: bool,
    model_params: ModelActivityParameters = model_calls.STREAMED,
) -> dict[str, Any]:
    """``plugins`` and ``interceptors`` for the client of a worker that runs
    agents: :func:`agent_plugins`, and without ``tracing`` no span header.

    Also sets the Agents SDK's tracing for the process. Its default trace
    exporter posts every span to a hosted endpoint: never installed. With
    tracing on, the plugin adds the OpenTelemetry processor itself; off, the
    SDK's tracing is off altogether.
    """
    set_trace_processors([])
    if not tracing:
        os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
        set_tracing_disabled(True)
    return {
        "plugins": [
            *agent_plugins(provider, tracing=tracing, model_params=model_params),
            *([] if tracing else [drop_client_span_header()]),
        ],
        "interceptors": [] if tracing else [DropSpanHeader()],
    }


def model_plan_activity(provider: MeshModelProvider) -> Callable[..., Any]:
    """The local activity a session asks how its model calls run."""

    @activity.defn(name=model_calls.MODEL_PLAN_ACTIVITY)
    async def model_plan(request: ModelPlanRequest) -> ModelPlan:
        return provider.plan(request)

    return model_plan


async def main(
    mesh: Mesh,
    llm: LlmSettings,
    weather: WeatherSettings,
    *,
    extra_models: Mapping[str, Model] | None = None,
    stop: asyncio.Event | None = None,
    settings: WorkerSettings | None = None,
) -> None:
    settings = settings or WorkerSettings()
    pollers = PollerSettings()
    deployment = deployment_config(mesh.orchestrator, VersioningBehavior.AUTO_UPGRADE)
    telemetry = observability.setup(
        "orchestrator",
        mesh.orchestrator.namespace,
        build_id=deployment.version.build_id if deployment else None,
    )
    provider = MeshModelProvider(llm, extra_models)
    client = await connect(
        mesh,
        mesh.orchestrator,
        **agent_client_options(provider, tracing=telemetry.tracing),
        tracing=telemetry.plugins,
        require_namespace=True,
    )
    tools = LocalTools(weather)
    # Each workflow declares its own versioning behaviour beside its definition.
    worker = Worker(
        client,
        task_queue=mesh.orchestrator.task_queue,
        workflows=[ChatSessionWorkflow, McpToolCall, McpCatalogs],
        activities=[
            tools.calculator,
            tools.weather,
            model_plan_activity(provider),
            streamed_call_activity(provider),
            shared_catalogs,
        ],
        graceful_shutdown_timeout=timedelta(seconds=10),
        deployment_config=deployment,
        **pollers.worker_options(),
        # A replica takes over a dead one's sessions within seconds (meshkit.failover).
        interceptors=[failover.Heartbeats()],
        **failover.worker_options(),
        workflow_runner=(
            SandboxedWorkflowRunner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner()
        ),
    )

    async def warm_up() -> None:
        # A LiteLLM model imports LiteLLM when first asked for (seconds): ask
        # once the worker polls, so that neither its first turn nor a turn it
        # takes over from a dead replica waits for the import.
        await asyncio.to_thread(provider.get_model, llm.model)

    try:
        await run_worker(
            worker,
            "orchestrator",
            stop,
            version=deployment.version if deployment else None,
            warm_up=warm_up,
        )
    finally:
        telemetry.shutdown()
