"""Client side of a chat session: start or resume, send with live progress,
approve or deny tool calls, interrupt, list and end sessions.

Used by the terminal chat and by tests; everything goes through Temporal
(Updates, queries, visibility), so any number of terminals can talk to one
session, and a session outlives every client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

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
from workers.mesh import Mesh

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
    config = config or SessionConfig(endpoints=mesh.endpoints(), model=model)
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
    try:
        update = await asyncio.wait_for(
            handle.start_update(
                "send_message",
                ChatRequest(text=text),
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                result_type=ChatReply,
            ),
            timeout_s,
        )
    except TimeoutError:
        raise ChatError(_no_worker(timeout_s)) from None
    except WorkflowUpdateFailedError as err:
        raise ChatError(f"message rejected: {_failure_message(err)}") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ChatError(f"session {handle.id} has ended or does not exist") from None
        raise
    result = asyncio.ensure_future(update.result())
    seen = _Seen(states={}, asked=set())
    watcher = asyncio.ensure_future(_watch(handle, seen, approver, on_tool))
    try:
        done, _ = await asyncio.wait({result}, timeout=timeout_s)
        if not done:
            raise ChatError(_no_worker(timeout_s))
        reply = result.result()
    except WorkflowUpdateFailedError as err:
        raise ChatError(f"the turn failed: {_failure_message(err)}") from None
    finally:
        watcher.cancel()
        result.cancel()
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


def _no_worker(timeout_s: float) -> str:
    return (
        f"no reply within {timeout_s:.0f} s: is the orchestrator worker running? "
        "(scripts/demo starts it)"
    )


def _failure_message(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    return getattr(cause, "message", None) or str(cause) or str(err)
