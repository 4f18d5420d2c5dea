"""The MCP gateway's short workflows, run by the orchestrator worker.

Server 1.29.1 has no standalone Nexus operations (a client cannot call an
operation outside a workflow), so each MCP tool call is a short workflow in
the orchestrator's namespace that calls the team's operation: it shows in the
Temporal UI, its Nexus call is retried and timed out as the team's catalog
says, and its id (the call's idempotency key) makes a retried call the same
call. The team's door sees an ordinary caller workflow of the orchestrator's
namespace, so the team's ``callers`` list decides as it does for sessions.

Both workflows are pinned: they last seconds, and end on the build that
started them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import NexusOperationError

with workflow.unsafe.imports_passed_through():
    import nexusrpc

    from meshkit.toolkit.catalog import call_headers
    from orchestrator import catalogs
    from orchestrator.contract import SessionConfig
    from orchestrator.failures import root_message
    from orchestrator.gateway.calls import (
        CALL_WORKFLOW,
        CATALOGS_WORKFLOW,
        CallOutcome,
        CatalogRequest,
        GatewayCall,
        GatewayCatalogs,
    )
    from orchestrator.tools import readable


@workflow.defn(name=CALL_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class McpToolCall:
    """One team operation, called for an MCP client."""

    @workflow.run
    async def run(self, call: GatewayCall) -> CallOutcome:
        headers = call_headers(workflow.info().workflow_id, call_id=workflow.info().workflow_id)
        if call.approval is not None:
            headers.update(call.approval.header())
        client = workflow.create_nexus_client(
            service=call.route.service, endpoint=call.route.endpoint
        )
        try:
            result: Any = await client.execute_operation(
                call.operation,
                call.arguments,
                # Without a schedule-to-close timeout a failing operation is retried forever.
                schedule_to_close_timeout=timedelta(seconds=call.timeout_s),
                cancellation_type=workflow.NexusOperationCancellationType.WAIT_COMPLETED,
                headers=headers,
                summary=f"{call.team}: {call.operation} for {call.user}",
            )
        except NexusOperationError as err:
            # The team's refusal is the call's answer, not the workflow's failure:
            # the client gets the team's words, and retrying cannot change them.
            return CallOutcome(
                ok=False, error=readable(root_message(err)), error_type=_handler_error_type(err)
            )
        return CallOutcome(ok=True, result=result)


@workflow.defn(name=CATALOGS_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class McpCatalogs:
    """Every team's catalog, asked at once, as a session asks at a turn's start."""

    @workflow.run
    async def run(self, request: CatalogRequest) -> GatewayCatalogs:
        config = SessionConfig(teams=request.teams, catalog_timeout_s=request.timeout_s)
        # Every team is asked (stale: due now); one that only times out keeps
        # the catalog the gateway had, until catalog_misses timeouts in a row.
        cache = {
            team: state.model_copy(update={"stale": True})
            for team, state in request.cached.items()
            if team in request.teams
        }
        first_contact = workflow.patched(catalogs.FIRST_CONTACT_PATCH)
        unavailable = await catalogs.refresh(config, cache, first_contact=first_contact)
        return GatewayCatalogs(
            catalogs={
                team: state.catalog
                for team, state in cache.items()
                if state.available and state.catalog is not None
            },
            unavailable=unavailable,
            states=cache,
        )


def _handler_error_type(err: BaseException) -> str | None:
    current: BaseException | None = err
    while current is not None:
        if isinstance(current, nexusrpc.HandlerError):
            return current.type.name
        current = getattr(current, "cause", None) or current.__cause__
    return None
