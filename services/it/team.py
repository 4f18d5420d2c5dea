"""The IT team's registration: what the generic team worker runs for it.

Jira comes from ``JIRA_URL``/``JIRA_EMAIL``/``JIRA_API_TOKEN`` (demo data when
unset), the ticket store from ``TICKETS_*``; see README.
"""

from __future__ import annotations

from meshkit.toolkit import TeamRegistration
from services.it.contract import HINTS, POLICIES
from services.it.handler import ItServiceHandler
from services.it.jira import JiraSettings
from services.it.tickets import TicketSettings
from services.it.workflows import (
    CreateTicketWorkflow,
    JiraActivities,
    JiraMetricsWorkflow,
    TicketActivities,
)


def register(
    jira: JiraSettings | None = None, tickets: TicketSettings | None = None
) -> TeamRegistration:
    jira = jira or JiraSettings()
    metrics = JiraActivities(jira)
    creation = TicketActivities(jira, tickets or TicketSettings())
    return TeamRegistration(
        handler=ItServiceHandler,
        policies=POLICIES,
        hints=HINTS,
        workflows=[JiraMetricsWorkflow, CreateTicketWorkflow],
        activities=[metrics.fetch_jira_metrics, creation.create_ticket],
    )
