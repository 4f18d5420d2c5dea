"""MCP servers a team publishes as its own tools.

A team declares a server in its registration (``McpServer(name=..., stdio=[...])``
or ``McpServer(name=..., url=...)``). Its worker starts the server (or connects
to the URL), lists its tools and adds each to the team's catalog under the
tool's own name, with a strict input schema; a tool whose schema cannot be
made strict is left out and the reason logged. The team's ``POLICIES`` and
``HINTS`` apply per tool name, as for a hand-written operation, and calls go
through the team's door (:mod:`meshkit.toolkit.mcp_operations`).

The worker owns the connection: :class:`McpLink` keeps one client open,
and when a call finds the server gone it closes the client (stopping what is
left of the process) and opens a new one, so the call's retry runs on a fresh
server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from mcp import Client, StdioServerParameters
from mcp import types as mcp_types
from mcp.shared.exceptions import MCPError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from meshkit.toolkit.catalog import (
    CATALOG_OPERATION,
    ToolEntry,
    strict_json_schema,
    strict_schema_problems,
)
from meshkit.toolkit.mcp_workflow import MCP_TOOL_ACTIVITY, TOOL_ERROR, McpToolCall

log = logging.getLogger("meshkit.mcp")

ArgumentAdapter = Callable[[dict[str, Any]], dict[str, Any]]

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SERVER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")

TEXT_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string", "description": "The tool's answer, as text."}},
    "required": ["text"],
}
"""Output schema of a tool whose server declares none: its text content."""


@dataclass(frozen=True)
class McpServer:
    """An MCP server whose tools a team publishes, declared in its registration."""

    name: str
    """Short name (lower case, digits, ``-``, ``_``), for logs and workflow inputs."""
    stdio: Sequence[str] = ()
    """Command and arguments that start the server on stdin/stdout; the team's
    worker runs it as a child process."""
    url: str | None = None
    """Streamable HTTP URL of a server that runs elsewhere."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment of a stdio server, beside HOME, PATH and the like."""
    cwd: str | None = None
    """Working directory of a stdio server."""
    adapt: Mapping[str, ArgumentAdapter] = field(default_factory=dict)
    """Per tool name, a function the team's handler runs on a call's arguments
    before the server sees them (e.g. a city name to the IANA zone the server
    wants). Raise ``meshkit.toolkit.bad_request`` to refuse a call."""
    attempt_timeout_s: float = 30.0
    """How long one attempt of a call may take; the team's policy bounds the whole call."""

    def __post_init__(self) -> None:
        if not _SERVER_NAME.match(self.name):
            raise ValueError(
                f"MCP server name {self.name!r}: use 1-40 lower-case letters, digits, - or _"
            )
        if bool(self.stdio) == bool(self.url):
            raise ValueError(f"MCP server {self.name}: give either stdio=[...] or url=..., once")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"MCP server {self.name}: url must be http(s), got {self.url!r}")
        if self.attempt_timeout_s <= 0:
            raise ValueError(f"MCP server {self.name}: attempt_timeout_s must be positive")

    def target(self) -> StdioServerParameters | str:
        if self.url:
            return self.url
        command, *args = self.stdio
        # The worker's own interpreter for "python": the server's package is
        # installed beside the worker, not necessarily on PATH.
        if command == "python":
            command = sys.executable
        return StdioServerParameters(command=command, args=args, env=dict(self.env), cwd=self.cwd)


class ServerDown(Exception):
    """The server did not answer (it died, or its URL does not answer); a retry may."""


