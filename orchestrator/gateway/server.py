"""The mesh as an MCP server: every available team's tools, each call durable.

Built on the official SDK's low-level ``Server``; the SDK speaks the protocol
(the current revision, and the handshake-era ones: the client's first
request decides). This module translates between MCP and the gateway's door
(:class:`~orchestrator.gateway.durable.DurableCalls`) and never talks to
Temporal itself.

- ``tools/list``: :mod:`orchestrator.gateway.listing`.
- ``tools/call``: the team's operation, run once per idempotency key (the
  client's ``_meta`` ``idempotencyKey``, else the request itself). The result
  is the operation's JSON as ``structuredContent`` and as text; the team's
  refusal comes back as ``isError`` with the team's words.
- When a catalog changes, clients get ``notifications/tools/list_changed``:
  handshake-era clients on their session's stream, current ones on their
  ``subscriptions/listen`` stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from orchestrator.gateway import approvals, ask
from orchestrator.gateway.calls import CallOutcome, GatewayCall, derived_key
from orchestrator.gateway.durable import DurableCalls
from orchestrator.gateway.listing import Catalogs, fingerprint
from orchestrator.session_client import SessionClient

log = logging.getLogger("orchestrator.gateway")

IDEMPOTENCY_META = "idempotencyKey"
"""``_meta`` key of a ``tools/call`` request: calls with one key (per user) run once."""

SESSION_HEADER = "mcp-session-id"
PROGRESS_EVERY_S = 2.0
_MAX_LISTENERS = 1000

UserOf = Callable[[ServerRequestContext[Any]], str | None]


class Gateway:
    """The MCP server of one mesh, for users that ``user_of`` names per request."""

    def __init__(
        self,
        calls: DurableCalls,
        catalogs: Catalogs,
        user_of: UserOf,
        *,
        sessions: SessionClient | None = None,
        approve_at: str = "",
    ) -> None:
        self.calls = calls
        self.sessions = sessions
        self.catalogs = catalogs
        self.user_of = user_of
        self.approve_at = approve_at or "the web chat (scripts/demo prints its URL)"
        self.bus = InMemorySubscriptionBus()
        # Handshake-era connections, by session, to tell of a changed list.
        self._listeners: OrderedDict[str, ServerSession] = OrderedDict()
        self._seen: tuple[tuple[str, str], ...] | None = None
        self.server: Server[Any] = _MeshServer(
            "nexus-tool-mesh",
            title="Nexus tool mesh",
            instructions="The tools of the mesh's teams. Each call runs durably in Temporal, "
            "behind the owning team's door.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self.bus),
        )

    # --- tools/list ------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        self._remember(ctx)
        tools = await self.catalogs.tools()
        if self._seen is None:
            self._seen = fingerprint(await self.catalogs.current())
        listed = [tool.as_mcp() for tool in tools.values()]
        if self.sessions is not None:
            listed.insert(0, ask.tool())
        return types.ListToolsResult(tools=listed)

    # --- tools/call ------------------------------------------------------------------------

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        self._remember(ctx)
        user = self.user_of(ctx)
        if user is None:
            return _error("this request names no user of the mesh")
        if params.name == ask.NAME and self.sessions is not None:
            return await self._ask(ctx, params, user)
        tools = await self.catalogs.tools()
        tool = tools.get(params.name)
        if tool is None:
            # A team may have deployed a tool since the list was fetched.
            tools = await self.catalogs.tools(fresh=True)
            tool = tools.get(params.name)
        if tool is None:
            return _error(
                f"no available team offers a tool called {params.name!r} (its team may be down "
                f"or may have removed it); tools: {', '.join(sorted(tools)) or 'none'}"
            )
        entry = tool.entry
        arguments = {
            k: v
            for k, v in (params.arguments or {}).items()
            if not (v is None and k in entry.optional)
        }
        key = (ctx.meta or {}).get(IDEMPOTENCY_META)
        if not isinstance(key, str) or not key:
            key = derived_key(
                self._connection(ctx), ctx.request_id or "", tool.name, params.arguments
            )
        approval = None
        if entry.approval is not None and entry.approval.requires_approval(arguments):
            answer = await approvals.ask(
                ctx, params, tool, arguments, user=user, key=key, approve_at=self.approve_at
            )
            if answer.ask is not None:
                return answer.ask
            if answer.approval is None:
                return _error(answer.refusal)
            approval = answer.approval
        call = GatewayCall(
            team=tool.team,
            route=tool.route,
            operation=entry.name,
            arguments=arguments if entry.takes_input else None,
            timeout_s=entry.timeout_s,
            user=user,
            approval=approval,
        )
        if entry.kind == "workflow":
            outcome = await _with_progress(ctx, self.calls.call(call, key), call)
        else:
            outcome = await self.calls.call(call, key)
        if not outcome.ok:
            if outcome.error_type == "NOT_FOUND":
                # The team no longer has the operation: clients are told their list changed.
                with contextlib.suppress(Exception):
                    await self.refresh()
            return _error(outcome.error)
        return _result(outcome.result)

    async def _ask(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams, user: str
    ) -> types.CallToolResult:
        assert self.sessions is not None
        connection = self._connection(ctx)
        key = (ctx.meta or {}).get(IDEMPOTENCY_META)
        if not isinstance(key, str) or not key:
            key = derived_key(connection, ctx.request_id or "", ask.NAME, params.arguments)
        lasting = connection if self._lasting(ctx) else None
        answer = await ask.ask(self.sessions, user, lasting, params.arguments or {}, key)
        if isinstance(answer, str):
            return _error(answer)
        return _result(answer.model_dump(mode="json"))

    # --- list_changed ----------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Fetch the catalogs now; tell every client when their tools changed."""
        current = fingerprint(await self.catalogs.current(fresh=True))
        if self._seen is None or current == self._seen:
            self._seen = current
            return False
        self._seen = current
        await self.bus.publish(ToolsListChanged())
        for session_id, session in list(self._listeners.items()):
            try:
                await session.send_tool_list_changed()
            except Exception:  # a client that went away is forgotten, not fatal
                self._listeners.pop(session_id, None)
        log.info("tools changed: %s", ", ".join(f"{t}@{v}" for t, v in current) or "none")
        return True

    async def watch(self, interval_s: float) -> None:
        """Refresh every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception as err:  # Temporal unreachable: try again next time
                log.warning("catalogs not refreshed: %s", err)

    def _remember(self, ctx: ServerRequestContext[Any]) -> None:
        if ctx.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS or not self._lasting(ctx):
            return
        session_id = self._connection(ctx)
        self._listeners[session_id] = ctx.session
        self._listeners.move_to_end(session_id)
        while len(self._listeners) > _MAX_LISTENERS:
            self._listeners.popitem(last=False)

    def _lasting(self, ctx: ServerRequestContext[Any]) -> bool:
        """Whether the request came on a connection that later requests share."""
        headers = getattr(ctx.request, "headers", None)
        return headers is None or bool(headers.get(SESSION_HEADER))

    def _connection(self, ctx: ServerRequestContext[Any]) -> str:
        """The client connection a request came on: its MCP session over HTTP, the
        process over stdio, or (a stateless request) the request alone."""
        request = ctx.request
        headers = getattr(request, "headers", None)
        if headers is not None:
            return headers.get(SESSION_HEADER) or uuid.uuid4().hex
        return _PROCESS


_PROCESS = f"stdio-{uuid.uuid4().hex}"


class _MeshServer(Server[Any]):
    """The SDK's server, announcing to handshake-era clients that its tool list
    changes (current clients learn it from ``subscriptions/listen``)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


