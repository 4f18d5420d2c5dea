"""Watching a message's turn for a door that shows it live: tool calls as they
start and end, the model's text as it is written, approvals put to the user."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from orchestrator.contract import (
    ApprovalDecision,
    PendingApproval,
    SessionError,
    SessionEvent,
    ToolCall,
)

Approver = Callable[[PendingApproval], Awaitable[ApprovalDecision]]


class Decides(Protocol):
    async def decide(self, decision: ApprovalDecision) -> str: ...


class Followed(Protocol):
    """What :func:`watch` needs of a sent message (``orchestrator.session.Sent``),
    named here so this module does not import the one that imports it."""

    @property
    def session(self) -> Decides: ...

    def events(self) -> AsyncIterator[SessionEvent]: ...


ProgressListener = Callable[[ToolCall], None]
EventListener = Callable[[SessionEvent], None]
TextListener = Callable[[str], None]


@dataclass
class Listeners:
    """What a door wants to hear of a turn while it runs."""

    approver: Approver | None = None
    on_tool: ProgressListener | None = None
    on_text: TextListener | None = None
    on_event: EventListener | None = None
    states: dict[str, str] = field(default_factory=dict)
    """Each call's last state reported to ``on_tool``."""
    asked: set[str] = field(default_factory=set)

    @property
    def any(self) -> bool:
        return any((self.approver, self.on_tool, self.on_text, self.on_event))

    def report(self, call: ToolCall) -> None:
        if self.on_tool and self.states.get(call.call_id) != call.state:
            self.states[call.call_id] = call.state
            self.on_tool(call)


async def watch(sent: Followed, listeners: Listeners) -> None:
    """Follow the turn's events to its reply: report progress, stream text, ask for approvals."""
    async for event in sent.events():
        if listeners.on_event:
            listeners.on_event(event)
        if event.kind in ("tool_started", "tool_finished") and event.call_id:
            listeners.report(
                ToolCall(
                    name=event.name or "",
                    location=event.location or "",
                    call_id=event.call_id,
                    arguments=str(event.arguments or ""),
                    state=event.state or "running",  # type: ignore[arg-type]
                    ok=bool(event.ok) if event.kind == "tool_finished" else True,
                    duration_ms=event.duration_ms or 0.0,
                    error=event.error,
                )
            )
        elif event.kind == "text_delta" and listeners.on_text and event.delta:
            listeners.on_text(event.delta)
        elif event.kind == "approval_requested" and listeners.approver and event.call_id:
            if event.call_id in listeners.asked:
                continue
            listeners.asked.add(event.call_id)
            listeners.report(
                ToolCall(
                    name=event.name or "",
                    location=event.location or "",
                    call_id=event.call_id,
                    state="awaiting_approval",
                )
            )
            pending = PendingApproval(
                call_id=event.call_id,
                tool=event.name or "",
                location=event.location or "",
                arguments=event.arguments or {},
                reason=event.reason or "",
                expires_at=event.expires_at or datetime.now(UTC),
            )
            decision = await listeners.approver(pending)
            # Decided elsewhere, or expired meanwhile: the turn goes on either way.
            with contextlib.suppress(SessionError):
                await sent.session.decide(decision.model_copy(update={"call_id": pending.call_id}))
