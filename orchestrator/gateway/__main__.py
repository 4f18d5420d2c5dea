"""The MCP gateway over stdio, for desktop clients: ``python -m orchestrator.gateway``.

The client starts this process and speaks MCP on its stdin and stdout. It
runs as one API user: ``MESH_MCP_TOKEN`` holds that user's bearer token, one
of the API's (``MESH_API_TOKENS`` or ``MESH_API_TOKENS_FILE``, see
``orchestrator.api.auth``). The mesh file is ``MESH_FILE`` or ./mesh.toml;
Temporal's address comes from the environment, as for every mesh process.
Logs go to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from mcp.server.stdio import stdio_server
from temporalio.contrib.pydantic import pydantic_data_converter

from meshkit.mesh import MeshError, connect, load_mesh, mesh_path
from meshkit.runtime import configure_logging
from orchestrator.api.auth import AuthError, load_users
from orchestrator.contract import SessionConfig
from orchestrator.gateway.durable import DurableCalls
from orchestrator.gateway.listing import Catalogs
from orchestrator.gateway.server import Gateway, watching
from orchestrator.session_client import SessionClient

TOKEN_ENV = "MESH_MCP_TOKEN"
REFRESH_S = 15.0

log = logging.getLogger("orchestrator.gateway")


async def serve(user: str) -> None:
    path = mesh_path()
    mesh = load_mesh(path)
    client = await connect(
        mesh, mesh.orchestrator, data_converter=pydantic_data_converter, require_namespace=True
    )
    calls = DurableCalls(client, mesh.orchestrator.task_queue)

    sessions = SessionClient(client, mesh, mesh_file=path)
    gateway = Gateway(
        calls,
        Catalogs(calls, lambda: SessionConfig.for_mesh(sessions.mesh).teams),
        lambda ctx: user,
        sessions=sessions,
    )
    async with watching(gateway, REFRESH_S), stdio_server() as (read, write):
        await gateway.server.run(read, write, gateway.server.create_initialization_options())


def main() -> None:
    configure_logging()
    try:
        user = load_users().user_for(os.environ.get(TOKEN_ENV))
    except AuthError as err:
        log.error("the MCP gateway cannot start: %s", err)
        sys.exit(1)
    if user is None:
        log.error("%s must hold the bearer token of one of the API's users", TOKEN_ENV)
        sys.exit(1)
    try:
        asyncio.run(serve(user))
    except MeshError as err:
        log.error("the MCP gateway cannot start: %s", err)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    # A process holding a Temporal client can abort at interpreter exit.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
