"""The IT team's Nexus contract.

Callers import only this module: it holds the operation inputs and outputs and
the service definition, never handler or worker code. Each input model's
docstring and field descriptions become the agent's view of the tool.
"""

from __future__ import annotations

import nexusrpc
from pydantic import BaseModel, Field

from meshkit.toolkit.catalog import ToolCatalog
from meshkit.toolkit.hints import ToolHints
from meshkit.toolkit.policy import ApprovalPolicy, ToolPolicy


class JiraMetricsRequest(BaseModel):
    """Issue counts of a Jira project: open, in progress, done, and created in the last 7 days."""

    project: str = Field(
        description="Jira project key: 2-10 capital letters or digits starting with a letter, e.g. OPS."
    )


class JiraMetrics(BaseModel):
    project: str = Field(description="The project key.")
    total: int = Field(description="All issues in the project.")
    open: int = Field(description="Issues in the 'To Do' status category.")
    in_progress: int = Field(description="Issues in the 'In Progress' status category.")
    done: int = Field(description="Issues in the 'Done' status category.")
    created_last_7_days: int = Field(description="Issues created in the last 7 days.")
    source: str = Field(description="Where the figures come from: a Jira URL, or 'demo data'.")


class HostAddresses(BaseModel):
    """IP addresses and host name of the machine the IT team's worker runs on."""

    hostname: str = Field(description="Host name of the IT worker's machine.")
    addresses: list[str] = Field(description="IP addresses of that machine, IPv4 first.")
    primary: str = Field(description="The address used for outbound traffic.")


class CreateTicketRequest(BaseModel):
    """Create a Jira ticket (a task) in a project. Needs the user's approval."""

    project: str = Field(
        description="Jira project key, e.g. OPS; empty for the project this chat chose "
        "with set_project."
    )
    summary: str = Field(description="One-line title of the ticket, at most 200 characters.")
    description: str = Field(description="What the ticket is about; may be empty.")


class SetProjectRequest(BaseModel):
    """Choose the Jira project for this chat: later tickets that name no project go there."""

    project: str = Field(description="Jira project key, e.g. OPS.")


class ProjectChoice(BaseModel):
    project: str = Field(description="The project tickets of this chat now go to.")


class Ticket(BaseModel):
    key: str = Field(description="The ticket's key, e.g. OPS-123.")
    project: str = Field(description="The project key.")
    summary: str = Field(description="The ticket's title.")
    url: str | None = Field(default=None, description="Link to the ticket, when Jira has one.")
    source: str = Field(description="Where it was created: a Jira URL, or the local demo store.")


@nexusrpc.service(name="ItService")
class ItService:
    catalog: nexusrpc.Operation[None, ToolCatalog]
    jira_metrics: nexusrpc.Operation[JiraMetricsRequest, JiraMetrics]
    get_ip: nexusrpc.Operation[None, HostAddresses]
    create_ticket: nexusrpc.Operation[CreateTicketRequest, Ticket]
    set_project: nexusrpc.Operation[SetProjectRequest, ProjectChoice]


POLICIES: dict[str, ToolPolicy] = {
    "get_ip": ToolPolicy(timeout_s=20, read_only=True),
    # Counts issues: Jira's search, never a change.
    "jira_metrics": ToolPolicy(timeout_s=120, read_only=True),
    "create_ticket": ToolPolicy(
        approval=ApprovalPolicy(always=True, reason="Tickets notify people and cost time."),
        timeout_s=300,
    ),
    "set_project": ToolPolicy(timeout_s=20),
    # Tools of the MCP time server IT publishes (services/it/team.py); the
    # server itself says they only read.
    "get_current_time": ToolPolicy(timeout_s=30),
    "convert_time": ToolPolicy(timeout_s=30),
}
"""The IT team's rules per operation: approvals, timeouts, which tools only read.
The team's worker enforces the approvals itself; callers read them from the catalog."""

HINTS: dict[str, ToolHints] = {
    "jira_metrics": ToolHints(
        examples=[
            "Jira metrics for project {project}",
            "Jira metrics for {project}",
            "Jira status of {project}",
            "How many tickets does project {project} have?",
        ],
        reply=[
            "Jira project {project}: {total} issues, {open} open, {in_progress} in progress, "
            "{done} done; {created_last_7_days} created in the last 7 days (source: {source})"
        ],
    ),
    "get_ip": ToolHints(
        examples=["What is my IP address?", "What is the network address?"],
        reply=[
            "The IT worker's host {hostname} has IP address {primary} (all addresses: {addresses})"
        ],
    ),
    "create_ticket": ToolHints(
        examples=[
            "Create a ticket in {project}: {summary}",
            "Open a ticket in {project} about {summary}",
            "File a ticket in {project} saying {summary}",
            "Create a ticket: {summary}",
            "Open a ticket about {summary}",
        ],
        defaults={"description": "", "project": ""},
        reply=["Created ticket {key} in {project}: {summary} (source: {source})"],
    ),
    "set_project": ToolHints(
        examples=[
            "Use project {project} from now on",
            "Use project {project} for tickets",
            "Switch to project {project}",
        ],
        reply=["Tickets of this chat go to project {project} from now on"],
    ),
    "get_current_time": ToolHints(
        examples=[
            "What time is it in {timezone}?",
            "What is the time in {timezone}?",
            "Current time in {timezone}",
        ],
        reply=["It is {datetime} in {timezone} ({day_of_week})"],
    ),
    "convert_time": ToolHints(
        examples=[
            "Convert {time} from {source_timezone} to {target_timezone}",
            "What is {time} {source_timezone} time in {target_timezone}?",
        ],
    ),
}
"""How the offline model, which does not understand language, recognises a
request for each tool and words its answer; the catalog carries them."""
