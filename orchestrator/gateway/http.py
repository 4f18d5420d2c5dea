"""The gateway over Streamable HTTP, at ``/mcp`` of the API process.

Same users and bearer tokens as the API (:mod:`orchestrator.api.auth`): a
request without a known token gets 401 before the MCP SDK sees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from temporalio.client import Client

from orchestrator.api.auth import Users
from orchestrator.contract import TeamRoute
from orchestrator.gateway.durable import DurableCalls
from orchestrator.gateway.listing import Catalogs
from orchestrator.gateway.server import Gateway, watching
from orchestrator.session_client import SessionClient

PATH = "/mcp"


def bearer_token(headers: Mapping[str, str] | None) -> str | None:
    scheme, _, token = (headers or {}).get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class McpEndpoint:
    """The ASGI app at ``/mcp``; serves once :meth:`running` has been entered."""

    def __init__(
        self,
        users: Users,
        routes: Callable[[], Mapping[str, TeamRoute]],
        *,
        refresh_s: float = 15.0,
        approve_at: str = "",
    ) -> None:
        self.users = users
        self.routes = routes
        self.refresh_s = refresh_s
        self.approve_at = approve_at
        self._app: StreamableHTTPASGIApp | None = None

    def user_of(self, ctx: ServerRequestContext[Any]) -> str | None:
        return self.users.user_for(bearer_token(getattr(ctx.request, "headers", None)))

    @contextlib.asynccontextmanager
    async def running(
        self, client: Client, task_queue: str, sessions: SessionClient | None = None
    ) -> AsyncIterator[Gateway]:
        """Serve while the block runs; with ``sessions``, the ``ask`` tool too."""
        calls = DurableCalls(client, task_queue)
        gateway = Gateway(
            calls,
            Catalogs(calls, self.routes),
            self.user_of,
            sessions=sessions,
            approve_at=self.approve_at,
        )
        manager = StreamableHTTPSessionManager(app=gateway.server)
        async with manager.run(), watching(gateway, self.refresh_s):
            self._app = StreamableHTTPASGIApp(manager)
            try:
                yield gateway
            finally:
                self._app = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.users.user_for(bearer_token(headers)) is None:
            response = JSONResponse(
                {"detail": "missing or wrong bearer token"},
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        if self._app is None:
            await JSONResponse({"detail": "the MCP gateway is not running"}, 503)(
                scope, receive, send
            )
            return
        await self._app(scope, receive, send)
