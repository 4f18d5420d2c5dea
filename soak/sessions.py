"""Sessions that talk to the mesh the way a real client does, through the one
session client every door uses (``orchestrator.session_client``).

Each session sends a mix of turns, one at a time with a short pause: a local
tool, a sync Nexus call, a workflow-backed call, expenses (small ones run at
once, large ones wait for approval), tickets (always approved or denied),
interrupts of a turn waiting for approval, and undo. A message is sent with
an idempotency key of its own; when the send fails (the server restarting, no
reply in time), the client sends it again with the same key, as a real client
retrying after an error must, until the message's deadline.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from meshkit.mesh import Mesh
from orchestrator.contract import (
    ApprovalDecision,
    ChatReply,
    NoReply,
    NotAwaitingApproval,
    NothingToUndo,
    NoTurnInProgress,
    SessionError,
)
from orchestrator.session import Session
from orchestrator.session_client import SessionClient
from soak.config import SoakConfig

log = logging.getLogger("soak.sessions")
T = TypeVar("T")

KINDS: dict[str, int] = {
    "local": 3,
    "sync": 3,
    "workflow": 3,
    "expense": 1,
    "expense_approval": 2,
    "ticket": 2,
    "interrupt": 1,
    "undo": 1,
}
"""Each kind of turn and its weight in the mix."""
EXPECTED_TOOL = {
    "local": "calculator",
    "undo": "calculator",
    "sync": "get_ip",
    "workflow": "stock_price",
    "expense": "submit_expense",
    "expense_approval": "submit_expense",
    "ticket": "create_ticket",
    "interrupt": "create_ticket",
}
"""The tool each kind of turn asks for (the offline model routes the phrasing)."""
TICKERS = ("AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA")
RETRIED = (NoReply, RPCError, TimeoutError, OSError, WorkflowUpdateRPCTimeoutOrCancelledError)
"""Errors a client retries with the same key: nothing says the request was refused.
(An Update's long poll that times out on the client's side raises the last one.)"""


@dataclass
class Message:
    """One message a session sent, and what became of it."""

    session: str
    key: str
    kind: str
    text: str
    sent: float
    token: str = ""
    """Unique word in a side effect's description, to find its record by."""
    backend: str = ""
    """Where its side effect lands (``jira`` or ``expenses``), if it has one."""
    replied: float | None = None
    reply: ChatReply | None = None
    error: str = ""
    attempts: int = 0
    decision: str = ""
    """``approved``, ``denied``, ``interrupted`` or empty (nothing was asked)."""
    undone: bool = False


@dataclass
class SessionLog:
    id: str
    messages: list[Message] = field(default_factory=list)
    ended: bool = False


