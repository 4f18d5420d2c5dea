"""One open session, as every door drives it: messages and their events, approvals,
interrupt, undo, compact, end, status.

Each method is one Update or query of the session's workflow, named in
:mod:`orchestrator.contract`. Methods that change something take an optional
idempotency ``key``: it becomes the Update id, so the same request sent twice
(a retry after a lost connection, a repeated HTTP request) is one request, and
the repeat gets the first one's outcome. A refusal is one of the contract's
typed errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.contrib.workflow_streams import WorkflowStreamClient, WorkflowStreamItem
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from meshkit.observability.tracing import span, untraced
from orchestrator.contract import (
    COMPACT,
    DECIDE,
    END,
    EVENTS_TOPIC,
    HISTORY,
    INTERRUPT,
    LIMIT_TOOLS,
    MESSAGE_PROGRESS,
    MODEL_TOPIC,
    SEND_MESSAGE,
    STATUS,
    UNDO,
    ApprovalDecision,
    ChatReply,
    ChatRequest,
    MessageProgress,
    NoReply,
    SessionEnded,
    SessionError,
    SessionEvent,
    SessionStatus,
    Turn,
    error_from,
)
from orchestrator.session_watch import (
    Approver,
    EventListener,
    Listeners,
    ProgressListener,
    TextListener,
    watch,
)

FOLLOW_COOLDOWN = timedelta(milliseconds=10)
"""Pause between two polls of the session's stream once caught up. A poll is
an Update that waits in the workflow until there is something new, so this
bounds how soon a second event is seen after a first, not how often the
client asks while the session is quiet."""

T = TypeVar("T")


def update_id(kind: str, key: str | None) -> str:
    """The Update id of a request: its idempotency key, scoped by what it does, so
    one key reused for another kind of request is another request."""
    return f"{kind}-{key or uuid.uuid4()}"


class Session:
    """An open session: a handle that follows it across continue-as-new."""

    def __init__(self, client: Client, handle: WorkflowHandle[Any, Any]) -> None:
        self.client = client
        self.handle = handle
        self.allowed_tools: list[str] | None = None
        """The tools a limit set when the session was opened allows."""

    @property
    def id(self) -> str:
        return self.handle.id

    # --- messages -------------------------------------------------------------------------

    async def send(
        self,
        text: str,
        timeout_s: float = 600.0,
        *,
        key: str | None = None,
        approver: Approver | None = None,
        on_tool: ProgressListener | None = None,
        on_text: TextListener | None = None,
        on_event: EventListener | None = None,
    ) -> ChatReply:
        """Send one message and wait for the reply.

        While the turn runs, the client follows the turn's events (pushed by
        the workflow): tool calls are reported to ``on_tool`` as they start and
        end, the model's text to ``on_text`` as it is produced, every event to
        ``on_event``, and calls waiting for approval are put to ``approver``.
        Without an approver, such calls wait until they are decided elsewhere
        or expire. Without a ``key``, one is made for this call, and reused
        while the server is unreachable, so the message still runs once.
        """
        listeners = Listeners(approver, on_tool, on_text, on_event)
        attributes = {"mesh.session.id": self.id}
        with span("chat.send", kind=SpanKind.CLIENT, attributes=attributes) as traced:
            if not listeners.any:
                # Nothing to follow: one call that waits for the reply.
                deadline = asyncio.get_running_loop().time() + timeout_s
                message_id = update_id("message", key)

                async def complete() -> ChatReply:
                    done = await self._start(
                        text, message_id, deadline, WorkflowUpdateStage.COMPLETED
                    )
                    return await done.result()

                reply = await _settled(_until(deadline, complete))
                traced.set_attributes(
                    {"mesh.turn": reply.turn, "mesh.outcome": "ok" if reply.ok else "failed"}
                )
                return reply
            sent = await self.submit(text, key=key, timeout_s=timeout_s)
            # Following the stream costs two history events per poll: only when asked.
            # The watcher's polls are not part of the turn's trace.
            watcher = asyncio.get_running_loop().create_task(
                watch(sent, listeners) if listeners.any else asyncio.sleep(0), context=untraced()
            )
            try:
                reply = await sent.reply()
                # The reply event follows the last of the turn's events: let the
                # watcher report them all before it stops.
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(watcher, 2.0)
            finally:
                watcher.cancel()
            traced.set_attributes(
                {"mesh.turn": reply.turn, "mesh.outcome": "ok" if reply.ok else "failed"}
            )
        # Anything the stream did not deliver (it is best effort) is reported now.
        for call in reply.tools:
            listeners.report(call)
        return reply

    async def submit(self, text: str, *, key: str | None = None, timeout_s: float = 60.0) -> Sent:
        """Send a message and return once the session has accepted it.

        The same ``key`` sent again is the same message: it runs one turn, and
        the repeat follows that turn's events and gets its reply. A refused
        message raises (:class:`~orchestrator.contract.BadMessage`,
        :class:`~orchestrator.contract.SessionEnded`).
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        message_id = update_id("message", key)
        # Where the stream is before the message is sent. If the message's
        # turn has not started when its progress is asked below, the turn's
        # events all come after this offset; if it has (a repeat, or a quick
        # start), its progress says where they begin.
        before = await _until(deadline, self.offset)

        async def accept() -> tuple[WorkflowUpdateHandle[ChatReply], MessageProgress]:
            accepted = await self._start(text, message_id, deadline, WorkflowUpdateStage.ACCEPTED)
            # An accepted message is known to the session from the moment its
            # handler starts (in the task that accepted it); a rejected one
            # never is, and its handle already holds the rejection, which
            # result() raises.
            progress = await _until(deadline, lambda: self.progress(message_id))
            if progress is None:
                await accepted.result()
                raise SessionError(f"message {message_id} was not accepted")
            return accepted, progress

        accepted, progress = await _settled(_until(deadline, accept))
        after = before - 1 if progress.offset is None else progress.offset - 1
        return Sent(self, message_id, after, accepted, deadline)

    async def _start(
        self, text: str, message_id: str, deadline: float, stage: WorkflowUpdateStage
    ) -> WorkflowUpdateHandle[ChatReply]:
        # The same id on every attempt: while the server is unreachable the
        # Update is sent again, and Temporal deduplicates it.
        async def start() -> WorkflowUpdateHandle[ChatReply]:
            return await self.handle.start_update(
                SEND_MESSAGE,
                ChatRequest(text=text),
                id=message_id,
                wait_for_stage=stage,
                result_type=ChatReply,
            )

        try:
            return await _until(deadline, start)
        except RPCError as err:
            raise _rpc_error(self.id, err) from None

    async def progress(self, message_id: str) -> MessageProgress | None:
        """Where the turn of the message sent with this Update id is; None if unknown."""
        progress: MessageProgress | None = await self.handle.query(
            MESSAGE_PROGRESS,
            message_id,
            result_type=MessageProgress | None,  # type: ignore[arg-type]
        )
        return progress

    # --- the stream ---------------------------------------------------------------------

    async def offset(self) -> int:
        """The stream's next offset: what follows ``offset() - 1`` is new."""
        return await self.stream().get_offset()

    def stream(self) -> WorkflowStreamClient:
        """The session's event stream; it follows the session across continue-as-new."""
        return WorkflowStreamClient.create(self.client, self.id)

    async def follow(
        self, after: int, cooldown: timedelta = FOLLOW_COOLDOWN
    ) -> AsyncIterator[SessionEvent]:
        """The session's events with an offset above ``after``, as they happen.

        Never ends on its own while the session is open. ``text_delta`` events
        (published by the model activity, which knows no turn) carry the turn
        of the latest ``turn_started`` before them; a stream resumed in the
        middle of a turn takes it from the session's status.
        """
        turn = (await self.status()).turn if after >= 0 else -1
        async for item in self.stream().subscribe(
            [EVENTS_TOPIC, MODEL_TOPIC], from_offset=after + 1, poll_cooldown=cooldown
        ):
            event = decode(item)
            if event is None:
                continue
            if event.kind == "turn_started":
                turn = event.turn
            elif event.kind == "text_delta":
                event.turn = turn
            yield event

    # --- everything else ------------------------------------------------------------------

    async def decide(self, decision: ApprovalDecision, *, key: str | None = None) -> str:
        """Approve or deny a call waiting for approval."""
        return await self._update(DECIDE, key, decision)

    async def interrupt(self, *, key: str | None = None) -> str:
        return await self._update(INTERRUPT, key)

    async def undo(self, *, key: str | None = None) -> str:
        return await self._update(UNDO, key)

    async def compact(self, *, key: str | None = None) -> str:
        return await self._update(COMPACT, key)

    async def end(self, *, key: str | None = None) -> str:
        return await self._update(END, key)

    async def limit_tools(self, names: list[str], *, key: str | None = None) -> list[str]:
        """Limit the session to some teams and tools; returns the tools now allowed."""
        allowed: list[str] = await self._update(LIMIT_TOOLS, key, names, result_type=list[str])
        return allowed

    async def status(self) -> SessionStatus:
        return await self.handle.query(STATUS, result_type=SessionStatus)

    async def history(self) -> list[Turn]:
        return await self.handle.query(HISTORY, result_type=list[Turn])

    async def _update(
        self,
        name: str,
        key: str | None,
        *args: Any,
        result_type: type[Any] = str,
        timeout_s: float = 60.0,
    ) -> Any:
        # One id for every attempt, as for messages: a decision or an
        # interrupt sent again while a worker is replaced runs once.
        deadline = asyncio.get_running_loop().time() + timeout_s
        update = update_id(name, key)

        async def execute() -> Any:
            return await self.handle.execute_update(name, *args, id=update, result_type=result_type)

        try:
            return await _until(deadline, execute)
        except WorkflowUpdateFailedError as err:
            raise error_from(err.cause) from None
        except RPCError as err:
            raise _rpc_error(self.id, err) from None