async def _with_progress(
    ctx: ServerRequestContext[Any], running: Awaitable[CallOutcome], call: GatewayCall
) -> CallOutcome:
    """``running``'s outcome, reporting how long it has run against the team's limit
    (nothing is sent unless the client asked for progress)."""
    task = asyncio.ensure_future(running)
    report = ctx.session.report_progress
    limit = call.timeout_s
    await report(0, limit, f"{call.team} team: {call.operation} started in Temporal")
    started = asyncio.get_running_loop().time()
    try:
        while not task.done():
            await asyncio.wait([task], timeout=PROGRESS_EVERY_S)
            if not task.done():
                elapsed = asyncio.get_running_loop().time() - started
                await report(
                    min(elapsed, limit), limit, f"{call.operation} running for {elapsed:.0f} s"
                )
    finally:
        if not task.done():
            task.cancel()
    outcome = task.result()
    await report(limit, limit, f"{call.operation} {'done' if outcome.ok else 'ended'}")
    return outcome


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def _result(result: Any) -> types.CallToolResult:
    text = json.dumps(result, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content=result if isinstance(result, dict) else None,
    )


@contextlib.asynccontextmanager
async def watching(gateway: Gateway, interval_s: float) -> Any:
    """The gateway's background refresh, for as long as the block runs."""
    task = asyncio.ensure_future(gateway.watch(interval_s))
    try:
        yield gateway
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
