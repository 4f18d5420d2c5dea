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
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.routing import Route
from temporalio.client import Plugin
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from meshkit.mesh import Mesh, connect
from meshkit.observability.tracing import current_span
from orchestrator.api.auth import Users
from orchestrator.contract import (
    MAX_MESSAGE_CHARS,
    MESSAGE_PATTERN,
    ApprovalDecision,
    BadDecision,
    BadMessage,
    NoReply,
    NotAwaitingApproval,
    NothingToUndo,
    NoTurnInProgress,
    SessionConfig,
    SessionEnded,
    SessionError,
    SessionEvent,
    SessionNotFound,
    SessionStatus,
    SessionSummary,
    Turn,
    UnknownTool,
)
from orchestrator.gateway.http import PATH as MCP_PATH
from orchestrator.gateway.http import McpEndpoint
from orchestrator.session import Session
from orchestrator.session_client import SessionClient

STATIC = Path(__file__).parent / "static"
SESSION_ID = r"^chat-[A-Za-z0-9._-]{1,80}$"
KEEPALIVE_S = 15.0
IDEMPOTENCY_KEY = r"^[A-Za-z0-9_.:~+/=-]{1,200}$"

STATUS_OF: dict[type[SessionError], int] = {
    SessionNotFound: 404,
    SessionEnded: 409,
    NotAwaitingApproval: 409,
    NoTurnInProgress: 409,
    NothingToUndo: 409,
    BadMessage: 422,
    BadDecision: 422,
    UnknownTool: 422,
    NoReply: 504,
}
"""The HTTP status of each refusal, by its type (never by its text)."""


# --- bodies ------------------------------------------------------------------------------


class Problem(BaseModel):
    detail: str = Field(description="What went wrong, for a person to read.")


# What a session accepts, stated in the schema so that clients (and fuzzers)
# know it: the session's message rules (orchestrator.contract), and tool names
# of letters, digits, '_' and '-'.
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
REFUSED = {**ERRORS, 409: {"model": Problem, "description": "The session refused: see detail."}}
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
SessionId = Annotated[str, PathParam(description="Session id, e.g. chat-1a2b3c.")]


def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY,
            description="Makes the request safe to repeat: a request repeated with the same "
            "key gets the first one's outcome and changes nothing more. Without one the API "
            "makes a key, so a repeated request is a new request.",
        ),
    ] = None,
) -> str:
    return key or uuid.uuid4().hex


Key = Annotated[str, Depends(idempotency_key)]


def sessions_of(request: Request) -> SessionClient:
    sessions: SessionClient = request.app.state.sessions
    return sessions


async def owned(request: Request, session_id: SessionId, who: User) -> Session:
    """The session, if it exists, is open and belongs to ``who``; 404 otherwise.

    An ended session is gone from the API (its history stays in Temporal
    for the namespace's retention).
    """
    if not re.match(SESSION_ID, session_id):
        raise HTTPException(404, f"no session {session_id}")
    try:
        return await sessions_of(request).attach(session_id, owner=who)
    except (SessionNotFound, SessionEnded):
        raise HTTPException(404, f"no session {session_id}") from None


Owned = Annotated[Session, Depends(owned)]
Sessions = Annotated[SessionClient, Depends(sessions_of)]


# --- the app -------------------------------------------------------------------------------


