"""The recorder team: no contract, no handler, one MCP server.

The server records each call in the file ``RECORDER_LOG`` names, so tests can
count the calls that ran and completed, whatever happened to the process.
"""

from __future__ import annotations

import os
from pathlib import Path

from meshkit.toolkit import ApprovalPolicy, TeamRegistration, ToolHints, ToolPolicy
from meshkit.toolkit.mcp_servers import McpServer

ROOT = Path(__file__).resolve().parents[3]

POLICIES = {
    "record": ToolPolicy(timeout_s=60),
    "spend": ToolPolicy(approval=ApprovalPolicy(above=100, field="amount", reason="Money.")),
}

HINTS = {"record": ToolHints(examples=["Record a call named {key}"], reply=["Recorded {key}"])}


def register(log: Path | None = None) -> TeamRegistration:
    log = log or Path(os.environ.get("RECORDER_LOG", "recorder-calls.log"))
    server = McpServer(
        name="recorder",
        stdio=["python", "-m", "tests.mcp_recorder", str(log)],
        cwd=str(ROOT),
        # A call in flight when the test kills the server is tried again soon.
        attempt_timeout_s=20,
    )
    return TeamRegistration(handler=None, policies=POLICIES, hints=HINTS, mcp_servers=[server])
