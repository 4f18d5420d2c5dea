"""Worker of the orchestrator's namespace: chat sessions, model calls, local tools.

Run: ``python -m workers.orchestrator``. Model choice comes from ``LLM_MODEL``
(default ``offline``), weather from ``OPEN_METEO_URL``; see README.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import timedelta

from agents import set_trace_processors, set_tracing_disabled
from agents.models.interface import Model
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.openai_agents import ModelActivityParameters, OpenAIAgentsPlugin
from temporalio.worker import Worker

from meshkit import observability
from meshkit.mesh import Mesh, connect
from meshkit.runtime import run_worker
from meshkit.versioning import deployment_config
from orchestrator.activities import LocalTools
from orchestrator.models.provider import LlmSettings, MeshModelProvider
from orchestrator.session_types import MODEL_TOPIC
from orchestrator.weather import WeatherSettings
from orchestrator.workflow import ChatSessionWorkflow


def agents_plugin(
    llm: LlmSettings, extra_models: Mapping[str, Model] | None = None, *, tracing: bool = False
) -> OpenAIAgentsPlugin:
    """The OpenAI Agents plugin: every model call becomes an activity.

    With ``tracing``, the Agents SDK's own spans (the agent, each model
    response, each tool) become OpenTelemetry spans of the turn's trace.
    """
    return OpenAIAgentsPlugin(
        use_otel_instrumentation=tracing,
        # Temporal's own OpenTelemetry plugin traces the activities, once.
        add_temporal_spans=False,
        model_params=ModelActivityParameters(
            start_to_close_timeout=timedelta(seconds=90),
            # The activity heartbeats at half this: a model call whose worker
            # died is retried after 10 s rather than 90, and an interrupted
            # turn's cancellation reaches the call in flight. Local activities
            # cannot heartbeat; they are retried by the workflow task instead.
            heartbeat_timeout=None if llm.local_activity else timedelta(seconds=10),
            use_local_activity=llm.local_activity,
            # The model's stream events go to the session's stream as they
            # arrive (not possible from a local activity).
            streaming_topic=MODEL_TOPIC if llm.stream and not llm.local_activity else None,
            # A model outage is retried with backoff, but not forever: after
            # the last attempt the turn ends with a clear reply instead.
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=20),
                maximum_attempts=6,
            ),
        ),
        model_provider=MeshModelProvider(llm, extra_models),
    )


async def main(
    mesh: Mesh,
    llm: LlmSettings,
    weather: WeatherSettings,
    *,
    extra_models: Mapping[str, Model] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    deployment = deployment_config(mesh.orchestrator, VersioningBehavior.AUTO_UPGRADE)
    telemetry = observability.setup(
        "orchestrator",
        mesh.orchestrator.namespace,
        build_id=deployment.version.build_id if deployment else None,
    )
    # The SDK's default trace exporter posts every span to a hosted endpoint:
    # never install it. With tracing on, the plugin adds the OpenTelemetry
    # processor itself; off, the SDK's tracing is off altogether.
    set_trace_processors([])
    if not telemetry.tracing:
        os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
        set_tracing_disabled(True)
    client = await connect(
        mesh,
        mesh.orchestrator,
        plugins=[agents_plugin(llm, extra_models, tracing=telemetry.tracing)],
        require_namespace=True,
    )
    tools = LocalTools(weather)
    # ChatSession declares its own behaviour (auto-upgrade); see its definition.
    worker = Worker(
        client,
        task_queue=mesh.orchestrator.task_queue,
        workflows=[ChatSessionWorkflow],
        activities=[tools.calculator, tools.weather],
        graceful_shutdown_timeout=timedelta(seconds=10),
        deployment_config=deployment,
    )
    try:
        await run_worker(
            worker, "orchestrator", stop, version=deployment.version if deployment else None
        )
    finally:
        telemetry.shutdown()