@dataclass
class Driver:
    """One of the N concurrent sessions: sends turns until told to stop,
    opening a new session every ``turns_per_session`` turns."""

    client: Client
    mesh: Mesh
    config: SoakConfig
    slot: int
    run: str
    rng: random.Random
    stop: asyncio.Event
    sessions: list[SessionLog] = field(default_factory=list)

    async def run_forever(self) -> None:
        opened = 0
        while not self.stop.is_set():
            session_id = f"soak-{self.run}-{self.slot}-{opened}"
            opened += 1
            session = await retry(
                partial(SessionClient(self.client, self.mesh).open, session_id, model="offline"),
                time.monotonic() + self.config.turn_deadline_s,
            )
            record = SessionLog(session.id)
            self.sessions.append(record)
            for _ in range(self.config.turns_per_session):
                if self.stop.is_set():
                    break
                await self.turn(session, record)
                low, high = self.config.think_s
                await asyncio.sleep(self.rng.uniform(low, high))
            try:
                await retry(partial(session.end, key=f"end-{session.id}"), _deadline(60))
                record.ended = True
            except Exception as err:  # reported by the stuck check, not a crash
                log.warning("session %s did not end: %s", session.id, err)

    def _kind(self) -> str:
        return self.rng.choices(list(KINDS), weights=list(KINDS.values()))[0]

    async def turn(self, session: Session, record: SessionLog) -> None:
        """Send one message, recorded before it is sent: a message whose driver
        is stopped before its reply (the grace period ran out) counts as lost."""
        kind = self._kind()
        token = f"soak{uuid.uuid4().hex[:10]}"
        n = len(record.messages) + 1
        amount = self.rng.randint(120, 900)
        texts = {
            "local": f"What is {self.rng.randint(2, 999)} * {self.rng.randint(2, 99)}?",
            "undo": f"What is {self.rng.randint(2, 999)} + {self.rng.randint(2, 999)}?",
            "sync": "What is my IP address?",
            "workflow": f"What is the stock price of {self.rng.choice(TICKERS)}?",
            "expense": f"Submit an expense of {self.rng.randint(5, 99)} EUR for {token}",
            "expense_approval": f"Submit an expense of {amount} EUR for {token}",
            "ticket": f"Create a ticket in OPS: {token}",
            "interrupt": f"Create a ticket in OPS: {token}",
        }
        message = Message(record.id, f"{record.id}-m{n}-{token}", kind, texts[kind], 0.0)
        if kind in ("expense", "expense_approval", "ticket", "interrupt"):
            message.token = token
            message.backend = "jira" if kind in ("ticket", "interrupt") else "expenses"
        message.sent = time.monotonic()
        record.messages.append(message)
        sending = asyncio.create_task(self.deliver(session, message))
        if kind in ("expense_approval", "ticket", "interrupt"):
            await self.decide(session, message, sending)
        await sending
        if kind == "undo" and message.reply is not None:
            try:
                await retry(lambda: session.undo(key=f"undo-{message.key}"), _deadline(120))
                message.undone = True
            except NothingToUndo:
                pass
            except Exception as err:  # the undo's failure is a finding, not a crash
                log.warning("undo of %s failed: %s: %s", message.key, type(err).__name__, err)

    async def deliver(self, session: Session, message: Message) -> None:
        deadline = message.sent + self.config.turn_deadline_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                message.error = message.error or "no reply before the message's deadline"
                return
            message.attempts += 1
            try:
                message.reply = await session.send(
                    message.text, min(60.0, remaining), key=message.key
                )
                message.replied = time.monotonic()
                return
            except SessionError as err:
                message.error = f"{type(err).__name__}: {err}"[:300]
                if not isinstance(err, NoReply):
                    return  # a refusal: sending it again would be refused too
                await asyncio.sleep(1.0)
            except Exception as err:  # nothing says it was refused: the same key again
                message.error = f"{type(err).__name__}: {err}"[:300]
                log.info("message %s: %s; sending it again", message.key, message.error)
                await asyncio.sleep(1.0)

    async def decide(self, session: Session, message: Message, sending: asyncio.Task[None]) -> None:
        """Approve, deny or interrupt the message's call once it waits for approval."""
        while not sending.done():
            try:
                status = await session.status()
            except Exception:  # asked again in a moment
                status = None
            pending = status.pending_approvals if status else []
            if pending:
                call = pending[0]
                try:
                    if message.kind == "interrupt":
                        await retry(
                            lambda: session.interrupt(key=f"int-{message.key}"), _deadline(120)
                        )
                        message.decision = "interrupted"
                    else:
                        approve = self.rng.random() < self.config.approve_share
                        decision = ApprovalDecision(
                            call_id=call.call_id, approve=approve, by="soak"
                        )
                        await retry(
                            partial(session.decide, decision, key=f"decide-{message.key}"),
                            _deadline(120),
                        )
                        message.decision = "approved" if approve else "denied"
                except (NotAwaitingApproval, NoTurnInProgress) as err:
                    message.error = f"decision refused: {err}"
                except Exception as err:  # the turn's outcome tells what happened
                    message.error = f"decision failed: {type(err).__name__}: {err}"[:300]
                return
            await asyncio.wait({sending}, timeout=0.5)


def _deadline(seconds: float) -> float:
    return time.monotonic() + seconds


async def retry(call: Callable[[], Awaitable[T]], deadline: float) -> T:
    """``call()`` again (the same request, the same key) after each error a
    client retries, until ``deadline``; the last error then."""
    while True:
        try:
            return await call()
        except RETRIED:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


def touched(message: Message) -> set[str]:
    """The teams whose tools answered this message's turn (ok)."""
    reply = message.reply
    if reply is None:
        return set()
    return {call.location for call in reply.tools if call.ok and call.location != "local"}


def tools_ok(message: Message) -> set[str]:
    reply = message.reply
    return {call.name for call in reply.tools if call.ok} if reply else set()


def summary(drivers: list[Driver]) -> dict[str, Any]:
    logs = [s for d in drivers for s in d.sessions]
    messages = [m for s in logs for m in s.messages]
    return {"sessions": len(logs), "messages": len(messages)}
