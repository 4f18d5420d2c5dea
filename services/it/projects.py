"""The Jira project a chat session chose, kept in a workflow of IT's own.

One ``ProjectChoiceWorkflow`` per calling workflow, in IT's namespace: its id
is derived from the caller's namespace and workflow id as the server links
them to the Nexus request (:func:`meshkit.toolkit.door.caller_workflow`), never
from a header the caller chose, so a session reaches only its own choice. A
chat session keeps one workflow id across its continue-as-new runs, so the
choice lasts the whole chat. An MCP gateway call is a workflow of its own per
call, so a choice made there lasts only that call: MCP clients name the project.

The workflow ends after ``idle`` without a choice or a use of it, so a session
that is abandoned leaves nothing running; a later choice starts it afresh.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from functools import partial

from temporalio import workflow
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import VersioningBehavior, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

IDLE = timedelta(hours=12)
"""How long a chosen project outlives its last use."""

CHOICE_PREFIX = "it-project-"


def choice_workflow_id(namespace: str, workflow_id: str) -> str:
    """The id of the choice of the caller ``workflow_id`` in ``namespace``;
    a digest, so any caller id gives a short id of one form."""
    digest = hashlib.sha256(f"{namespace}\0{workflow_id}".encode()).hexdigest()[:32]
    return f"{CHOICE_PREFIX}{digest}"


# AUTO_UPGRADE, unlike IT's pinned tool calls: this workflow lives for hours,
# and pinned it would hold an old build's worker up for as long after a rollout.
@workflow.defn(name="ProjectChoiceWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class ProjectChoiceWorkflow:
    """Holds one caller's chosen project until it has gone unused for ``idle_s``."""

    def __init__(self) -> None:
        self._project: str | None = None
        self._uses = 0

    @workflow.run
    async def run(self, idle_s: float, project: str | None = None) -> None:
        self._project = self._project or project
        while True:
            seen = self._uses
            try:
                await workflow.wait_condition(
                    partial(self._used_since, seen), timeout=timedelta(seconds=idle_s)
                )
            except TimeoutError:
                break
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(args=[idle_s, self._project])
        await workflow.wait_condition(workflow.all_handlers_finished)
        # A query of the closed run then tells no stale choice.
        self._project = None

    def _used_since(self, seen: int) -> bool:
        return self._uses != seen

    @workflow.update
    def choose(self, project: str) -> str:
        self._project = project
        self._uses += 1
        return project

    @workflow.update
    def use(self) -> str | None:
        """The chosen project, if any; a use keeps the choice alive."""
        self._uses += 1
        return self._project

    @workflow.query
    def project(self) -> str | None:
        return self._project


async def choose_project(
    client: Client, task_queue: str, caller: tuple[str, str], project: str
) -> None:
    """Remember ``project`` for ``caller``, starting its workflow if none runs."""
    handle = await client.start_workflow(
        ProjectChoiceWorkflow.run,
        args=[IDLE.total_seconds(), project],
        id=choice_workflow_id(*caller),
        task_queue=task_queue,
        # A running choice is reused and updated; an ended one starts anew.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await handle.execute_update(ProjectChoiceWorkflow.choose, project)


async def chosen_project(client: Client, caller: tuple[str, str]) -> str | None:
    """The project ``caller`` chose, or None when it chose none or its choice ended."""
    handle = client.get_workflow_handle(choice_workflow_id(*caller))
    try:
        return await handle.execute_update(ProjectChoiceWorkflow.use)
    except RPCError as err:
        # No workflow, or one that has ended: no choice.
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    except WorkflowUpdateFailedError:
        # The run ended while the update was on its way.
        return None
