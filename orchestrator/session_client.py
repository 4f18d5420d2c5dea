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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from meshkit.mesh import Mesh
from orchestrator.session_types import (
    DEFAULT_MODEL,
    ApprovalDecision,
    ChatReply,
    ChatRequest,
    PendingApproval,
    SessionConfig,
    SessionState,
    SessionStatus,
    ToolCall,
)

WORKFLOW_TYPE = "ChatSession"
SESSION_PREFIX = "chat-"
POLL_INTERVAL_S = 0.25


class ChatError(Exception):
    """Something the user should read; the command exits non-zero."""


Approver = Callable[[PendingApproval], Awaitable[ApprovalDecision]]
ProgressListener = Callable[[ToolCall], None]


def session_workflow_id(session: str) -> str:
    return session if session.startswith(SESSION_PREFIX) else f"{SESSION_PREFIX}{session}"


async def open_session(
    client: Client,
    mesh: Mesh,
    session: str,
    model: str = DEFAULT_MODEL,
    config: SessionConfig | None = None,
) -> WorkflowHandle:
    """Start the session's workflow, or attach to it when it is already running."""
    config = config or SessionConfig.for_mesh(mesh, model=model)
    workflow_id = session_workflow_id(session)
    try:
        await client.start_workflow(
            WORKFLOW_TYPE,
            SessionState(config=config),
            id=workflow_id,
            task_queue=mesh.orchestrator.task_queue,
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


async def list_sessions(client: Client) -> list[tuple[str, str]]:
    """Open sessions, newest first, as (workflow id, start time)."""
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
    found = [
        (w.id, w.start_time.isoformat(timespec="seconds"))
        async for w in client.list_workflows(query)
    ]
    return sorted(found, key=lambda row: row[1], reverse=True)


async def send(
    handle: WorkflowHandle,
    text: str,
    timeout_s: float,
    *,
    approver: Approver | None = None,
    on_tool: ProgressListener | None = None,
) -> ChatReply:
    """Send one message and wait for the reply.

    While the turn runs, its tool calls are reported to ``on_tool`` as they
    start and end, and calls waiting for approval are put to ``approver``.
    Without an approver, such calls wait until they are decided elsewhere or
    expire.
    """
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
    seen = _Seen(states={}, asked=set())
    watcher = asyncio.ensure_future(_watch(handle, seen, approver, on_tool))
    try:
        reply = await _until(deadline, result)
    except WorkflowUpdateFailedError as err:
        # A validator's rejection surfaces here, from the accepted-stage handle;
        # the turn itself never fails the Update (it answers with a reply).
        raise ChatError(f"message rejected: {_failure_message(err)}") from None
    finally:
        watcher.cancel()
    if on_tool:
        # Calls that started and ended between two polls are reported now.
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


async def _watch(
    handle: WorkflowHandle,
    seen: _Seen,
    approver: Approver | None,
    on_tool: ProgressListener | None,
) -> None:
    """Poll the status query while a turn runs: report progress, ask for approvals."""
    while True:
        try:
            current = await status(handle)
        except RPCError:
            await asyncio.sleep(POLL_INTERVAL_S)
            continue
        if on_tool:
            for call in current.tools:
                if seen.states.get(call.call_id) != call.state:
                    seen.states[call.call_id] = call.state
                    on_tool(call)
        if approver:
            for pending in current.pending_approvals:
                if pending.call_id in seen.asked:
                    continue
                seen.asked.add(pending.call_id)
                decision = await approver(pending)
                # Decided elsewhere, or expired meanwhile: the turn goes on either way.
                with contextlib.suppress(ChatError):
                    await decide(handle, decision.model_copy(update={"call_id": pending.call_id}))
        await asyncio.sleep(POLL_INTERVAL_S)


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
