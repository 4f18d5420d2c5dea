"""The IT team's Nexus service handler."""

from __future__ import annotations

import re

import nexusrpc
from nexusrpc.handler import StartOperationContext, service_handler, sync_operation
from temporalio import nexus

from services.it.contract import HostAddresses, ItService, JiraMetrics, JiraMetricsRequest
from services.it.netinfo import host_addresses
from services.it.workflows import JiraMetricsWorkflow

PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")


def validate_project(project: str) -> str:
    key = project.strip().upper()
    if not PROJECT_KEY.match(key):
        raise nexusrpc.HandlerError(
            f"invalid Jira project key {project!r}: expected 2-10 capital letters or digits "
            "starting with a letter, e.g. OPS",
            type=nexusrpc.HandlerErrorType.BAD_REQUEST,
        )
    return key


@service_handler(service=ItService)
class ItServiceHandler:
    def __init__(self, task_queue: str) -> None:
        self._task_queue = task_queue

    @nexus.workflow_run_operation
    async def jira_metrics(
        self, ctx: nexus.WorkflowRunOperationContext, input: JiraMetricsRequest
    ) -> nexus.WorkflowHandle[JiraMetrics]:
        request = JiraMetricsRequest(project=validate_project(input.project))
        # A retried start carries the same request id, so this id never
        # yields a second workflow for one tool call.
        return await ctx.start_workflow(
            JiraMetricsWorkflow.run,
            request,
            id=f"jira-metrics-{request.project}-{ctx.request_id}",
            task_queue=self._task_queue,
        )

    @sync_operation
    async def get_ip(self, ctx: StartOperationContext, input: None) -> HostAddresses:
        return host_addresses()
