"""What a team declares beside its contract: which calls need a person's
approval, how long a call may take, and the approval record a caller must
present.

The team's worker enforces the policy at its own door (:mod:`meshkit.toolkit.door`);
the orchestrator reads the same policy from the team's catalog to ask the
user first. Neither side trusts the other to have done it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

APPROVAL_HEADER = "x-mesh-approval"
"""Nexus header carrying an :class:`ApprovalRecord` as JSON."""


class ApprovalPolicy(BaseModel):
    """When a call of one operation needs approval."""

    model_config = ConfigDict(frozen=True)

    always: bool = Field(default=False, description="Every call needs approval.")
    above: float | None = Field(
        default=None, description="Calls whose `field` exceeds this value need approval."
    )
    field: str | None = Field(default=None, description="Input field compared with `above`.")
    reason: str = Field(default="", description="Shown to the user with the request.")

    def requires_approval(self, arguments: dict[str, Any]) -> bool:
        if self.always:
            return True
        if self.above is None or self.field is None:
            return False
        value = arguments.get(self.field)
        try:
            return value is None or float(value) > self.above
        except (TypeError, ValueError):
            # A value we cannot compare is not waved through.
            return True


class ToolPolicy(BaseModel):
    """A team's rules for one of its operations."""

    model_config = ConfigDict(frozen=True)

    approval: ApprovalPolicy | None = Field(
        default=None, description="When a call needs a person's approval; None means never."
    )
    timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="How long a caller should wait for the whole operation (its Nexus "
        "schedule-to-close timeout).",
    )
    read_only: bool | None = Field(
        default=None,
        description="True when the tool only reads (it changes nothing anywhere), so "
        "clients may call it unasked; None leaves it to the tool's MCP server, if it says.",
    )

    @model_validator(mode="after")
    def _reads_need_no_approval(self) -> ToolPolicy:
        # A client treats a read-only tool as safe to call unasked; one that
        # needs a person's approval is not that.
        if self.read_only and self.approval is not None:
            raise ValueError("a read-only tool cannot need approval: drop one of the two")
        return self


DEFAULT_POLICY = ToolPolicy()


class ApprovalRecord(BaseModel):
    """Who approved which tool call, and when: the caller sends it with the call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tool: str = Field(description="Operation name the approval is for.")
    call_id: str = Field(description="The agent's tool call id.")
    approved_by: str = Field(min_length=1, description="Who approved it.")
    approved_at: datetime = Field(description="When it was approved.")
    arguments_sha256: str = Field(
        description="Digest of the arguments the person saw and approved (see arguments_digest)."
    )
    session: str = Field(default="", max_length=300, description="Chat session of the call.")
    note: str = Field(default="", max_length=500, description="The approver's note, if any.")

    def header(self) -> dict[str, str]:
        return {APPROVAL_HEADER: self.model_dump_json()}


def arguments_digest(arguments: dict[str, Any]) -> str:
    """A digest of tool arguments that both sides compute alike.

    The caller has the model's JSON; the team has it parsed into its input
    model. Numbers are compared as floats (the model may write 150 where the
    team's field is a float) and keys sorted. The record carries the digest,
    not the arguments: Nexus headers are small (the server refuses a few KB).
    """
    text = json.dumps(_normalized(arguments), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _normalized(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _normalized(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalized(v) for v in value]
    return str(value)
