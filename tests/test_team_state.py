"""A team tool keeps state per chat session in a workflow of the team's own.

IT's ``set_project`` remembers the Jira project a chat chose, in a workflow in
IT's namespace keyed by the calling session's workflow id; ``create_ticket``
without a project files the ticket there. Another session does not see the
choice, and a restart of IT's worker (kill -9) does not lose it. The workers
are processes of a mesh of the test's own, so killing IT's touches no other test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import nexusrpc
import pytest
import pytest_asyncio
from temporalio.client import Client

from meshkit.mesh import Mesh, connect
from meshkit.toolkit.door import WORKFLOW_EVENT_LINK, caller_workflow
from orchestrator.contract import ApprovalDecision, PendingApproval, SessionConfig
from orchestrator.session import Session
from orchestrator.session_client import SessionClient
from services.it.projects import ProjectChoiceWorkflow, choice_workflow_id, chosen_project
from tests.helpers import it_replayer
from tests.processes import OwnMesh, own_mesh

session_loop = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def workers(
    running_mesh: Mesh, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[OwnMesh]:
    directory = tmp_path_factory.mktemp("state")
    async with own_mesh(running_mesh, directory, "state", teams=["it"]) as own:
        await own.start_all()
        yield own


async def new_session(client: Client, own: OwnMesh) -> Session:
    config = SessionConfig.for_mesh(own.mesh, model="offline")
    return await SessionClient(client, own.mesh).open(
        f"state-{uuid.uuid4().hex[:8]}", config=config
    )


async def approve(pending: PendingApproval) -> ApprovalDecision:
    return ApprovalDecision(approve=True, by="erin")


def new_project() -> str:
    """A project key no other test uses, so its tickets are this test's."""
    return "S" + uuid.uuid4().hex[:6].upper()


@session_loop
async def test_a_project_chosen_once_is_used_by_later_tickets_of_that_chat_only(
    client: Client, workers: OwnMesh
) -> None:
    project = new_project()
    chat = await new_session(client, workers)
    chosen = await chat.send(f"Use project {project} from now on", 60)
    assert chosen.ok and [(t.name, t.ok) for t in chosen.tools] == [("set_project", True)]
    assert project in chosen.text

    ticket = await chat.send("Create a ticket: the printer is jammed", 60, approver=approve)
    assert ticket.ok and [(t.name, t.ok) for t in ticket.tools] == [("create_ticket", True)]
    assert f"Created ticket {project}-" in ticket.text and f"in {project}:" in ticket.text

    # A ticket that names its project still goes there, choice or not.
    named = await chat.send("Create a ticket in OPS: the fax is jammed", 60, approver=approve)
    assert "Created ticket OPS-" in named.text, named.text

    other = await new_session(client, workers)
    refused = await other.send("Create a ticket: the scanner is jammed", 60, approver=approve)
    [call] = refused.tools
    assert call.name == "create_ticket" and not call.ok
    assert call.error is not None and "has chosen none" in call.error, call.error
    assert project not in refused.text


@session_loop
async def test_a_chosen_project_survives_a_restart_of_its_teams_worker(
    client: Client, workers: OwnMesh
) -> None:
    project = new_project()
    chat = await new_session(client, workers)
    chosen = await chat.send(f"Use project {project} from now on", 60)
    assert chosen.ok and [t.name for t in chosen.tools] == ["set_project"]

    await workers["it"].restart_after_kill()

    ticket = await chat.send("Open a ticket about a broken monitor", 90, approver=approve)
    assert ticket.ok and f"in {project}:" in ticket.text, ticket.text

    # The choice is one running workflow in IT's namespace, keyed by the session.
    mesh = workers.mesh
    it = await connect(mesh, mesh.team("it"))
    state = it.get_workflow_handle(choice_workflow_id(mesh.orchestrator.namespace, chat.id))
    assert await state.query(ProjectChoiceWorkflow.project) == project
    # It replays in the workflow sandbox, as IT's other workflows do.
    await it_replayer().replay_workflow(await state.fetch_history())


@session_loop
async def test_a_choice_ends_after_its_idle_period_and_a_later_ticket_then_names_none(
    workers: OwnMesh,
) -> None:
    mesh = workers.mesh
    it = await connect(mesh, mesh.team("it"))
    caller = (mesh.orchestrator.namespace, f"idle-{uuid.uuid4().hex[:8]}")
    state = await it.start_workflow(
        ProjectChoiceWorkflow.run,
        args=[1.0, None],
        id=choice_workflow_id(*caller),
        task_queue=mesh.team("it").task_queue,
    )
    await state.execute_update(ProjectChoiceWorkflow.choose, "OPS")
    assert await chosen_project(it, caller) == "OPS"

    await state.result()
    assert await chosen_project(it, caller) is None
    assert await state.query(ProjectChoiceWorkflow.project) is None
    await it_replayer().replay_workflow(await state.fetch_history())


def link(url: str) -> nexusrpc.Link:
    return nexusrpc.Link(url=url, type=WORKFLOW_EVENT_LINK)


SESSION_EVENT = "temporal:///namespaces/orchestrator/workflows/chat-1/run-a/history?eventID=5"


@pytest.mark.parametrize(
    ("links", "caller"),
    [
        ([link(SESSION_EVENT)], ("orchestrator", "chat-1")),
        # Two events of one workflow (e.g. two runs of a session) are one caller.
        (
            [link(SESSION_EVENT), link(SESSION_EVENT.replace("run-a", "run-b"))],
            ("orchestrator", "chat-1"),
        ),
        ([link(SESSION_EVENT), link(SESSION_EVENT.replace("chat-1", "chat-2"))], None),
        ([link("temporal:///namespaces/orchestrator")], None),
        ([nexusrpc.Link(url=SESSION_EVENT, type="something.Else")], None),
        ([], None),
    ],
)
def test_the_caller_is_the_one_workflow_the_server_linked(
    links: list[nexusrpc.Link], caller: tuple[str, str] | None
) -> None:
    assert caller_workflow(links) == caller
