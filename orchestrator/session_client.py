"""Client side of a chat session: start or resume, send with live progress,
approve or deny tool calls, interrupt, list and end sessions.

Used by the terminal chat and by tests; everything goes through Temporal
(Updates, queries, visibility), so any number of terminals can talk to one
session, and a session outlives every client.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.workflow_streams import WorkflowStreamClient, WorkflowStreamItem
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from meshkit.mesh import Mesh
from meshkit.observability.tracing import span, untraced
from orchestrator.session_types import (
    DEFAULT_MODEL,
    EVENTS_TOPIC,
    MODEL_TOPIC,
    ApprovalDecision,
    ChatReply,
    ChatRequest,
    PendingApproval,
    SessionConfig,
    SessionEvent,
    SessionState,
    SessionStatus,
    ToolCall,
)

OFFSET_QUERY = "__temporal_workflow_stream_offset"
WORKFLOW_TYPE = "ChatSession"
SESSION_PREFIX = "chat-"
FOLLOW_COOLDOWN = timedelta(milliseconds=10)
"""Pause between two polls of the session's stream once caught up. A poll is
an Update that waits in the workflow until there is something new, so this
bounds how soon a second event is seen after a first, not how often the
client asks while the session is quiet."""


class ChatError(Exception):
    """Something the user should read; the command exits non-zero."""


Approver = Callable[[PendingApproval], Awaitable[ApprovalDecision]]
ProgressListener = Callable[[ToolCall], None]
EventListener = Callable[[SessionEvent], None]
TextListener = Callable[[str], None]


def session_workflow_id(session: str) -> str:
    return session if session.startswith(SESSION_PREFIX) else f"{SESSION_PREFIX}{session}"


async def open_session(
    client: Client,
    mesh: Mesh,
    session: str,
    model: str = DEFAULT_MODEL,
    config: SessionConfig | None = None,
    owner: str = "",
) -> WorkflowHandle:
    """Start the session's workflow, or attach to it when it is already running.

    ``owner`` is the API user the session belongs to (kept in its memo, so the
    API can list a user's sessions and refuse everyone else's).
    """
    config = config or SessionConfig.for_mesh(mesh, model=model)
    workflow_id = session_workflow_id(session)
    try:
        await client.start_workflow(
            WORKFLOW_TYPE,
            SessionState(config=config, owner=owner),
            id=workflow_id,
            task_queue=mesh.orchestrator.task_queue,
            memo={"owner": owner} if owner else None,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # An ended session's id is never silently reused for a new, empty one.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        raise ChatError(f"session {workflow_id} has ended; start a new one") from None
    # A handle without a run id follows the session across continue-as-new.
    return client.get_workflow_handle(workflow_id)


async def attach(client: Client, session: str) -> WorkflowHandle:
    """A handle on a session that must exist and be open."""
    handle = client.get_workflow_handle(session_workflow_id(session))
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ChatError(f"no session {handle.id}") from None
        raise
    if description.status is None or description.status.name != "RUNNING":
        raise ChatError(f"session {handle.id} has ended")
    return handle


async def list_sessions(client: Client, owner: str | None = None) -> list[tuple[str, str]]:
    """Open sessions, newest first, as (workflow id, start time); only ``owner``'s if given."""
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
    found = [
        (w.id, w.start_time.isoformat(timespec="seconds"))
        async for w in client.list_workflows(query)
        if owner is None or (await w.memo()).get("owner") == owner
    ]
    return sorted(found, key=lambda row: row[1], reverse=True)


async def send(
    handle: WorkflowHandle,
    text: str,
    timeout_s: float,
    *,
    approver: Approver | None = None,
    on_tool: ProgressListener | None = None,
    on_text: TextListener | None = None,
    on_event: EventListener | None = None,
) -> ChatReply:
    """Send one message and wait for the reply.

    While the turn runs, the client follows the session's event stream
    (pushed by the workflow; nothing is polled on a timer): tool calls are
    reported to ``on_tool`` as they start and end, the model's text to
    ``on_text`` as it is produced, every event to ``on_event``, and calls
    waiting for approval are put to ``approver``. Without an approver, such
    calls wait until they are decided elsewhere or expire.
    """
    with span("chat.send", kind=SpanKind.CLIENT, attributes={"mesh.session.id": handle.id}) as sent:
        reply = await _send(handle, text, timeout_s, approver, on_tool, on_text, on_event)
        sent.set_attributes(
            {"mesh.turn": reply.turn, "mesh.outcome": "ok" if reply.ok else "failed"}
        )
        return reply


