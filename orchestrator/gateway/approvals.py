"""Asking an MCP user to approve a call that the team's policy guards.

The gateway asks through MCP elicitation, showing the tool, its arguments and
the team's reason. Handshake-era clients are sent an ``elicitation/create``
request during the call; current ones get the request inside an
``InputRequiredResult`` and send the call again with the answer. The team's
door checks the resulting :class:`~meshkit.toolkit.policy.ApprovalRecord`
itself: the gateway only carries it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from meshkit.toolkit.policy import ApprovalRecord, arguments_digest
from orchestrator.gateway.listing import ListedTool

INPUT_KEY = "approval"
"""Key of the approval request in an ``InputRequiredResult``."""

_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "note": {"type": "string", "description": "A note for the team's record (optional)."}
    },
    "required": [],
}


@dataclass(frozen=True)
class Answer:
    """The user's answer: an approval to send with the call, or why there is none."""

    approval: ApprovalRecord | None = None
    refusal: str = ""
    ask: types.InputRequiredResult | None = None


def request_text(tool: ListedTool, arguments: dict[str, Any]) -> str:
    policy = tool.entry.approval
    reason = f" The team says: {policy.reason}" if policy and policy.reason else ""
    shown = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
    return (
        f"The {tool.team} team asks for a person's approval before {tool.entry.name} runs."
        f"{reason}\nArguments: {shown}\nAccept to run it, decline to run nothing."
    )


async def ask(
    ctx: ServerRequestContext[Any],
    params: types.CallToolRequestParams,
    tool: ListedTool,
    arguments: dict[str, Any],
    *,
    user: str,
    key: str,
    approve_at: str,
) -> Answer:
    """Ask ``user`` to approve the call, by whichever means the client has."""
    message = request_text(tool, arguments)
    capabilities = ctx.session.client_capabilities
    can_elicit = capabilities is not None and capabilities.elicitation is not None
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        answer = (params.input_responses or {}).get(INPUT_KEY)
        if isinstance(answer, types.ElicitResult):
            return _decided(answer, tool, arguments, user=user, key=key)
        if can_elicit:
            elicit = types.ElicitRequest(
                params=types.ElicitRequestFormParams(message=message, requested_schema=_FORM)
            )
            return Answer(ask=types.InputRequiredResult(input_requests={INPUT_KEY: elicit}))
    elif can_elicit and ctx.session.can_send_request:
        result = await ctx.session.elicit_form(message, _FORM, related_request_id=ctx.request_id)
        return _decided(result, tool, arguments, user=user, key=key)
    why = f" ({tool.entry.approval.reason})" if tool.entry.approval else ""
    return Answer(
        refusal=f"{tool.name} needs a person's approval{why}, and this MCP client cannot "
        f"ask you for it (it does not support elicitation); nothing was done. Ask for it in "
        f"{approve_at}, where you approve the team's request, or use an MCP client that "
        "supports elicitation."
    )


def _decided(
    result: types.ElicitResult,
    tool: ListedTool,
    arguments: dict[str, Any],
    *,
    user: str,
    key: str,
) -> Answer:
    if result.action != "accept":
        verb = "declined" if result.action == "decline" else "dismissed"
        return Answer(refusal=f"{user} {verb} {tool.name}; nothing was done")
    note = (result.content or {}).get("note")
    return Answer(
        approval=ApprovalRecord(
            tool=tool.entry.name,
            call_id=key[:200],
            approved_by=user,
            approved_at=datetime.now(UTC),
            arguments_sha256=arguments_digest(arguments),
            session=f"mcp:{user}"[:300],
            note=str(note)[:500] if note else "",
        )
    )
