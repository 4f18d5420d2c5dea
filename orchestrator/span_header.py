"""Keeps the Agents plugin's span header out of history while tracing is off.

The OpenAI Agents plugin writes the Agents SDK's current trace and span into a
header of every activity and local activity a session schedules
(``__openai_span``), so that the activity's spans join the turn's trace. With
tracing off there is nothing to join: the header reads "no-op" ids, yet
Temporal stores it with every scheduled activity, about 95 bytes each (three
per three-tool turn with a streamed model: its two model calls and the
calculator). Without the header the activity side is unchanged: the plugin
restores a trace only from a header that is there.

The plugin writes it on what the worker's client sends too: the Signals a
streamed model call publishes its text with, about 95 bytes each in history.

The workflow interceptor goes on the worker's client ahead of the plugin's.
The SDK chains a workflow's outbound calls in the reverse order of its
interceptors, so an activity scheduled passes the plugin's first, which sets
the header, then this one, which drops it. A client's calls go through its
interceptors in their order, so the client's part (:class:`DropClientSpanHeader`)
goes after the plugin's, in a plugin of its own listed after the Agents plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio import client, worker, workflow
from temporalio.api.common.v1 import Payload
from temporalio.plugin import SimplePlugin
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


class DropClientSpanHeader(client.Interceptor):
    """The client's part: no ``__openai_span`` header on a Signal, a workflow
    start or an Update the worker's client sends (all kept in history). Goes
    after the Agents plugin's interceptor (see the module's docstring)."""

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _ClientOutbound(next)


class _ClientOutbound(client.OutboundInterceptor):
    async def signal_workflow(self, input: client.SignalWorkflowInput) -> None:
        input.headers = _without(input.headers)
        await self.next.signal_workflow(input)

    async def start_workflow(
        self, input: client.StartWorkflowInput
    ) -> client.WorkflowHandle[Any, Any]:
        input.headers = _without(input.headers)
        return await self.next.start_workflow(input)

    async def start_workflow_update(
        self, input: client.StartWorkflowUpdateInput
    ) -> client.WorkflowUpdateHandle[Any]:
        input.headers = _without(input.headers)
        return await self.next.start_workflow_update(input)


def drop_client_span_header() -> SimplePlugin:
    """A plugin holding :class:`DropClientSpanHeader`: list it after the Agents plugin."""
    return SimplePlugin("mesh.drop-span-header", interceptors=[DropClientSpanHeader()])