async def _send(
    handle: WorkflowHandle,
    text: str,
    timeout_s: float,
    approver: Approver | None,
    on_tool: ProgressListener | None,
    on_text: TextListener | None,
    on_event: EventListener | None,
) -> ChatReply:
    deadline = asyncio.get_running_loop().time() + timeout_s
    # One id per message: if the server is unreachable for a while (restart,
    # failover), the same Update is sent again and Temporal deduplicates it,
    # so a retry never runs the turn twice.
    update_id = str(uuid.uuid4())

    async def start() -> WorkflowUpdateHandle[ChatReply]:
        return await handle.start_update(
            "send_message",
            ChatRequest(text=text),
            id=update_id,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            result_type=ChatReply,
        )

    accepted: list[WorkflowUpdateHandle[ChatReply]] = []
    # Following the stream costs two history events per poll: only when asked.
    listening = any((approver, on_tool, on_text, on_event))
    # Where the stream is now: this turn's events come after it.
    start_offset = await _until(deadline, lambda: _offset(handle)) if listening else 0

    async def result() -> ChatReply:
        # The handle from the start knows a rejection already; after a lost
        # connection a new handle polls, pinned to the run that accepted the
        # Update (the session may have continued as new since).
        first = accepted[0]
        if len(accepted) == 1:
            accepted.append(first)
            return await first.result()
        return await handle.get_update_handle(
            update_id, workflow_run_id=first.workflow_run_id, result_type=ChatReply
        ).result()

    try:
        accepted.append(await _until(deadline, start))
    except WorkflowUpdateFailedError as err:
        raise ChatError(f"message rejected: {_failure_message(err)}") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ChatError(f"session {handle.id} has ended or does not exist") from None
        raise
    seen = _Seen(states={}, asked=set(), replied=set(), reply_seen=asyncio.Event())
    # The watcher's stream polls are not part of the turn's trace.
    watcher = asyncio.get_running_loop().create_task(
        _follow(handle, start_offset, seen, approver, on_tool, on_text, on_event)
        if listening
        else asyncio.sleep(0),
        context=untraced(),
    )
    try:
        reply = await _until(deadline, result)
        # The reply event follows the last of the turn's events: let the
        # watcher report them all before it stops.
        if listening:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(_replied(seen, reply.turn), 2.0)
    except WorkflowUpdateFailedError as err:
        # A validator's rejection surfaces here, from the accepted-stage handle;
        # the turn itself never fails the Update (it answers with a reply).
        raise ChatError(f"message rejected: {_failure_message(err)}") from None
    finally:
        watcher.cancel()
    if on_tool:
        # Anything the stream did not deliver (it is best effort) is reported now.
        for call in reply.tools:
            if seen.states.get(call.call_id) != call.state:
                on_tool(call)
    return reply


async def decide(handle: WorkflowHandle, decision: ApprovalDecision) -> str:
    try:
        return await handle.execute_update("decide", decision, result_type=str)
    except WorkflowUpdateFailedError as err:
        raise ChatError(_failure_message(err)) from None


async def limit_tools(handle: WorkflowHandle, names: list[str]) -> list[str]:
    """Limit the session to some teams and tools; returns the tools now allowed."""
    try:
        return await handle.execute_update("limit_tools", names, result_type=list[str])
    except WorkflowUpdateFailedError as err:
        raise ChatError(f"tool limit refused: {_failure_message(err)}") from None


async def session_update(handle: WorkflowHandle, name: str) -> str:
    """Run one of the session's argument-less Updates (``undo``, ``compact_now``)."""
    try:
        return await handle.execute_update(name, result_type=str)
    except WorkflowUpdateFailedError as err:
        raise ChatError(_failure_message(err)) from None


async def interrupt(handle: WorkflowHandle) -> str:
    try:
        return await handle.execute_update("interrupt", result_type=str)
    except WorkflowUpdateFailedError as err:
        raise ChatError(_failure_message(err)) from None


