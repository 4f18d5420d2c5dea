"""An MCP server for tests that records each tool call in a file.

``python -m tests.mcp_recorder <file>`` serves the tools ``record``
and ``spend`` over stdio, and ``label``, whose input (any labels) no strict
schema can express.
Each call appends ``start <pid> <key>`` before its work and ``done <pid> <key>``
after it, so a test can count how often a call ran and completed, and find the
process to kill while a call is in flight. A call whose key starts with
``slow`` waits until the file ``<file>.go`` exists before finishing.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field


class Recorded(BaseModel):
    key: str = Field(description="The key of the call.")
    pid: int = Field(description="The server process that completed it.")


async def _released(go: Path) -> None:
    # The test creates the file from another process: nothing here to wait on but the file.
    while not go.exists():  # noqa: ASYNC110
        await asyncio.sleep(0.05)


def create_server(log: Path) -> MCPServer:
    server = MCPServer("mesh-test-recorder")

    @server.tool(name="record", description="Record a call under a key (test tool).")
    async def record(
        key: Annotated[str, Field(description="Any short word naming the call.")],
        note: Annotated[str | None, Field(description="Optional note.")] = None,
    ) -> Recorded:
        if not key:
            raise ToolError("a key is required")
        with log.open("a") as out:
            out.write(f"start {os.getpid()} {key}\n")
        if key.startswith("slow"):
            await _released(log.with_name(log.name + ".go"))
        with log.open("a") as out:
            out.write(f"done {os.getpid()} {key}\n")
        return Recorded(key=key, pid=os.getpid())

    @server.tool(name="spend", description="Record spending an amount (test tool).")
    def spend(
        key: Annotated[str, Field(description="Any short word naming the call.")],
        amount: Annotated[float, Field(description="The amount.")],
    ) -> Recorded:
        with log.open("a") as out:
            out.write(f"spend {os.getpid()} {key}\n")
        return Recorded(key=key, pid=os.getpid())

    @server.tool(name="label", description="Attach labels (test tool; its schema is open).")
    def label(labels: dict[str, str]) -> str:
        return ", ".join(labels)

    return server


if __name__ == "__main__":
    asyncio.run(create_server(Path(sys.argv[1])).run_stdio_async())
