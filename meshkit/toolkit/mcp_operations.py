"""Imported MCP tools as operations of the team's own Nexus service.

Callers call a tool by its name: the orchestrator (and any other caller)
runs ``execute_operation(<tool name>, arguments)`` on the team's service, and
the team's door looks the policy up by the operation's name. So each imported
tool becomes an operation of that name, added at worker start to the team's
handler class, beside its hand-written operations. Each operation starts the
tool's workflow (:mod:`meshkit.toolkit.mcp_workflow`) in the team's namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexusrpc.handler import service_handler
from temporalio import nexus

from meshkit.toolkit.mcp_servers import ImportedTool
from meshkit.toolkit.mcp_workflow import McpToolCall, McpToolWorkflow
from meshkit.toolkit.policy import DEFAULT_POLICY
from meshkit.toolkit.team import TeamServiceHandler


def with_imported_tools(
    handler: TeamServiceHandler, service: str, tools: Mapping[str, ImportedTool]
) -> TeamServiceHandler:
    """``handler``, serving ``service`` with one more operation per imported tool."""
    if not tools:
        return handler
    methods = {
        f"mcp_tool_{n}": _operation(f"mcp_tool_{n}", tool) for n, tool in enumerate(tools.values())
    }
    cls = type(f"{type(handler).__name__}WithMcp", (type(handler),), methods)
    # No `service=` contract: the service definition is derived from the
    # operations, the hand-written ones (inherited) and the imported ones.
    served: type[TeamServiceHandler] = service_handler(name=service)(cls)
    # The instance was built by the team's own factory (which may take more
    # than the team's context); it only gains methods, so its class changes.
    handler.__class__ = served
    return handler


def _operation(method: str, tool: ImportedTool) -> Any:
    name = tool.entry.name
    optional = set(tool.entry.optional)
    adapt = tool.server.adapt.get(name)

    # `self` stays unannotated: the operation decorator reads the types of the
    # other two parameters as the operation's input and output.
    async def start(  # type: ignore[no-untyped-def]
        self, ctx: nexus.WorkflowRunOperationContext, input: dict[str, Any]
    ) -> nexus.WorkflowHandle[dict[str, Any]]:
        # A strict schema makes optional arguments nullable; the server wants them left out.
        arguments = {k: v for k, v in input.items() if not (v is None and k in optional)}
        if adapt is not None:
            arguments = adapt(arguments)
        policy = self.team.policies.get(name, DEFAULT_POLICY)
        call = McpToolCall(
            server=tool.server.name,
            tool=name,
            arguments=arguments,
            timeout_s=policy.timeout_s,
            attempt_timeout_s=tool.server.attempt_timeout_s,
        )
        # A retried start carries the same request id: one workflow per call.
        return await ctx.start_workflow(
            McpToolWorkflow.run,
            call,
            id=f"mcp-{name}-{ctx.request_id}",
            task_queue=self.team.task_queue,
        )

    # The service definition keys operations by method name: each needs its own.
    start.__name__ = start.__qualname__ = method
    start.__doc__ = tool.entry.description
    return nexus.workflow_run_operation(name=name)(start)
