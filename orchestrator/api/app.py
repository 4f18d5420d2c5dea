"""The HTTP API and the web chat: sessions, messages with their events as a
stream, approvals, interrupts, undo, compact.

The API keeps no state of its own: every request becomes a Temporal call
(start, Update, query, visibility) or a subscription to the session's event
stream, so any number of API processes serve the same sessions. A session
belongs to the user who created it (recorded in its state and memo);
everyone else gets 404 for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from meshkit.mesh import Mesh, connect
from meshkit.observability.tracing import current_span
from orchestrator import session_client as sessions
from orchestrator.api.auth import Users
from orchestrator.session_client import ChatError
from orchestrator.session_types import (
    ApprovalDecision,
    ChatReply,
    ChatRequest,
    SessionConfig,
    SessionEvent,
    SessionStatus,
    Turn,
)

STATIC = Path(__file__).parent / "static"
SESSION_ID = r"^chat-[A-Za-z0-9._-]{1,80}$"
MAX_MESSAGE_CHARS = SessionConfig.model_fields["max_message_chars"].default
KEEPALIVE_S = 15.0


# --- bodies ------------------------------------------------------------------------------


class Problem(BaseModel):
    detail: str = Field(description="What went wrong, for a person to read.")


# What a session accepts, stated in the schema so that clients (and fuzzers)
# know it: no control characters or bidirectional overrides, something besides
# spaces, and tool names of letters, digits, '_' and '-'.
_CONTROLS = "".join(
    chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0),
                     *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)  # fmt: skip
MESSAGE_PATTERN = f"^[^{_CONTROLS}]*[^\\s{_CONTROLS}][^{_CONTROLS}]*$"
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ToolName = Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]


class NewSession(BaseModel):
    tools: list[ToolName] | None = Field(
        default=None,
        max_length=50,
        description="Limit the session to these teams and tools ('local' for the "
        "orchestrator's own); unset means every tool.",
    )
    stream: bool | None = Field(
        default=None,
        description="Stream the model's text as text_delta events: true even when the model "
        "answers in one piece, false never (the cheapest turns); unset lets the orchestrator "
        "worker decide (models that stream natively do).",
    )


class SessionCreated(BaseModel):
    id: str
    temporal_ui: str
    tools: list[str] | None = Field(default=None, description="The tools the limit allows.")


class SessionSummary(BaseModel):
    id: str
    started: str


class SessionView(BaseModel):
    id: str
    status: SessionStatus
    history: list[Turn]
    temporal_ui: str
    offset: int = Field(description="The stream's next offset: follow from offset - 1.")


class Message(BaseModel):
    text: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        pattern=MESSAGE_PATTERN,
        description="The message: plain text (no control characters), not only spaces.",
    )


class Decision(BaseModel):
    approve: bool
    note: str = Field(default="", max_length=1000)


class Result(BaseModel):
    result: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not valid JSON."},
    401: {"model": Problem, "description": "Missing or wrong bearer token."},
    404: {"model": Problem, "description": "No such open session of yours."},
    422: {"model": Problem, "description": "The request's parameters or body are invalid."},
}
STREAM = {
    "description": "Server-sent events: `id: <offset>`, `event: <kind>`, `data: <SessionEvent JSON>`.",
    "content": {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "The event's offset."},
                    "event": {"type": "string", "description": "The event's kind."},
                    "data": {"type": "string", "description": "The SessionEvent as JSON."},
                },
            }
        }
    },
}


# --- who is calling -----------------------------------------------------------------------

bearer = HTTPBearer(auto_error=False)


def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    users: Users = request.app.state.users
    name = users.user_for(credentials.credentials if credentials else None)
    if name is None:
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return name


User = Annotated[str, Depends(current_user)]
Session = Annotated[str, PathParam(description="Session id, e.g. chat-1a2b3c.")]


# --- the app -------------------------------------------------------------------------------


def create_app(mesh: Mesh, users: Users, temporal_ui: str = "http://127.0.0.1:8233") -> FastAPI:
    """The API for ``mesh``'s orchestrator namespace, for the configured ``users``."""
    state: dict[str, Client] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["client"] = await connect(
            mesh, mesh.orchestrator, data_converter=pydantic_data_converter
        )
        yield

    app = FastAPI(
        title="Nexus tool mesh",
        description="Chat with the mesh's agent: sessions, messages streamed as server-sent "
        "events, approvals, interrupts. Every /api route needs `Authorization: Bearer <token>`.",
        version="1",
        lifespan=lifespan,
        # FastAPI traces each request itself when the process traces
        # (meshkit.observability); one span per request, not per step of it.
        telemetry={"operation_spans": False},
    )
    app.state.users = users

    def ui_link(session_id: str) -> str:
        namespace = quote(mesh.orchestrator.namespace)
        return f"{temporal_ui.rstrip('/')}/namespaces/{namespace}/workflows/{quote(session_id)}"

    async def owned(session_id: str, who: str) -> WorkflowHandle:
        """The session's handle, if it exists and belongs to ``who``; 404 otherwise."""
        if not re.match(SESSION_ID, session_id):
            raise HTTPException(404, f"no session {session_id}")
        handle = state["client"].get_workflow_handle(session_id)
        try:
            described = await handle.describe()
            owner = await described.memo_value("owner", default=None)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise HTTPException(404, f"no session {session_id}") from None
            raise
        # An ended session is gone from the API (its history stays in Temporal
        # for the namespace's retention).
        if owner != who or described.status != WorkflowExecutionStatus.RUNNING:
            raise HTTPException(404, f"no session {session_id}")
        return handle

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        # One readable line, the same shape as every other error of this API.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {_readable(e)}"
            for e in err.errors()
        )
        return JSONResponse({"detail": problems or "invalid request"}, 422)

    @app.exception_handler(RPCError)
    async def temporal_error(request: Request, err: RPCError) -> JSONResponse:
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return JSONResponse({"detail": "Temporal is unreachable; try again"}, 503)
        return JSONResponse({"detail": f"Temporal refused the request: {err.message}"}, 502)

    @app.post("/api/sessions", status_code=201, responses=ERRORS)
    async def create_session(body: NewSession, who: User) -> SessionCreated:
        """Start a session; it belongs to the caller."""
        session_id = f"chat-{uuid.uuid4().hex[:12]}"
        client = state["client"]
        config = SessionConfig.for_mesh(mesh, stream=body.stream)
        handle = await sessions.open_session(client, mesh, session_id, config=config, owner=who)
        allowed = None
        if body.tools is not None:
            try:
                allowed = await sessions.limit_tools(handle, body.tools)
            except (ChatError, ValueError) as err:
                with contextlib.suppress(ChatError):
                    await sessions.end(handle)
                raise HTTPException(422, str(err)) from None
        return SessionCreated(id=handle.id, temporal_ui=ui_link(handle.id), tools=allowed)

    @app.get("/api/sessions", responses=ERRORS)
    async def list_sessions(who: User) -> list[SessionSummary]:
        """The caller's open sessions, newest first."""
        found = await sessions.list_sessions(state["client"], owner=who)
        return [SessionSummary(id=sid, started=started) for sid, started in found]

    @app.get("/api/sessions/{session_id}", responses=ERRORS)
    async def get_session(session_id: Session, who: User) -> SessionView:
        """The session's status and recent turns."""
        handle = await owned(session_id, who)
        # The offset first: events after it may repeat what the history shows,
        # never miss what it does not.
        offset = await handle.query(sessions.OFFSET_QUERY, result_type=int)
        status = await sessions.status(handle)
        history = await handle.query("history", result_type=list[Turn])
        return SessionView(
            id=session_id,
            status=status,
            history=history,
            temporal_ui=ui_link(session_id),
            offset=offset,
        )

    @app.post(
        "/api/sessions/{session_id}/messages",
        response_class=StreamingResponse,
        responses={200: STREAM, **ERRORS, 409: {"model": Problem}},
    )
    async def send_message(session_id: Session, body: Message, who: User) -> StreamingResponse:
        """Send a message; the answer is the turn's events as they happen, ending with
        the reply. A message sent while a turn runs waits for it (turns run in order)."""
        if not body.text.strip():
            raise HTTPException(422, "the message is empty")
        handle = await owned(session_id, who)
        # FastAPI's span of this request is the root of the turn's trace.
        current_span().set_attribute("mesh.session.id", handle.id)
        after = await handle.query(sessions.OFFSET_QUERY, result_type=int) - 1
        try:
            update = await handle.start_update(
                "send_message",
                ChatRequest(text=body.text),
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                result_type=ChatReply,
            )
            # A validator's rejection comes back with the accepted-stage
            # response: the handle already knows the outcome, and result()
            # raises at once without asking the server again.
            if getattr(update, "_known_outcome", None) is not None:
                await update.result()
        except WorkflowUpdateFailedError as err:
            message = str(getattr(err.cause, "message", None) or err.cause)
            raise HTTPException(409 if "ended" in message else 422, message) from None
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise HTTPException(409, "this session has ended; start a new one") from None
            raise
        result = asyncio.ensure_future(update.result())
        # A client that leaves early cancels the wait; nothing is left unread.
        result.add_done_callback(lambda task: task.cancelled() or task.exception())

        async def turn_events() -> AsyncIterator[str]:
            try:
                async for event in sessions.follow(handle, after):
                    yield sse(event)
                    if (
                        event.kind == "reply"
                        and result.done()
                        and event.turn == result.result().turn
                    ):
                        return
                    if event.kind == "reply" and not result.done():
                        # Our reply comes after an earlier queued turn's, or is this one:
                        # the Update's result says which.
                        with contextlib.suppress(TimeoutError):
                            reply = await asyncio.wait_for(asyncio.shield(result), 2)
                            if reply.turn == event.turn:
                                return
            finally:
                result.cancel()

        return StreamingResponse(turn_events(), media_type="text/event-stream", headers=NO_BUFFER)

    @app.get(
        "/api/sessions/{session_id}/events",
        response_class=StreamingResponse,
        responses={200: STREAM, **ERRORS},
    )
    async def events(
        session_id: Session,
        who: User,
        after: Annotated[int, Query(ge=-1, le=2**53, description="Last offset seen.")] = -1,
        follow: Annotated[bool, Query(description="Keep the stream open for new events.")] = True,
        last_event_id: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> StreamingResponse:
        """The session's events after ``after`` (or the ``Last-Event-ID`` header): resume a
        stream without missing or repeating an event."""
        handle = await owned(session_id, who)
        if last_event_id and last_event_id.isdigit():
            after = max(after, int(last_event_id))
        if not follow:
            end = await handle.query(sessions.OFFSET_QUERY, result_type=int)

            async def retained() -> AsyncIterator[str]:
                if end <= after + 1:
                    return
                async for event in sessions.follow(handle, after):
                    yield sse(event)
                    if event.offset >= end - 1:
                        return

            return StreamingResponse(retained(), media_type="text/event-stream", headers=NO_BUFFER)
        return StreamingResponse(
            with_keepalive(sessions.follow(handle, after)),
            media_type="text/event-stream",
            headers=NO_BUFFER,
        )

    @app.post(
        "/api/sessions/{session_id}/approvals/{call_id}",
        responses={**ERRORS, 409: {"model": Problem}},
    )
    async def decide(
        session_id: Session,
        call_id: Annotated[str, PathParam(max_length=200)],
        body: Decision,
        who: User,
    ) -> Result:
        """Approve or deny a tool call that waits for approval."""
        handle = await owned(session_id, who)
        decision = ApprovalDecision(call_id=call_id, approve=body.approve, note=body.note, by=who)
        return Result(result=await _update(handle, "decide", decision))

    @app.post("/api/sessions/{session_id}/interrupt", responses={**ERRORS, 409: {"model": Problem}})
    async def interrupt(session_id: Session, who: User) -> Result:
        """Interrupt the turn in flight."""
        return Result(result=await _update(await owned(session_id, who), "interrupt"))

    @app.post("/api/sessions/{session_id}/undo", responses={**ERRORS, 409: {"model": Problem}})
    async def undo(session_id: Session, who: User) -> Result:
        """Drop the last turn from what the model sees next."""
        return Result(result=await _update(await owned(session_id, who), "undo"))

    @app.post("/api/sessions/{session_id}/compact", responses={**ERRORS, 409: {"model": Problem}})
    async def compact(session_id: Session, who: User) -> Result:
        """Compact the conversation now: the model sees only the last turn, with a note."""
        return Result(result=await _update(await owned(session_id, who), "compact_now"))

    @app.delete("/api/sessions/{session_id}", responses={**ERRORS, 409: {"model": Problem}})
    async def end_session(session_id: Session, who: User) -> Result:
        """End the session (after the turn in flight, if any)."""
        return Result(result=await _update(await owned(session_id, who), "end_chat"))

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


PATTERN_MEANING = {
    MESSAGE_PATTERN: "send plain text without control characters, and not only spaces",
    TOOL_NAME_PATTERN: "a team or tool name: letters, digits, '_' and '-'",
}


def _readable(error: Any) -> str:
    if error.get("type") == "string_pattern_mismatch":
        meaning = PATTERN_MEANING.get((error.get("ctx") or {}).get("pattern", ""))
        if meaning:
            return meaning
    return str(error["msg"])


NO_BUFFER = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(event: SessionEvent) -> str:
    return f"id: {event.offset}\nevent: {event.kind}\ndata: {event.model_dump_json(exclude_none=True)}\n\n"


async def with_keepalive(events: AsyncIterator[SessionEvent]) -> AsyncIterator[str]:
    """``events`` as SSE, with a comment line when nothing happened for a while, so
    proxies keep the connection and clients notice a dead one."""
    queue: asyncio.Queue[SessionEvent | BaseException] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in events:
                await queue.put(event)
        except Exception as err:
            await queue.put(err)

    task = asyncio.ensure_future(pump())
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ": ping\n\n"
                continue
            if isinstance(item, BaseException):
                return
            yield sse(item)
    finally:
        task.cancel()


async def _update(handle: WorkflowHandle, name: str, *args: Any) -> str:
    """Run an Update; a refusal (nothing to decide, no turn running) is 409."""
    try:
        return await handle.execute_update(name, *args, result_type=str)
    except WorkflowUpdateFailedError as err:
        raise HTTPException(409, str(getattr(err.cause, "message", None) or err.cause)) from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(409, "this session has ended") from None
        raise
