"""A tool that a team's deploy adds reaches MCP clients of the gateway: the
new Finance build is rolled out as ``scripts/demo deploy finance`` does it
(``python -m meshdev.rollout deploy``), clients of both protocol eras are
told ``notifications/tools/list_changed``, and then list and call the new
tool, with no restart of the gateway.

The test has a mesh of its own (task queues, endpoints and so Worker
Deployments), so its rollout changes nothing the other tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import mcp_types
import pytest
from mcp.client.session import IncomingMessage
from mcp.client.subscriptions import ToolsListChanged

from meshdev.processes import running
from meshdev.rollout import stop_pid
from meshkit.mesh import Mesh
from tests.mcp_clients import connect, own_api
from tests.processes import own_mesh

pytestmark = pytest.mark.asyncio(loop_scope="session")

NEW_TOOL = "simple_interest"
"""The tool Finance's new build (tests/teams/finance_plus) adds."""


async def test_a_tool_added_by_a_deploy_is_listed_after_list_changed(
    running_mesh: Mesh, tmp_path: Path
) -> None:
    async with own_mesh(running_mesh, tmp_path, "mcpdeploy", teams=["finance"]) as own:
        await own.start("orchestrator", {"MESH_BUILD_ID": "o1"})
        first = await own.start("finance", {"MESH_BUILD_ID": "f1"})
        # The demo's run directory: the running build's pid, where the deploy finds it.
        run_dir = tmp_path / "run"
        (run_dir / "logs").mkdir(parents=True)
        (run_dir / "finance.pid").write_text(f"{first.pid}\n")
        finance = own.mesh.team("finance").model_copy(
            update={"package": "tests.teams.finance_plus"}
        )
        new_build = own.write(
            own.mesh.model_copy(update={"teams": {"finance": finance}}), "mesh-plus.toml"
        )
        handshake_told = asyncio.Event()

        async def notified(message: IncomingMessage) -> None:
            if isinstance(message, mcp_types.ToolListChangedNotification):
                handshake_told.set()

        try:
            async with (
                own_api(own.file) as api,
                connect(api, "legacy", message_handler=notified) as handshake,
                connect(api, "2026-07-28") as current,
            ):
                before = {tool.name for tool in (await handshake.list_tools()).tools}
                assert "calculate_roi" in before and NEW_TOOL not in before
                async with current.listen(tools_list_changed=True) as events:
                    deploy = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "meshdev.rollout", "deploy", "finance",
                        "--build-id", "f2", "--run-dir", str(run_dir),
                        env={**os.environ, "MESH_FILE": str(new_build)},
                        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                    )  # fmt: skip
                    out, _ = await asyncio.wait_for(deploy.communicate(), 180)
                    assert deploy.returncode == 0, out.decode()
                    assert b"build f2 is current" in out, out.decode()
                    event = await asyncio.wait_for(anext(events), 60)
                assert isinstance(event, ToolsListChanged)
                await asyncio.wait_for(handshake_told.wait(), 60)
                for client in (handshake, current):
                    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
                    assert NEW_TOOL in tools and "calculate_roi" in tools
                    added = tools[NEW_TOOL]
                    assert added.title == f"{NEW_TOOL} (finance team)"
                    assert added.annotations is not None and added.annotations.read_only_hint
                    result = await client.call_tool(
                        NEW_TOOL, {"principal": 1000, "annual_rate": 5, "years": 2}
                    )
                    assert not result.is_error, result.content
                    assert result.structured_content == {"interest": 100.0}
            assert not first.alive(), "the old build's worker stopped"
        finally:
            await _stop_demo_workers(run_dir, first.pid)


async def _stop_demo_workers(run_dir: Path, started_by_test: int) -> None:
    """Stop the workers the deploy started (the test stops its own), found by
    the demo's pidfiles: the current build's, and a new build's if it failed."""
    for pidfile in run_dir.glob("finance*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            if pid != started_by_test and running(pid):
                await stop_pid(pid)
