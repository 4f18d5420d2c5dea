"""What tests of the MCP gateway share: an MCP client of the API's ``/mcp``
as Alice, and an API of a test's own whose gateway refreshes often."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from meshdev.dev_server import free_port
from meshkit.mesh import load_mesh
from meshkit.polling import poll_until
from orchestrator.api.app import create_app
from orchestrator.api.auth import load_users
from tests.conftest import ALICE_TOKEN, WebApi


def connect(web_api: WebApi, mode: str, **options: Any) -> Client:
    """An MCP client of ``web_api``'s gateway over Streamable HTTP, in protocol ``mode``."""
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {web_api.token}"},
        timeout=httpx2.Timeout(30, read=300),
    )
    transport = streamable_http_client(f"{web_api.url}/mcp", http_client=http)
    return Client(transport, mode=mode, **options)


@asynccontextmanager
async def own_api(mesh_file: Path) -> AsyncIterator[WebApi]:
    """An API of its own, reading ``mesh_file``, whose gateway refreshes often."""
    users = load_users({"MESH_API_TOKENS": f"alice:{ALICE_TOKEN}"})
    app = create_app(load_mesh(mesh_file), users, mesh_file=mesh_file, mcp_refresh_s=0.5)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool | None:
        return server.started or None

    await poll_until(started, timeout_s=10, what="the API did not start")
    try:
        yield WebApi(f"http://127.0.0.1:{port}", ALICE_TOKEN, "")
    finally:
        server.should_exit = True
        await task
