"""Approval policies: a team declares, next to its contract, which of its
operations need a person's approval before they act.

The orchestrator reads the policy from the contract module and pauses the
agent's turn until the user approves or denies, or the request expires. The
policy travels with the contract, so the team that owns a tool decides it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


NEVER = ApprovalPolicy()
ALWAYS = ApprovalPolicy(always=True)
