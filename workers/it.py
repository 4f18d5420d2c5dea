"""Worker of the IT team's namespace: the ItService Nexus handler and its workflows.

Run: ``python -m workers.it``. Jira comes from ``JIRA_URL``/``JIRA_EMAIL``/
``JIRA_API_TOKEN`` (demo data when unset); see README.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from services.it.handler import ItServiceHandler
from services.it.jira import JiraSettings
from services.it.tickets import TicketSettings
from services.it.workflows import (
    CreateTicketWorkflow,
    JiraActivities,
    JiraMetricsWorkflow,
    TicketActivities,
)
from workers._run import cli_main, configure_logging, run_worker
from workers.mesh import Mesh, connect, load_mesh

TEAM = "it"


async def main(
    mesh: Mesh,
    jira: JiraSettings,
    tickets: TicketSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    team = mesh.team(TEAM)
    client = await connect(
        mesh, team, data_converter=pydantic_data_converter, require_namespace=True
    )
    activities = JiraActivities(jira)
    ticket_activities = TicketActivities(jira, tickets or TicketSettings())
    worker = Worker(
        client,
        task_queue=team.task_queue,
        nexus_service_handlers=[ItServiceHandler(team.task_queue)],
        workflows=[JiraMetricsWorkflow, CreateTicketWorkflow],
        activities=[activities.fetch_jira_metrics, ticket_activities.create_ticket],
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
    await run_worker(worker, TEAM, stop)


if __name__ == "__main__":
    configure_logging()
    cli_main("it", main(load_mesh(), JiraSettings(), TicketSettings()))
