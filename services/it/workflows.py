"""Workflows and activities behind the IT team's workflow-backed operations."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from meshkit.failover import ACTIVITY_HEARTBEAT
    from meshkit.toolkit.errors import backend_retry
    from services.it.contract import CreateTicketRequest, JiraMetrics, JiraMetricsRequest, Ticket
    from services.it.jira import JiraSettings, fetch_metrics
    from services.it.tickets import TicketOrder, TicketSettings, create_ticket

# A tool call finishes on the build that started it: a rollout of this team
# never changes the code under a call in flight, and the old build's worker
# keeps polling until its last pinned call ends (meshkit.rollout).
PINNED = VersioningBehavior.PINNED


# Outages (timeouts, 429, 5xx) are retried with backoff; refusals are final.
BACKEND_RETRY = backend_retry()


class JiraActivities:
    """Activities holding the Jira settings of the worker that runs them."""

    def __init__(self, settings: JiraSettings) -> None:
        self._settings = settings

    @activity.defn(name="fetch_jira_metrics")
    async def fetch_jira_metrics(self, request: JiraMetricsRequest) -> JiraMetrics:
        return await fetch_metrics(self._settings, request.project)


@workflow.defn(name="JiraMetricsWorkflow", versioning_behavior=PINNED)
class JiraMetricsWorkflow:
    """Fetches a project's metrics, retrying Jira outages with backoff."""

    @workflow.run
    async def run(self, request: JiraMetricsRequest) -> JiraMetrics:
        return await workflow.execute_activity_method(
            JiraActivities.fetch_jira_metrics,
            request,
            start_to_close_timeout=timedelta(seconds=15),
            # A call whose worker died is retried on another replica this soon.
            heartbeat_timeout=ACTIVITY_HEARTBEAT,
            # The caller's Nexus schedule-to-close timeout bounds the whole
            # operation; this bounds the workflow on its own if run directly.
            schedule_to_close_timeout=timedelta(minutes=2),
            retry_policy=BACKEND_RETRY,
        )


class TicketActivities:
    """Activities that create tickets, holding the worker's Jira and store settings."""

    def __init__(self, jira: JiraSettings, tickets: TicketSettings) -> None:
        self._jira = jira
        self._tickets = tickets

    @activity.defn(name="create_ticket")
    async def create_ticket(self, order: TicketOrder) -> Ticket:
        return await create_ticket(self._jira, self._tickets, order)


@workflow.defn(name="CreateTicketWorkflow", versioning_behavior=PINNED)
class CreateTicketWorkflow:
    """Creates one ticket exactly once.

    The idempotency key is this workflow's id, which the Nexus handler derives
    from the operation's request id: every retry of the activity, and every
    retry of the operation's start, carries the same key.
    """

    @workflow.run
    async def run(self, request: CreateTicketRequest) -> Ticket:
        order = TicketOrder(request=request, idempotency_key=workflow.info().workflow_id)
        return await workflow.execute_activity_method(
            TicketActivities.create_ticket,
            order,
            start_to_close_timeout=timedelta(seconds=15),
            heartbeat_timeout=ACTIVITY_HEARTBEAT,
            schedule_to_close_timeout=timedelta(minutes=5),
            retry_policy=BACKEND_RETRY,
        )
