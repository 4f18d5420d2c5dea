"""How a session's model calls run in Temporal: streamed, or in one piece.

A streamed call is a regular activity that publishes the model's text to the
session as it arrives, heartbeating so that a call lost with its worker is
retried within seconds. It costs more per call than one in one piece: the
activity's task-queue round trip, a Query for its input and the published
batches (Signals, each a workflow task); its input stays out of history (see
``orchestrator.model_stream``). Runs that began before that (``STREAM_PATCH``)
call the plugin's streaming activity, whose input and result in history are
the whole conversation, every tool's schema and every stream event.

A call in one piece is, by default, a local activity: it runs in the
orchestrator worker inside the workflow task that asked for it, with no
task-queue round trip, and history keeps only its result (a marker), not its
input. ``scripts/bench`` measures both. Which one a session gets is the
worker's decision (``orchestrator.models.provider.LlmSettings``), asked by the
session with the local activity ``model_plan`` and kept in its state, so a
changed setting never changes what an open run replays.

This module is imported by workflow code: no I/O, nothing non-deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.openai_agents import ModelActivityParameters

# The plugin offers no public way to choose per call how a model is called;
# its runner leaves an agent whose model is already this stub as it is.
from temporalio.openai_agents._temporal_model_stub import _TemporalModelStub

from orchestrator.contract import MODEL_TOPIC
from orchestrator.failover import MODEL_CALL_HEARTBEAT
from orchestrator.model_stream import ModelInputs, StreamedModel
from orchestrator.session_types import ModelPlan

MODEL_PLAN_ACTIVITY = "model_plan"
PLAN_PATCH = "model-plan-per-session"
"""Sessions whose run started before model calls were planned per session keep
the worker-wide way (streamed regular activities) until their next run."""

START_TO_CLOSE = timedelta(seconds=90)
HEARTBEAT = MODEL_CALL_HEARTBEAT
"""A regular model activity heartbeats at half this: a call whose worker died
is retried on another replica after about 1 s rather than 90, and an interrupted
turn's cancellation reaches the call in flight. Local activities cannot
heartbeat; one whose worker died is retried when its workflow task times out
(``orchestrator.failover.session_task_timeout``)."""
RETRY = RetryPolicy(
    # A model outage is retried with backoff, but not forever: after the last
    # attempt the turn ends with a clear reply instead. The first retry comes
    # soon, because the commonest reason for one is a replica that died under
    # the call while its user waits; the next ones back off steeply, so the six
    # attempts still span about 40 s of a provider's outage.
    initial_interval=timedelta(milliseconds=250),
    backoff_coefficient=4.0,
    maximum_interval=timedelta(seconds=20),
    maximum_attempts=6,
)


def parameters(*, stream: bool, local_activity: bool) -> ModelActivityParameters:
    """The plugin's activity parameters for one way of calling the model."""
    local = local_activity and not stream
    return ModelActivityParameters(
        start_to_close_timeout=START_TO_CLOSE,
        heartbeat_timeout=None if local else HEARTBEAT,
        use_local_activity=local,
        streaming_topic=MODEL_TOPIC if stream else None,
        retry_policy=RETRY,
    )


STREAMED = parameters(stream=True, local_activity=False)
"""The worker-wide default the plugin gets: how sessions planned before
per-session plans call their model."""


def planned_model(model: str, plan: ModelPlan, agent: Any) -> Any:
    """The model for ``agent``, called the way ``plan`` says."""
    return _TemporalModelStub(
        model,
        model_params=parameters(stream=plan.stream, local_activity=plan.local_activity),
        agent=agent,
    )


class _StreamedStub(_TemporalModelStub):
    """A :class:`StreamedModel` the plugin's runner leaves as it is (it replaces
    any agent model that is not its stub)."""

    def __init__(self, inner: StreamedModel) -> None:
        super().__init__(inner.name, model_params=STREAMED, agent=None)
        self.inner = inner

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return await self.inner.get_response(*args, **kwargs)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self.inner.stream_response(*args, **kwargs)


def streamed_model(model: str, inputs: ModelInputs, publish: Callable[[str], None]) -> Any:
    """The model for a streamed plan: text published from inside the call, its
    input read by Query (out of history), one response returned; ``publish``
    puts the text the call left unpublished into the session's stream."""
    return _StreamedStub(
        StreamedModel(
            model,
            inputs,
            topic=MODEL_TOPIC,
            publish=publish,
            start_to_close=START_TO_CLOSE,
            heartbeat=HEARTBEAT,
            retry=RETRY,
        )
    )
