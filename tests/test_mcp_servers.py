"""A team publishes an MCP server it already runs, as tools of its own.

IT publishes the reference time server (``mcp-server-time``) with no contract:
its worker starts the server, lists its tools and serves them in its catalog
with strict schemas and IT's policies, and sessions reach them by phrasing or
by name. A test team publishes a server that records every call
(tests/mcp_recorder.py): killing the server during a call leaves the call to
complete once on a new process, and a namespace the team does not accept is
refused at its door, as for a hand-written operation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client

from meshkit import team_worker
from meshkit.mesh import Mesh, TeamConfig, connect
from meshkit.polling import poll_until
from meshkit.setup import setup_mesh
from meshkit.toolkit.catalog import ToolCatalog, strict_schema_problems
from meshkit.toolkit.mcp_servers import (
    McpActivities,
    McpServer,
    ServerDown,
    close_servers,
    open_servers,
)
from meshkit.toolkit.mcp_workflow import McpToolCall
from meshkit.versioning import wait_current, worker_version
from orchestrator.contract import ChatReply, SessionConfig
from orchestrator.session_client import SessionClient
from services.it.contract import POLICIES
from services.it.team import register as register_it
from tests.teams.recorder.team import register as register_recorder
from tests.test_team_ownership import Caller, caller_in, record_for


async def served_catalog(
    mesh: Mesh, team: str, registration: team_worker.TeamRegistration
) -> ToolCatalog:
    """The catalog the team's worker serves, built as the worker builds it at start."""
    handler, links = await team_worker.serve_mcp_tools(mesh, team, registration)
    try:
        return handler.served_catalog()
    finally:
        await close_servers(links)


async def test_the_time_servers_tools_join_its_catalog_with_strict_schemas_and_its_policy(
    mesh: Mesh,
) -> None:
    catalog = await served_catalog(mesh, "it", register_it())
    names = {tool.name for tool in catalog.tools}
    assert {"get_ip", "jira_metrics", "create_ticket"} < names
    time = catalog.entry("get_current_time")
    assert time is not None and catalog.entry("convert_time") is not None
    assert strict_schema_problems(time.input_schema) == []
    assert time.input_schema["required"] == ["timezone"]
    assert "IANA timezone" in time.input_schema["properties"]["timezone"]["description"]
    assert set(time.output_schema["properties"]) >= {"timezone", "datetime", "day_of_week"}
    assert time.kind == "workflow" and time.timeout_s == POLICIES["get_current_time"].timeout_s
    assert time.hints is not None and "What time is it in {timezone}?" in time.hints.examples


async def test_a_tool_whose_schema_cannot_be_strict_is_left_out_with_the_reason_logged(
    mesh: Mesh, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meshkit.mcp")
    catalog = await served_catalog(mesh, "it", register_recorder(tmp_path / "calls.log"))
    assert [tool.name for tool in catalog.tools] == ["record", "spend"]
    record = catalog.entry("record")
    assert record is not None and strict_schema_problems(record.input_schema) == []
    # An optional argument is required but nullable in strict form, and dropped when null.
    assert record.optional == ["note"]
    [left_out] = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert "tool label left out" in left_out and "open to any property" in left_out


# --- through a session -----------------------------------------------------------------


async def ask(client: Client, mesh: Mesh, text: str) -> ChatReply:
    config = SessionConfig.for_mesh(mesh, model="offline")
    handle = await SessionClient(client, mesh).open(f"mcp-{uuid.uuid4().hex[:8]}", config=config)
    return await handle.send(text, timeout_s=60)


async def test_what_time_it_is_in_a_city_is_answered_by_the_time_server_it_publishes(
    client: Client, running_mesh: Mesh
) -> None:
    reply = await ask(client, running_mesh, "What time is it in Tokyo?")
    assert reply.ok, reply.text
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("get_current_time", "it", True)]
    # IT turned the city into the zone the server takes; the server answered for it.
    assert "in Asia/Tokyo (" in reply.text and "+09:00" in reply.text


async def test_the_time_servers_tool_is_called_by_name(client: Client, running_mesh: Mesh) -> None:
    reply = await ask(client, running_mesh, "get_current_time timezone=Europe/London")
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("get_current_time", "it", True)]
    assert "in Europe/London (" in reply.text


async def test_the_servers_own_refusal_comes_back_as_the_tools_error(
    client: Client, running_mesh: Mesh
) -> None:
    reply = await ask(client, running_mesh, "get_current_time timezone=Atlantis/Nowhere")
    [call] = reply.tools
    assert (call.name, call.ok) == ("get_current_time", False)
    assert "Invalid timezone" in (call.error or ""), call.error


# --- a team of the test's own: the recorder ------------------------------------------------


@dataclass
class Recorder:
    mesh: Mesh
    log: Path

    def lines(self, kind: str, key: str) -> list[str]:
        text = self.log.read_text() if self.log.exists() else ""
        return [
            line
            for line in text.splitlines()
            if line.split()[0] == kind and line.endswith(f" {key}")
        ]


@pytest_asyncio.fixture(scope="module")
async def recorder(
    running_mesh: Mesh, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Recorder]:
    """The recorder team set up in namespaces of its own, its worker running in this process."""
    suffix = uuid.uuid4().hex[:6]
    log = tmp_path_factory.mktemp("recorder") / "calls.log"
    team = TeamConfig(
        namespace=f"rec-{suffix}",
        task_queue=f"rec-{suffix}",
        service="RecorderService",
        endpoint=f"rec-{suffix}",
        package="tests.teams.recorder",
    )
    mesh = running_mesh.model_copy(update={"teams": {**running_mesh.teams, "rec": team}})
    await setup_mesh(mesh)
    stop = asyncio.Event()
    worker = asyncio.create_task(team_worker.main(mesh, "rec", register_recorder(log), stop=stop))
    await wait_current(await connect(mesh, team), worker_version(team))
    yield Recorder(mesh, log)
    stop.set()
    await worker