@dataclass
class Sent:
    """A message the session accepted: its turn's events and its reply."""

    session: Session
    id: str
    after: int
    update: WorkflowUpdateHandle[ChatReply]
    deadline: float

    async def reply(self) -> ChatReply:
        """The turn's reply, however long the turn takes (until the deadline)."""
        handles = [self.update]

        async def result() -> ChatReply:
            # After a lost connection a new handle polls, pinned to the run
            # that accepted the Update (the session may have continued as new).
            first = handles[0]
            if len(handles) == 1:
                handles.append(first)
                return await _reply(first)
            return await _reply(
                self.session.handle.get_update_handle(
                    self.id, workflow_run_id=first.workflow_run_id, result_type=ChatReply
                )
            )

        return await _until(self.deadline, result)

    async def events(self) -> AsyncIterator[SessionEvent]:
        """The events of this message's turn, as they happen, ending with its reply.

        Events of turns queued before it are left out. Which turn is this
        message's is asked of the session (by the message's id) when a turn
        starts or replies before it is known.
        """
        mine: int | None = None
        async for event in self.session.follow(self.after):
            if mine is None and event.kind in ("turn_started", "reply"):
                progress = await self.session.progress(self.id)
                mine = progress.turn if progress else None
            if mine is None or event.turn < mine:
                continue
            if event.turn > mine:
                # Its own events are no longer retained: the reply stands in for them.
                reply = await self.reply()
                yield SessionEvent(
                    kind="reply",
                    turn=reply.turn,
                    text=reply.text,
                    ok=reply.ok,
                    interrupted=reply.interrupted,
                    usage=reply.usage,
                    unavailable=reply.unavailable,
                )
                return
            yield event
            if event.kind == "reply":
                return


