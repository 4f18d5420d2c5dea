"""The IT team's registration: what the generic team worker runs for it.

Jira comes from ``JIRA_URL``/``JIRA_EMAIL``/``JIRA_API_TOKEN`` (demo data when
unset), the ticket store from ``TICKETS_*``; see README. IT also publishes the
reference MCP time server (``mcp-server-time``) as its own tools, with no
contract of its own: its worker runs the server and lists its tools.
"""

from __future__ import annotations

from meshkit.toolkit import TeamRegistration
from meshkit.toolkit.mcp_servers import McpServer
from meshkit.toolkit.store import require_backend
from services.it.contract import HINTS, POLICIES
from services.it.handler import ItServiceHandler
from services.it.jira import JiraSettings
from services.it.projects import ProjectChoiceWorkflow
from services.it.tickets import TicketSettings
from services.it.timezones import zones_in
from services.it.workflows import (
    CreateTicketWorkflow,
    JiraActivities,
    JiraMetricsWorkflow,
    TicketActivities,
)

TIME_SERVER = McpServer(
    name="time",
    # UTC as the server's local zone: the worker's host zone means nothing to a user.
    stdio=["python", "-m", "mcp_server_time", "--local-timezone", "UTC"],
    adapt={
        "get_current_time": zones_in("timezone"),
        "convert_time": zones_in("source_timezone", "target_timezone"),
    },
)


def register(
    jira: JiraSettings | None = None, tickets: TicketSettings | None = None
) -> TeamRegistration:
    jira = jira or JiraSettings()
    require_backend(jira.url, "JIRA_URL", "IT's tickets")
    metrics = JiraActivities(jira)
    creation = TicketActivities(jira, tickets or TicketSettings())
    return TeamRegistration(
        handler=ItServiceHandler,
        policies=POLICIES,
        hints=HINTS,
        workflows=[JiraMetricsWorkflow, CreateTicketWorkflow, ProjectChoiceWorkflow],
        activities=[metrics.fetch_jira_metrics, creation.create_ticket],
        mcp_servers=[TIME_SERVER],
    )
