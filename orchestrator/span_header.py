"""Keeps the Agents plugin's span header out of history while tracing is off.

The OpenAI Agents plugin writes the Agents SDK's current trace and span into a
header of every activity and local activity a session schedules
(``__openai_span``), so that the activity's spans join the turn's trace. With
tracing off there is nothing to join: the header reads "no-op" ids, yet
Temporal stores it with every scheduled activity, about 95 bytes each (three
per three-tool turn with a streamed model: its two model calls and the
calculator). Without the header the activity side is unchanged: the plugin
restores a trace only from a header that is there.

The interceptor goes on the worker's client ahead of the plugin's. The SDK
chains a workflow's outbound calls in the reverse order of its interceptors,
so an activity scheduled passes the plugin's first, which sets the header,
then this one, which drops it.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio import client, worker, workflow
from temporalio.api.common.v1 import Payload
from temporalio.worker import (
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

HEADER = "__openai_span"
"""The plugin's header (tests/test_streamed_calls.py checks the plugin still uses it)."""


class DropSpanHeader(client.Interceptor, worker.Interceptor):
    """For workers whose tracing is off: no ``__openai_span`` header in history.
    Pass it to the worker's client, before the Agents plugin."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _Inbound


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        self.next.init(_Outbound(outbound))


class _Outbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle:
        input.headers = _without(input.headers)
        return self.next.start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle:
        input.headers = _without(input.headers)
        return self.next.start_local_activity(input)


def _without(headers: Mapping[str, Payload]) -> Mapping[str, Payload]:
    if HEADER not in headers:
        return headers
    return {key: value for key, value in headers.items() if key != HEADER}
