"""The workflow behind every call of a tool a team imports from an MCP server.

Each call of an imported tool is a Nexus operation of the team's service that
starts this workflow in the team's namespace (its id derives from the Nexus
request id, so a retried start never runs the tool twice). The workflow runs
the tool as an activity of the team's worker, the process that owns the MCP
server: when the server dies mid-call, the activity fails as retryable, the
worker starts the server again, and the retry runs on the new process.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

from meshkit.failover import ACTIVITY_HEARTBEAT

MCP_TOOL_ACTIVITY = "call_mcp_tool"
"""Activity the team worker registers for the tools of its MCP servers."""

TOOL_ERROR = "McpToolError"
"""ApplicationError type of a tool's own refusal (an MCP result with ``isError``)."""


class McpToolCall(BaseModel):
    """One call of an imported MCP tool."""

    server: str = Field(description="The MCP server's name in the team's registration.")
    tool: str = Field(description="The tool's name, as the server lists it.")
    arguments: dict[str, Any] = Field(description="The arguments, as the server takes them.")
    timeout_s: float = Field(gt=0, description="The whole call's limit, from the team's policy.")
    attempt_timeout_s: float = Field(gt=0, description="The limit of one attempt.")


@workflow.defn(name="McpToolCall")
class McpToolWorkflow:
    @workflow.run
    async def run(self, call: McpToolCall) -> dict[str, Any]:
        result: dict[str, Any] = await workflow.execute_activity(
            MCP_TOOL_ACTIVITY,
            call,
            result_type=dict,
            schedule_to_close_timeout=timedelta(seconds=call.timeout_s),
            start_to_close_timeout=timedelta(seconds=min(call.attempt_timeout_s, call.timeout_s)),
            # A call whose worker died is retried on another replica this soon.
            heartbeat_timeout=ACTIVITY_HEARTBEAT,
            # A tool's own refusal is final (non-retryable ApplicationError); a
            # server that died or did not answer is tried again on a new process.
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=200),
                maximum_interval=timedelta(seconds=5),
                maximum_attempts=5,
            ),
            summary=call.tool,
        )
        return result