def create_app(
    mesh: Mesh,
    users: Users,
    temporal_ui: str = "http://127.0.0.1:8233",
    *,
    mesh_file: Path | None = None,
    tracing: Sequence[Plugin] = (),
    mcp_refresh_s: float = 15.0,
) -> FastAPI:
    """The API for ``mesh``'s orchestrator namespace, for the configured ``users``.

    ``tracing``: the client plugins that carry the trace (``observability.setup``'s).

    With ``mesh_file`` (the file ``mesh`` was read from), a session is created
    with the teams the file names at that moment: a team added to it reaches
    the next new session without a restart of the API.

    The MCP gateway at ``/mcp`` asks the teams for their catalogs every
    ``mcp_refresh_s`` seconds, and tells its clients when their tools changed.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = await connect(
            mesh, mesh.orchestrator, tracing=tracing, data_converter=pydantic_data_converter
        )
        sessions = SessionClient(client, mesh, mesh_file=mesh_file)
        app.state.sessions = sessions
        async with mcp.running(client, mesh.orchestrator.task_queue, sessions):
            yield

    app = FastAPI(
        title="Nexus tool mesh",
        description="Chat with the mesh's agent: sessions, messages streamed as server-sent "
        "events, approvals, interrupts. Every /api route needs `Authorization: Bearer <token>`; "
        "every route that changes something takes an optional `Idempotency-Key` header.",
        version="1",
        lifespan=lifespan,
        # FastAPI traces each request itself when the process traces
        # (meshkit.observability); one span per request, not per step of it.
        telemetry={"operation_spans": False},
    )
    app.state.users = users
    # The MCP gateway: the same users, the teams of the mesh file as it reads now.
    mcp = McpEndpoint(
        users,
        lambda: SessionConfig.for_mesh(app.state.sessions.mesh).teams,
        approve_at="the web chat (this server's / page)",
        refresh_s=mcp_refresh_s,
    )
    app.router.routes.append(Route(MCP_PATH, endpoint=mcp, methods=["GET", "POST", "DELETE"]))

    def ui_link(session_id: str) -> str:
        namespace = quote(mesh.orchestrator.namespace)
        return f"{temporal_ui.rstrip('/')}/namespaces/{namespace}/workflows/{quote(session_id)}"

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        # One readable line, the same shape as every other error of this API.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {_readable(e)}"
            for e in err.errors()
        )
        return JSONResponse({"detail": problems or "invalid request"}, 422)

    @app.exception_handler(SessionError)
    async def refused(request: Request, err: SessionError) -> JSONResponse:
        status = next((STATUS_OF[c] for c in type(err).__mro__ if c in STATUS_OF), 409)
        return JSONResponse({"detail": str(err)}, status)

    @app.exception_handler(RPCError)
    async def temporal_error(request: Request, err: RPCError) -> JSONResponse:
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return JSONResponse({"detail": "Temporal is unreachable; try again"}, 503)
        return JSONResponse({"detail": f"Temporal refused the request: {err.message}"}, 502)

    @app.post("/api/sessions", status_code=201, responses=REFUSED)
    async def create_session(
        sessions: Sessions,
        who: User,
        key: Key,
        body: Annotated[NewSession | None, Body()] = None,
    ) -> SessionCreated:
        """Start a session; it belongs to the caller. The body may be left out."""
        body = body or NewSession()
        opened = await sessions.open(owner=who, key=key, tools=body.tools, stream=body.stream)
        return SessionCreated(
            id=opened.id, temporal_ui=ui_link(opened.id), tools=opened.allowed_tools
        )

    @app.get("/api/sessions", responses=ERRORS)
    async def list_sessions(sessions: Sessions, who: User) -> list[SessionSummary]:
        """The caller's open sessions, newest first."""
        return await sessions.list(owner=who)

    @app.get("/api/sessions/{session_id}", responses=ERRORS)
    async def get_session(session: Owned) -> SessionView:
        """The session's status and recent turns."""
        # The offset first: events after it may repeat what the history shows,
        # never miss what it does not.
        offset = await session.offset()
        status = await session.status()
        history = await session.history()
        return SessionView(
            id=session.id,
            status=status,
            history=history,
            temporal_ui=ui_link(session.id),
            offset=offset,
        )

    @app.post(
        "/api/sessions/{session_id}/messages",
        response_class=StreamingResponse,
        responses={200: STREAM, **REFUSED},
    )
    async def send_message(session: Owned, body: Message, key: Key) -> StreamingResponse:
        """Send a message; the answer is the turn's events as they happen, ending with
        the reply. A message sent while a turn runs waits for it (turns run in order).
        The same message sent again with the same Idempotency-Key runs no second turn:
        the answer is the first one's turn, its events and its reply."""
        # FastAPI's span of this request is the root of the turn's trace.
        current_span().set_attribute("mesh.session.id", session.id)
        sent = await session.submit(body.text, key=key)

        async def turn_events() -> AsyncIterator[str]:
            async for event in sent.events():
                yield sse(event)

        return StreamingResponse(turn_events(), media_type="text/event-stream", headers=NO_BUFFER)

    @app.get(
        "/api/sessions/{session_id}/events",
        response_class=StreamingResponse,
        responses={200: STREAM, **ERRORS},
    )
    async def events(
        session: Owned,
        after: Annotated[int, Query(ge=-1, le=2**53, description="Last offset seen.")] = -1,
        follow: Annotated[bool, Query(description="Keep the stream open for new events.")] = True,
        last_event_id: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> StreamingResponse:
        """The session's events after ``after`` (or the ``Last-Event-ID`` header): resume a
        stream without missing or repeating an event."""
        if last_event_id and last_event_id.isdigit():
            after = max(after, int(last_event_id))
        if not follow:
            end = await session.offset()

            async def retained() -> AsyncIterator[str]:
                if end <= after + 1:
                    return
                async for event in session.follow(after):
                    yield sse(event)
                    if event.offset >= end - 1:
                        return

            return StreamingResponse(retained(), media_type="text/event-stream", headers=NO_BUFFER)
        return StreamingResponse(
            with_keepalive(session.follow(after)),
            media_type="text/event-stream",
            headers=NO_BUFFER,
        )

    @app.post("/api/sessions/{session_id}/approvals/{call_id}", responses=REFUSED)
    async def decide(
        session: Owned,
        call_id: Annotated[str, PathParam(max_length=200)],
        body: Decision,
        who: User,
        key: Key,
    ) -> Result:
        """Approve or deny a tool call that waits for approval."""
        decision = ApprovalDecision(call_id=call_id, approve=body.approve, note=body.note, by=who)
        return Result(result=await session.decide(decision, key=key))

    @app.post("/api/sessions/{session_id}/interrupt", responses=REFUSED)
    async def interrupt(session: Owned, key: Key) -> Result:
        """Interrupt the turn in flight."""
        return Result(result=await session.interrupt(key=key))

    @app.post("/api/sessions/{session_id}/undo", responses=REFUSED)
    async def undo(session: Owned, key: Key) -> Result:
        """Drop the last turn from what the model sees next."""
        return Result(result=await session.undo(key=key))

    @app.post("/api/sessions/{session_id}/compact", responses=REFUSED)
    async def compact(session: Owned, key: Key) -> Result:
        """Compact the conversation now: the model sees only the last turn, with a note."""
        return Result(result=await session.compact(key=key))

    @app.delete("/api/sessions/{session_id}", responses=REFUSED)
    async def end_session(session: Owned, key: Key) -> Result:
        """End the session (after the turn in flight, if any)."""
        return Result(result=await session.end(key=key))

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


PATTERN_MEANING = {
    MESSAGE_PATTERN: "send plain text without control characters, and not only spaces",
    TOOL_NAME_PATTERN: "a team or tool name: letters, digits, '_' and '-'",
    IDEMPOTENCY_KEY: "1 to 200 letters, digits or any of _ . : ~ + / = -",
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
