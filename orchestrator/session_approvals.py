"""A session's tool calls waiting for a person's decision, and the decisions.

A team's policy says which calls need approval (``meshkit.toolkit.policy``);
the session asks, publishes the request on its stream, and waits for the
``decide`` Update or the session's approval timeout. The team's door checks
the approval again on its side, so a session cannot skip this.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from meshkit.observability import metrics
    from meshkit.toolkit.policy import ApprovalPolicy
    from orchestrator.contract import (
        ApprovalDecision,
        BadDecision,
        NotAwaitingApproval,
        PendingApproval,
        ToolCall,
    )
    from orchestrator.tools import Approval

Publish = Callable[..., None]
"""Publishes a session event: ``publish(kind, **fields)``."""


class Approvals:
    def __init__(self, publish: Publish) -> None:
        self.pending: dict[str, PendingApproval] = {}
        self._decisions: dict[str, tuple[ApprovalDecision, datetime]] = {}
        self._publish = publish

    def check(self, decision: ApprovalDecision) -> None:
        """Raise the failure a ``decide`` Update gets for a decision that fits no call."""
        if not self.pending:
            raise NotAwaitingApproval("no tool call is waiting for approval").failure()
        if not decision.call_id and len(self.pending) > 1:
            raise BadDecision(
                "several calls are waiting: say which call_id you decide on"
            ).failure()
        if decision.call_id and decision.call_id not in self.pending:
            raise NotAwaitingApproval(
                f"no call {decision.call_id!r} is waiting for approval"
            ).failure()

    def decide(self, decision: ApprovalDecision) -> str:
        """Record a checked decision for its call; what the ``decide`` Update answers."""
        call_id = decision.call_id or next(iter(self.pending))
        self._decisions[call_id] = (
            decision.model_copy(update={"call_id": call_id}),
            workflow.now(),
        )
        pending = self.pending[call_id]
        self._publish(
            "approval_decided",
            call_id=call_id,
            name=pending.tool,
            location=pending.location,
            approve=decision.approve,
            by=decision.by,
        )
        return f"{pending.tool}: {'approved' if decision.approve else 'denied'}"

    async def wait(
        self,
        call: ToolCall,
        arguments: dict[str, Any],
        policy: ApprovalPolicy,
        expires_after: timedelta,
    ) -> Approval:
        """Ask for ``call``'s approval and wait for the decision, at most ``expires_after``."""
        timeout = expires_after
        pending = PendingApproval(
            call_id=call.call_id,
            tool=call.name,
            location=call.location,
            arguments=arguments,
            reason=policy.reason or "this tool's team requires approval",
            expires_at=workflow.now() + timeout,
        )
        self.pending[call.call_id] = pending
        self._publish(
            "approval_requested",
            call_id=call.call_id,
            name=call.name,
            location=call.location,
            arguments=arguments,
            reason=pending.reason,
            expires_at=pending.expires_at,
        )
        try:
            await workflow.wait_condition(lambda: call.call_id in self._decisions, timeout=timeout)
        except TimeoutError:
            metrics.approval(call.name, call.location, "expired")
            return Approval(
                "expired",
                f"the approval request expired after {timeout.total_seconds():.0f} s with no "
                "answer from the user; nothing was done",
            )
        finally:
            self.pending.pop(call.call_id, None)
        decision, decided_at = self._decisions.pop(call.call_id)
        metrics.approval(call.name, call.location, "approved" if decision.approve else "denied")
        if decision.approve:
            return Approval("approved", decision.note, decision.by, decided_at)
        note = f": {decision.note}" if decision.note else ""
        return Approval(
            "denied", f"the user denied this call{note}; nothing was done", decision.by, decided_at
        )
