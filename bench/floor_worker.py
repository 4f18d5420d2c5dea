"""The floor's workers as processes, laid out as the mesh's are.

``python -m bench.floor_worker caller <task queue>`` runs ``FloorWorkflow`` and
its activity in the orchestrator's namespace, as the orchestrator worker runs
the sessions; ``python -m bench.floor_worker handler <task queue>`` hosts the
bench Nexus service in a team's namespace, as a team's worker hosts its own;
``python -m bench.floor_worker agent <task queue>`` runs the agent floor
(:mod:`bench.floor_agent`) in the orchestrator's namespace.
Each is its own process, with the orchestrator's workflow runner and worker
settings, so the floor pays for the same process boundaries, the same
event loops and the same task slots as the mesh: the floor's throughput at
100 sessions is then what the mesh's could be without the agent.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.floor_handler import BenchServiceHandler
from bench.floor_workflows import BenchEchoWorkflow, FloorWorkflow, noop
from meshkit.mesh import NamespaceConfig, connect, load_mesh
from meshkit.runtime import cli_main, configure_logging, run_worker
from meshkit.tuning import PollerSettings

HANDLER_NAMESPACE = "it"
"""The team namespace that hosts the bench Nexus service."""


class Role(StrEnum):
    CALLER = "caller"
    """Runs the floor's sessions, in the orchestrator's namespace."""
    HANDLER = "handler"
    """Hosts the bench Nexus service, in a team's namespace."""
    AGENT = "agent"
    """Runs the agent floor's sessions (``bench.floor_agent``), in the orchestrator's namespace."""


async def serve(role: Role, task_queue: str) -> None:
    mesh = load_mesh()
    namespace = HANDLER_NAMESPACE if role is Role.HANDLER else mesh.orchestrator.namespace
    target = NamespaceConfig(namespace=namespace, task_queue=task_queue)
    options: dict[str, Any]
    if role is Role.AGENT:
        # Imported here: the other two roles start without the Agents SDK.
        from bench.floor_agent import AgentFloorWorkflow, agent_client_options

        client = await connect(mesh, target, **agent_client_options())
        options = {"workflows": [AgentFloorWorkflow]}
    else:
        client = await connect(mesh, target, data_converter=pydantic_data_converter)
        options = (
            {"workflows": [FloorWorkflow]}
            if role is Role.CALLER
            else {
                "workflows": [BenchEchoWorkflow],
                "nexus_service_handlers": [BenchServiceHandler(task_queue)],
            }
        )
    if role is not Role.HANDLER:
        # As the orchestrator runs its sessions (orchestrator/worker.py).
        options["workflow_runner"] = UnsandboxedWorkflowRunner()
    worker = Worker(
        client,
        task_queue=task_queue,
        activities=[noop],
        graceful_shutdown_timeout=timedelta(seconds=5),
        **options,
        **PollerSettings().worker_options(),
    )
    await run_worker(worker, f"floor {role.value}")


def main(
    role: Annotated[Role, typer.Argument(help="Which of the floor's workers to run.")],
    task_queue: Annotated[str, typer.Argument(help="The task queue to poll.")],
) -> None:
    configure_logging()
    cli_main(f"floor {role.value}", lambda: serve(role, task_queue))


if __name__ == "__main__":
    typer.run(main)