async def test_a_call_whose_server_is_killed_midway_completes_once_on_a_new_process(
    client: Client, recorder: Recorder
) -> None:
    key = f"slow-{uuid.uuid4().hex[:6]}"
    go = recorder.log.with_name(recorder.log.name + ".go")
    go.unlink(missing_ok=True)
    sending = asyncio.ensure_future(ask(client, recorder.mesh, f"record key={key}"))
    [started] = await poll_until(
        lambda: recorder.lines("start", key) or None, timeout_s=60, what="the call did not start"
    )
    first = int(started.split()[1])
    os.kill(first, signal.SIGKILL)
    go.touch()
    reply = await sending
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("record", "rec", True)], reply
    starts, done = recorder.lines("start", key), recorder.lines("done", key)
    # Started on the killed process and again on its successor; completed once, there.
    assert len(starts) == 2 and len(done) == 1, (starts, done)
    second = int(done[0].split()[1])
    assert second != first and starts[1].split()[1] == str(second)
    assert f"Recorded {key}" in reply.text


async def test_a_call_of_an_imported_tool_is_refused_to_a_namespace_the_team_does_not_accept(
    running_mesh: Mesh, recorder: Recorder
) -> None:
    key = f"refused-{uuid.uuid4().hex[:6]}"
    finance = running_mesh.team("finance").namespace
    callers: AsyncIterator[Caller] = caller_in(recorder.mesh, finance)
    caller = await anext(callers)
    try:
        refused = await caller.call(recorder.mesh, "rec", "record", {"key": key})
    finally:
        await callers.aclose()
    assert refused == (
        f"refused: namespace {finance} may not call team rec "
        f"(accepted: {running_mesh.orchestrator.namespace})"
    )
    assert recorder.lines("start", key) == []
    refused_time = None
    callers = caller_in(running_mesh, finance)
    caller = await anext(callers)
    try:
        refused_time = await caller.call(
            running_mesh, "it", "get_current_time", {"timezone": "UTC"}
        )
    finally:
        await callers.aclose()
    assert refused_time.startswith(f"refused: namespace {finance} may not call team it")


async def test_an_imported_tool_needing_approval_runs_only_with_a_record_for_its_arguments(
    running_mesh: Mesh, recorder: Recorder
) -> None:
    key = f"spend-{uuid.uuid4().hex[:6]}"
    arguments = {"key": key, "amount": 500}
    callers = caller_in(recorder.mesh, running_mesh.orchestrator.namespace)
    caller = await anext(callers)
    try:
        unapproved = await caller.call(recorder.mesh, "rec", "spend", arguments)
        other = record_for("spend", {**arguments, "amount": 50}).header()
        mismatched = await caller.call(recorder.mesh, "rec", "spend", arguments, **other)
        assert recorder.lines("spend", key) == []
        approved = await caller.call(
            recorder.mesh, "rec", "spend", arguments, **record_for("spend", arguments).header()
        )
    finally:
        await callers.aclose()
    assert unapproved.startswith("refused: spend needs a person's approval (Money.)"), unapproved
    assert "differ from the ones carol approved" in mismatched, mismatched
    assert approved.startswith("ok: ") and key in approved
    assert len(recorder.lines("spend", key)) == 1


# --- the declaration, and a server reached by URL ---------------------------------------


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": "Time Server", "stdio": ["x"]}, "lower-case"),
        ({"name": "time"}, "either stdio"),
        ({"name": "time", "stdio": ["x"], "url": "http://h/mcp"}, "either stdio"),
        ({"name": "time", "url": "ftp://h/mcp"}, "must be http"),
        ({"name": "time", "stdio": ["x"], "attempt_timeout_s": 0}, "positive"),
    ],
)
def test_a_server_declaration_that_cannot_work_is_refused_when_written(
    fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        McpServer(**fields)


async def test_a_server_reached_by_its_streamable_http_url_serves_the_same_tools(
    tmp_path: Path,
) -> None:
    import uvicorn

    from meshdev.dev_server import free_port
    from tests.mcp_recorder import create_server

    log = tmp_path / "calls.log"
    port = free_port()
    app = create_server(log).streamable_http_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.ensure_future(server.serve())
    await poll_until(lambda: server.started or None, timeout_s=30, what="the server did not start")
    try:
        declared = McpServer(name="web", url=f"http://127.0.0.1:{port}/mcp")
        links, tools = await open_servers([declared], set())
        try:
            assert sorted(tools) == ["record", "spend"]
            result = await McpActivities(links).call_mcp_tool(
                McpToolCall(
                    server="web",
                    tool="record",
                    arguments={"key": "over-http"},
                    timeout_s=30,
                    attempt_timeout_s=30,
                )
            )
        finally:
            await close_servers(links)
    finally:
        server.should_exit = True
        await serving
    assert result == {"key": "over-http", "pid": os.getpid()}
    assert log.read_text().split("\n")[-2] == f"done {os.getpid()} over-http"


async def test_a_server_that_does_not_start_stops_the_worker_at_once_saying_so() -> None:
    broken = McpServer(name="broken", stdio=["python", "-m", "tests.no_such_server"])
    with pytest.raises(ServerDown, match="MCP server broken did not start"):
        await open_servers([broken], set())
