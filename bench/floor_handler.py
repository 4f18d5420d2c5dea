"""The floor's Nexus service handler, hosted by the bench worker of the "it"
namespace, as a team's handler is by its own worker."""

from __future__ import annotations

from nexusrpc.handler import StartOperationContext, service_handler, sync_operation
from temporalio import nexus

from bench.floor_contract import BenchService
from bench.floor_workflows import BenchEchoWorkflow


@service_handler(service=BenchService)
class BenchServiceHandler:
    def __init__(self, task_queue: str) -> None:
        self._task_queue = task_queue

    @sync_operation
    async def echo(self, ctx: StartOperationContext, input: str) -> str:
        return input

    @nexus.workflow_run_operation
    async def echo_workflow(
        self, ctx: nexus.WorkflowRunOperationContext, input: str
    ) -> nexus.WorkflowHandle[str]:
        # Id from the request id, as the teams' handlers do.
        return await ctx.start_workflow(
            BenchEchoWorkflow.run,
            input,
            id=f"bench-echo-{ctx.request_id}",
            task_queue=self._task_queue,
        )