def decode(item: WorkflowStreamItem[Any]) -> SessionEvent | None:
    """A stream item as a session event: the session's own events, and the
    model's text deltas (published by the model activity) as ``text_delta``."""
    data = item.data
    if item.topic == EVENTS_TOPIC:
        return SessionEvent.model_validate(data).model_copy(update={"offset": item.offset})
    if (
        item.topic == MODEL_TOPIC
        and isinstance(data, dict)
        and data.get("type") == "response.output_text.delta"
        and data.get("delta")
    ):
        return SessionEvent(kind="text_delta", turn=-1, delta=data["delta"], offset=item.offset)
    return None


async def _reply(update: WorkflowUpdateHandle[ChatReply]) -> ChatReply:
    try:
        return await update.result()
    except WorkflowUpdateFailedError as err:
        raise error_from(err.cause) from None


UNPROCESSED = "UnprocessedUpdate"
"""The type of the server's rejection of an Update that no worker processed:
the workflow task that carried it was lost (its worker died, the server
restarted) or completed before it. The Update never ran, so it is sent again
with its id."""


def _unprocessed(err: WorkflowUpdateFailedError) -> bool:
    cause = err.cause
    return isinstance(cause, ApplicationError) and cause.type == UNPROCESSED


async def _settled(outcome: Awaitable[T]) -> T:
    """``outcome``, with a refusal by the session as its typed error."""
    try:
        return await outcome
    except WorkflowUpdateFailedError as err:
        raise error_from(err.cause) from None


def _rpc_error(session: str, err: RPCError) -> BaseException:
    if err.status == RPCStatusCode.NOT_FOUND:
        return SessionEnded(f"session {session} has ended or does not exist")
    return err


_TRANSIENT = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    # The session's workflow task is failing or timing out (its worker died
    # mid-task, the server restarted): the server refuses Updates and queries
    # until a task succeeds, which a surviving replica does within seconds.
    RPCStatusCode.FAILED_PRECONDITION,
}
_NO_REPLY = (
    "no reply in time: is the orchestrator worker running, and the Temporal server "
    "reachable? (scripts/demo starts both)"
)


def _seen(attempt: asyncio.Future[Any]) -> None:
    if not attempt.cancelled():
        attempt.exception()


async def _until(deadline: float, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, retried while the server is unreachable, until ``deadline``."""
    loop = asyncio.get_running_loop()
    delay = 0.2
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise NoReply(_NO_REPLY)
        attempt = asyncio.ensure_future(call())
        # When the caller is cancelled mid-attempt, the SDK turns the attempt's
        # cancellation into an error nobody awaits: mark it seen, not "never retrieved".
        attempt.add_done_callback(_seen)
        try:
            return await asyncio.wait_for(attempt, remaining)
        except TimeoutError:
            raise NoReply(_NO_REPLY) from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            pass  # the server's long poll ended before the Update got there: ask again
        except WorkflowUpdateFailedError as err:
            if not _unprocessed(err):
                raise
        except RPCError as err:
            if err.status not in _TRANSIENT:
                raise
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        delay = min(delay * 2, 2.0)
