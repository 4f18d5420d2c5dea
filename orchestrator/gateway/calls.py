"""What the MCP gateway asks of Temporal: one tool call, or every team's catalog.

The inputs and outputs of the gateway's short workflows
(:mod:`orchestrator.gateway.workflows`), and the workflow id of a call. A
call's id comes from its idempotency key, so a retried call is the same
workflow and runs the team's operation once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field

from meshkit.toolkit.catalog import ToolCatalog
from meshkit.toolkit.policy import ApprovalRecord
from orchestrator.contract import TeamRoute
from orchestrator.session_types import CatalogState

CALL_WORKFLOW = "McpToolCall"
CATALOGS_WORKFLOW = "McpCatalogs"
CALL_PREFIX = "mcp-call-"
CATALOGS_PREFIX = "mcp-catalogs-"


class GatewayCall(BaseModel):
    """One team operation called for an MCP client."""

    team: str
    route: TeamRoute
    operation: str
    arguments: dict[str, Any] | None = Field(
        description="The arguments as sent to the team; None for an operation without input."
    )
    timeout_s: float = Field(gt=0, description="The operation's schedule-to-close timeout.")
    user: str = Field(description="The MCP user the call runs for.")
    approval: ApprovalRecord | None = Field(
        default=None, description="The user's approval, when the team's policy asks for one."
    )


class CallOutcome(BaseModel):
    """The operation's result, or the team's reason for not giving one."""

    ok: bool
    result: Any = None
    error: str = Field(default="", description="The team's own words when not ok.")
    error_type: str | None = Field(
        default=None,
        description="The Nexus handler error type (BAD_REQUEST, UNAUTHORIZED, NOT_FOUND, ...) "
        "when the team's handler refused the call; None for other failures.",
    )


class CatalogRequest(BaseModel):
    teams: dict[str, TeamRoute]
    timeout_s: float = Field(default=3.0, gt=0, description="How long each team may take.")
    cached: dict[str, CatalogState] = Field(
        default_factory=dict,
        description="What the gateway last learned of each team's catalog: a team that "
        "only answers late is listed from it, as a session does (orchestrator.catalogs).",
    )


class GatewayCatalogs(BaseModel):
    """The catalogs of the teams that are listed, and why the others are not."""

    catalogs: dict[str, ToolCatalog] = Field(default_factory=dict)
    unavailable: dict[str, str] = Field(default_factory=dict)
    states: dict[str, CatalogState] = Field(
        default_factory=dict, description="Each team's catalog state, for the next request."
    )


def call_workflow_id(user: str, key: str) -> str:
    """The workflow of the call that ``user`` made with idempotency ``key``."""
    digest = hashlib.sha256(f"{user}\0{key}".encode()).hexdigest()[:32]
    return f"{CALL_PREFIX}{digest}"


def derived_key(connection: str, request_id: str | int, tool: str, arguments: Any) -> str:
    """The key of a call whose client sent none: the same request of the same
    connection (a transport's redelivery) is the same call; anything else is new."""
    text = json.dumps([connection, str(request_id), tool, arguments], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
