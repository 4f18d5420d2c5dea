"""The IT team's Nexus service handler."""

from __future__ import annotations

import re

from nexusrpc.handler import StartOperationContext, service_handler, sync_operation
from temporalio import nexus

from meshkit.toolkit import TeamServiceHandler, bad_request, normalize_text, require
from meshkit.toolkit.door import caller_workflow
from services.it.contract import (
    CreateTicketRequest,
    HostAddresses,
    ItService,
    JiraMetrics,
    JiraMetricsRequest,
    ProjectChoice,
    SetProjectRequest,
    Ticket,
)
from services.it.netinfo import host_addresses
from services.it.projects import choose_project, chosen_project
from services.it.workflows import CreateTicketWorkflow, JiraMetricsWorkflow

PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")


def validate_project(project: str) -> str:
    key = project.strip().upper()
    if not PROJECT_KEY.match(key):
        raise bad_request(
            f"invalid Jira project key {project!r}: expected 2-10 capital letters or digits "
            "starting with a letter, e.g. OPS"
        )
    return key


def validate_ticket(request: CreateTicketRequest) -> CreateTicketRequest:
    summary = normalize_text(request.summary)
    require(bool(summary), "a ticket needs a summary")
    require(len(summary) <= 200, f"the summary has {len(summary)} characters; the limit is 200")
    require(
        len(request.description) <= 5000,
        f"the description has {len(request.description)} characters; the limit is 5000",
    )
    return CreateTicketRequest(
        project=validate_project(request.project),
        summary=summary,
        description=request.description.strip(),
    )


def the_caller(ctx: StartOperationContext) -> tuple[str, str]:
    """The calling workflow, as the server linked it; the door has already
    checked that the links name one workflow of an accepted namespace."""
    caller = caller_workflow(ctx.inbound_links)
    if caller is None:
        raise bad_request("this tool keeps a choice per calling workflow, and none is named")
    return caller


@service_handler(service=ItService)
class ItServiceHandler(TeamServiceHandler):
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
            task_queue=self.team.task_queue,
        )

    @sync_operation
    async def get_ip(self, ctx: StartOperationContext, input: None) -> HostAddresses:
        return host_addresses()

    @sync_operation
    async def set_project(
        self, ctx: StartOperationContext, input: SetProjectRequest
    ) -> ProjectChoice:
        project = validate_project(input.project)
        await choose_project(nexus.client(), self.team.task_queue, the_caller(ctx), project)
        return ProjectChoice(project=project)

    @nexus.workflow_run_operation
    async def create_ticket(
        self, ctx: nexus.WorkflowRunOperationContext, input: CreateTicketRequest
    ) -> nexus.WorkflowHandle[Ticket]:
        if not input.project.strip():
            chosen = await chosen_project(nexus.client(), the_caller(ctx))
            if chosen is None:
                raise bad_request(
                    "no project named, and this chat has chosen none: name one, "
                    "or choose one first (e.g. 'Use project OPS from now on')"
                )
            input = input.model_copy(update={"project": chosen})
        request = validate_ticket(input)
        # The workflow id doubles as the ticket's idempotency key: one Nexus
        # request, however often retried, creates one ticket.
        return await ctx.start_workflow(
            CreateTicketWorkflow.run,
            request,
            id=f"create-ticket-{request.project}-{ctx.request_id}",
            task_queue=self.team.task_queue,
        )