async def end(handle: WorkflowHandle) -> str:
    try:
        return await handle.execute_update("end_chat", result_type=str)
    except WorkflowUpdateFailedError as err:
        raise ChatError(_failure_message(err)) from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ChatError(f"session {handle.id} has already ended") from None
        raise


async def status(handle: WorkflowHandle) -> SessionStatus:
    return await handle.query("status", result_type=SessionStatus)


@dataclass
class _Seen:
    states: dict[str, str]
    asked: set[str]
    replied: set[int]
    reply_seen: asyncio.Event


async def _offset(handle: WorkflowHandle) -> int:
    return await handle.query(OFFSET_QUERY, result_type=int)


async def _replied(seen: _Seen, turn: int) -> None:
    while turn not in seen.replied:
        seen.reply_seen.clear()
        await seen.reply_seen.wait()


def stream_of(handle: WorkflowHandle) -> WorkflowStreamClient:
    """The session's event stream; it follows the session across continue-as-new."""
    return WorkflowStreamClient.create(handle._client, handle.id)


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


async def follow(
    handle: WorkflowHandle, after: int, cooldown: timedelta = FOLLOW_COOLDOWN
) -> AsyncIterator[SessionEvent]:
    """The session's events with an offset above ``after``, as they happen.

    Never ends on its own while the session is open. ``text_delta`` events
    (published by the model activity, which knows no turn) carry the turn of
    the latest ``turn_started`` before them; a stream resumed in the middle of
    a turn takes it from the session's status.
    """
    turn = (await status(handle)).turn if after >= 0 else -1
    async for item in stream_of(handle).subscribe(
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


async def _follow(
    handle: WorkflowHandle,
    start: int,
    seen: _Seen,
    approver: Approver | None,
    on_tool: ProgressListener | None,
    on_text: TextListener | None,
    on_event: EventListener | None,
) -> None:
    """Follow the turn's events: report progress, stream text, ask for approvals."""
    async for event in follow(handle, start - 1):
        if on_event:
            on_event(event)
        if event.kind in ("tool_started", "tool_finished") and event.call_id:
            call = ToolCall(
                name=event.name or "",
                location=event.location or "",
                call_id=event.call_id,
                arguments=str(event.arguments or ""),
                state=event.state or "running",  # type: ignore[arg-type]
                ok=bool(event.ok) if event.kind == "tool_finished" else True,
                duration_ms=event.duration_ms or 0.0,
                error=event.error,
            )
            if on_tool and seen.states.get(call.call_id) != call.state:
                seen.states[call.call_id] = call.state
                on_tool(call)
        elif event.kind == "text_delta" and on_text and event.delta:
            on_text(event.delta)
        elif event.kind == "approval_requested" and approver and event.call_id:
            if event.call_id in seen.asked:
                continue
            seen.asked.add(event.call_id)
            if on_tool:
                waiting = seen.states.get(event.call_id) != "awaiting_approval"
                seen.states[event.call_id] = "awaiting_approval"
                if waiting:
                    on_tool(
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
            decision = await approver(pending)
            # Decided elsewhere, or expired meanwhile: the turn goes on either way.
            with contextlib.suppress(ChatError):
                await decide(handle, decision.model_copy(update={"call_id": pending.call_id}))
        elif event.kind == "reply":
            seen.replied.add(event.turn)
            seen.reply_seen.set()


_TRANSIENT = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}
T = TypeVar("T")


async def _until(deadline: float, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, retried while the server is unreachable, until ``deadline``."""
    loop = asyncio.get_running_loop()
    delay = 0.2
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise ChatError(_NO_REPLY)
        try:
            return await asyncio.wait_for(call(), remaining)
        except TimeoutError:
            raise ChatError(_NO_REPLY) from None
        except RPCError as err:
            if err.status not in _TRANSIENT:
                raise
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        delay = min(delay * 2, 2.0)


_NO_REPLY = (
    "no reply in time: is the orchestrator worker running, and the Temporal server "
    "reachable? (scripts/demo starts both)"
)


def _failure_message(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    return getattr(cause, "message", None) or str(cause) or str(err)
