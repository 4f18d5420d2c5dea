"""The gateway's one door to Temporal: run this call, fetch these catalogs.

Today each is a short workflow of the orchestrator's namespace
(:mod:`orchestrator.gateway.workflows`), because server 1.29.1 runs no
standalone Nexus operation. When the server does, a standalone operation
with the same id can replace the workflow here, and nothing else in the
gateway changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from orchestrator.contract import TeamRoute
from orchestrator.failures import root_message
from orchestrator.gateway.calls import (
    CALL_WORKFLOW,
    CATALOGS_PREFIX,
    CATALOGS_WORKFLOW,
    CallOutcome,
    CatalogRequest,
    GatewayCall,
    GatewayCatalogs,
    call_workflow_id,
)
from orchestrator.session_types import CatalogState

# A call's workflow waits for the team's operation; this bounds the workflow
# itself beyond the operation's own timeout, so a lost worker cannot hold a
# client forever.
_RUN_MARGIN_S = 60.0
# A catalog's workflow gets this long beyond the teams' own timeout.
_CATALOG_MARGIN_S = 5.0


class DurableCalls:
    """Runs the gateway's calls as workflows of ``task_queue``'s namespace."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def call(self, call: GatewayCall, key: str) -> CallOutcome:
        """Run ``call`` once per (user, ``key``): a second call with one key,
        while the first runs or after it ended, gets the first one's outcome."""
        workflow_id = call_workflow_id(call.user, key)
        try:
            handle = await self.client.start_workflow(
                CALL_WORKFLOW,
                call,
                id=workflow_id,
                task_queue=self.task_queue,
                result_type=CallOutcome,
                # A retry while the call runs attaches to it ...
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                # ... and one after it ended must not start it again.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                execution_timeout=_timeout(call.timeout_s),
                memo={"user": call.user, "tool": f"{call.team}.{call.operation}"},
            )
        except WorkflowAlreadyStartedError:
            handle = self.client.get_workflow_handle(workflow_id, result_type=CallOutcome)
        try:
            return await handle.result()
        except WorkflowFailureError as err:
            return CallOutcome(ok=False, error=f"the call did not finish: {root_message(err)}")

    async def catalogs(
        self,
        teams: dict[str, TeamRoute],
        timeout_s: float,
        cached: dict[str, CatalogState] | None = None,
    ) -> GatewayCatalogs:
        """Every team's catalog; a team that does not answer within ``timeout_s`` is
        named in ``unavailable``, unless ``cached`` holds its catalog and it has not
        timed out too often (see :mod:`orchestrator.catalogs`). Each team is asked by
        a workflow of its own: an endpoint the server does not know fails that
        workflow's task until it times out, and must not hold up the other teams."""
        asked = await asyncio.gather(
            *(
                self._catalog(team, route, timeout_s, (cached or {}).get(team))
                for team, route in teams.items()
            )
        )
        merged = GatewayCatalogs()
        for one in asked:
            merged.catalogs.update(one.catalogs)
            merged.unavailable.update(one.unavailable)
            merged.states.update(one.states)
        return merged

    async def _catalog(
        self, team: str, route: TeamRoute, timeout_s: float, cached: CatalogState | None
    ) -> GatewayCatalogs:
        handle = await self.client.start_workflow(
            CATALOGS_WORKFLOW,
            CatalogRequest(
                teams={team: route},
                timeout_s=timeout_s,
                cached={team: cached} if cached else {},
            ),
            id=f"{CATALOGS_PREFIX}{team}-{uuid.uuid4().hex[:12]}",
            task_queue=self.task_queue,
            result_type=GatewayCatalogs,
            execution_timeout=timedelta(seconds=timeout_s + _CATALOG_MARGIN_S),
        )
        try:
            return await asyncio.wait_for(handle.result(), timeout_s + _CATALOG_MARGIN_S)
        except (TimeoutError, WorkflowFailureError) as err:
            with contextlib.suppress(RPCError):
                await handle.terminate("the gateway stopped waiting for this catalog")
            reason = "no answer" if isinstance(err, TimeoutError) else root_message(err)
            return GatewayCatalogs(unavailable={team: f"its catalog was not fetched: {reason}"})


def _timeout(seconds: float) -> timedelta:
    return timedelta(seconds=seconds + _RUN_MARGIN_S)