class McpLink:
    """One team worker's connection to one MCP server, opened again when it breaks."""

    def __init__(self, server: McpServer) -> None:
        self.server = server
        self._client: Client | None = None
        self._ready = asyncio.Event()
        self._broken = asyncio.Event()
        self._stopping = False
        self._owner: asyncio.Task[str | None] | None = None
        self._connected_once = False

    async def start(self, timeout_s: float = 60) -> list[mcp_types.Tool]:
        """Start the server, and list its tools; raises :class:`ServerDown` at
        once when the first start fails (a wrong command, a URL that does not answer)."""
        self._owner = asyncio.create_task(self._own(), name=f"mcp-{self.server.name}")
        ready = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait({ready, self._owner}, timeout=timeout_s, return_when="FIRST_COMPLETED")
        ready.cancel()
        if self._owner.done():
            raise ServerDown(f"MCP server {self.server.name} did not start: {self._owner.result()}")
        client = self._client
        if client is None:
            await self.stop()
            raise ServerDown(f"MCP server {self.server.name} did not start within {timeout_s:g} s")
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            tools += page.tools
            cursor = page.next_cursor
            if cursor is None:
                return tools

    async def stop(self) -> None:
        self._stopping = True
        self._broken.set()
        if self._owner is not None:
            await self._owner

    async def call(self, tool: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        """Call a tool; raises :class:`ServerDown` when the server is gone, after
        asking for a new one."""
        client = await self._connected(self.server.attempt_timeout_s)
        broken = self._broken
        try:
            return await client.call_tool(tool, arguments)
        except MCPError as err:
            if err.code != mcp_types.CONNECTION_CLOSED:
                raise
            broken.set()
            raise ServerDown(f"MCP server {self.server.name} closed the connection") from None
        except (OSError, httpx.TransportError, anyio.BrokenResourceError) as err:
            broken.set()
            raise ServerDown(f"MCP server {self.server.name} did not answer: {err}") from None

    async def _connected(self, timeout_s: float) -> Client:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            raise ServerDown(
                f"MCP server {self.server.name} did not start within {timeout_s:g} s"
            ) from None
        assert self._client is not None
        return self._client

    async def _own(self) -> str | None:
        """Keep a client open until stopped; returns why, when the first start fails."""
        # The client is entered and left in this one task: its transport runs
        # in a task group that must close in the task that opened it.
        delay = 0.2
        while not self._stopping:
            self._broken = asyncio.Event()
            try:
                async with Client(self.server.target()) as client:
                    self._client = client
                    self._connected_once = True
                    self._ready.set()
                    log.info("MCP server %s connected", self.server.name)
                    delay = 0.2
                    await self._broken.wait()
            except Exception as err:
                log.warning("MCP server %s failed: %s", self.server.name, err)
                if not self._connected_once:
                    return str(err) or type(err).__name__
            finally:
                self._ready.clear()
                self._client = None
            if not self._stopping:
                log.warning("MCP server %s is gone; starting it again", self.server.name)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        return None


# --- tools as catalog entries ------------------------------------------------------------

# Keywords whose meaning strict mode cannot express: dropping them would widen
# what the tool accepts, so a schema using them is left out instead.
_INEXPRESSIBLE = frozenset(
    {
        "oneOf", "not", "if", "then", "else", "patternProperties", "prefixItems",
        "dependentSchemas", "dependentRequired", "unevaluatedProperties", "propertyNames",
    }
)  # fmt: skip


def _inexpressible(node: Any, path: str = "$") -> list[str]:
    if isinstance(node, list):
        return [p for n, item in enumerate(node) for p in _inexpressible(item, f"{path}[{n}]")]
    if not isinstance(node, dict):
        return []
    problems = [f"{path}: {key!r} is not supported" for key in node if key in _INEXPRESSIBLE]
    if len(node.get("allOf", [])) > 1:
        problems.append(f"{path}: 'allOf' with several schemas is not supported")
    if node.get("additionalProperties") not in (None, False):
        problems.append(f"{path}: an object open to any property cannot be strict")
    if isinstance(node.get("type"), list):
        problems.append(f"{path}: a list of types is not supported")
    ref = node.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#/$defs/"):
        problems.append(f"{path}: $ref {ref!r} does not point into $defs")
    for key in ("properties", "$defs"):
        for name, sub in (node.get(key) or {}).items():
            problems += _inexpressible(sub, f"{path}.{name}")
    for key in ("items", "anyOf", "allOf"):
        if key in node:
            problems += _inexpressible(node[key], f"{path}.{key}")
    return problems


def imported_entry(tool: mcp_types.Tool) -> ToolEntry:
    """The catalog entry of an MCP tool; raises ``ValueError`` saying why it
    cannot be offered."""
    if not _TOOL_NAME.match(tool.name):
        raise ValueError("its name is not 1-64 letters, digits, _ or -")
    if tool.name == CATALOG_OPERATION:
        raise ValueError("its name is that of the team's catalog operation")
    problems = _inexpressible(tool.input_schema)
    schema, optional = strict_json_schema(dict(tool.input_schema))
    if schema.get("type") != "object":
        problems.append("$: its arguments are not an object")
    problems += strict_schema_problems(schema)
    if problems:
        raise ValueError("its input schema cannot be made strict: " + "; ".join(problems[:3]))
    description = tool.description or tool.title or tool.name
    return ToolEntry(
        name=tool.name,
        description=" ".join(description.split()),
        input_schema=schema,
        output_schema=dict(tool.output_schema) if tool.output_schema else TEXT_OUTPUT,
        kind="workflow",
        timeout_s=60,
        optional=optional,
        read_only=bool(tool.annotations and tool.annotations.read_only_hint),
    )


@dataclass(frozen=True)
class ImportedTool:
    """An MCP tool offered as an operation of the team's service."""

    server: McpServer
    entry: ToolEntry


async def open_servers(
    servers: Sequence[McpServer], taken: set[str]
) -> tuple[dict[str, McpLink], dict[str, ImportedTool]]:
    """Start every server and list its tools: the links by server name, and
    the tools to offer by name. A tool that cannot be offered (bad schema, or
    a name ``taken`` by an operation or an earlier server) is logged and left out."""
    links: dict[str, McpLink] = {}
    tools: dict[str, ImportedTool] = {}
    try:
        for server in servers:
            if server.name in links:
                raise ValueError(f"two MCP servers are named {server.name!r}")
            link = links[server.name] = McpLink(server)
            for tool in await link.start():
                try:
                    if tool.name in taken or tool.name in tools:
                        raise ValueError("the team already offers a tool of that name")
                    entry = imported_entry(tool)
                except ValueError as err:
                    log.warning("MCP server %s: tool %s left out: %s", server.name, tool.name, err)
                    continue
                tools[tool.name] = ImportedTool(server, entry)
            unknown = set(server.adapt) - {n for n, t in tools.items() if t.server is server}
            if unknown:
                raise ValueError(
                    f"MCP server {server.name}: adapters name tools it does not offer: "
                    f"{', '.join(sorted(unknown))}"
                )
    except BaseException:
        await close_servers(links)
        raise
    return links, tools


async def close_servers(links: Mapping[str, McpLink]) -> None:
    for link in links.values():
        with contextlib.suppress(Exception):
            await link.stop()


class McpActivities:
    """The activity that runs a call of an imported tool on the worker's link."""

    def __init__(self, links: Mapping[str, McpLink]) -> None:
        self._links = dict(links)

    @activity.defn(name=MCP_TOOL_ACTIVITY)
    async def call_mcp_tool(self, call: McpToolCall) -> dict[str, Any]:
        link = self._links.get(call.server)
        if link is None:
            raise ApplicationError(
                f"this worker runs no MCP server {call.server!r}", non_retryable=True
            )
        try:
            result = await link.call(call.tool, call.arguments)
        except ServerDown as err:
            # Retryable: the link is opening a new connection for the next attempt.
            raise ApplicationError(str(err), type="McpServerDown") from None
        except MCPError as err:
            raise ApplicationError(
                f"MCP server {call.server} refused the call: {err.message}",
                type=TOOL_ERROR,
                non_retryable=True,
            ) from None
        if result.is_error:
            raise ApplicationError(_text(result) or "the tool failed", type=TOOL_ERROR,
                                   non_retryable=True)  # fmt: skip
        if result.structured_content is not None:
            return dict(result.structured_content)
        return {"text": _text(result)}


def _text(result: mcp_types.CallToolResult) -> str:
    parts = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        else:
            parts.append(f"[{block.type} content]")
    return "\n".join(parts)
