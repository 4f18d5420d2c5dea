"""A turn's time-based decisions replay the same however its workflow tasks were cut;
and a session carries its whole state into its next run.

When a Query reaches a session while the workflow task that runs the turn's
first local activity (the model plan) waits for a worker, the worker gets the
Query with that task, answers it by completing the task early, and hands the
local activity's result to the workflow in the next task, whose start time is
then ``workflow.now()``. A replay hands the result over within the first task,
at the activity's completion time. A catalog time read there would differ
between the run and its replay (a recorded soak history failed to replay with
"Missing associated machine for LocalActivity(19)" when the next fetch of a
catalog fell due between the two). The turn's clock is the time its message
was accepted (``orchestrator.turn_clock.TURN_CLOCK_PATCH``).

The session here fills its history until it continues as new, so its state,
catalog times included, can be read from the next run's input.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle, WorkflowHistory

from meshkit.mesh import Mesh, connect
from orchestrator.contract import (
    END,
    SEND_MESSAGE,
    STATUS,
    ChatReply,
    ChatRequest,
    SessionConfig,
)
from orchestrator.models.provider import LlmSettings, MeshModelProvider
from orchestrator.session_types import SessionState
from orchestrator.worker import agent_plugins
from tests.helpers import UnversionedSession, own_team_routes, replayer, session_worker
from tests.reliability import count

pytestmark = pytest.mark.asyncio

# Long messages fill the run's history, so that it continues as new after a
# few turns and its state (with the catalogs' times) is in the next run's input.
FILLER = "x" * 7_000


def _time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


def _at(instant: datetime | None, expected: datetime) -> bool:
    # The same instant: protobuf truncates an event's nanoseconds to
    # microseconds, the SDK's workflow.now() rounds them.
    return instant is not None and abs(instant - expected) < timedelta(milliseconds=1)


def _local_activity(event: HistoryEvent) -> str | None:
    """The activity type of a local activity's marker."""
    details = event.marker_recorded_event_attributes.details
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED or "data" not in details:
        return None
    return json.loads(details["data"].payloads[0].data)["activity_type"]


def _first(events: list[HistoryEvent], kind: int, after: int = 0) -> int:
    return next(i for i, e in enumerate(events) if i >= after and e.event_type == kind)


async def _status(handle: WorkflowHandle) -> object:
    return await handle.query(STATUS)


@dataclass
class Recorded:
    events: list[HistoryEvent]  # the first run's
    history: WorkflowHistory
    carried: SessionState  # the state the next run started with


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def recorded(running_mesh: Mesh) -> Recorded:
    """A session whose first message and a Query wait for its first workflow task,
    run until it continues as new."""
    provider = MeshModelProvider(LlmSettings(model="offline"))
    client = await connect(running_mesh, running_mesh.orchestrator, plugins=agent_plugins(provider))
    queue = f"turn-clock-{uuid.uuid4().hex[:6]}"
    base = SessionConfig.for_mesh(
        running_mesh,
        model="offline",
        catalog_ttl_s=3600,
        model_plan_ttl_s=3600,
        max_run_history_bytes=50_000,
    )
    # Routes of its own: the session fetches its catalogs itself, and no other
    # session of this process puts them into the worker's store meanwhile.
    async with own_team_routes(client, running_mesh, base) as config:
        # No worker polls the queue yet: the message and the Query arrive with
        # the session's first workflow task.
        handle = await client.start_workflow(
            UnversionedSession.run, SessionState(config=config), id=queue, task_queue=queue
        )
        first = asyncio.create_task(
            handle.execute_update(
                SEND_MESSAGE, ChatRequest(text="hello"), id="m0", result_type=ChatReply
            )
        )
        await asyncio.sleep(1)
        query = asyncio.create_task(_status(handle))
        await asyncio.sleep(1)
        async with session_worker(client, queue, provider):
            await query
            assert (await first).ok
            for n in range(1, 20):
                reply = await handle.execute_update(
                    SEND_MESSAGE,
                    ChatRequest(text=f"hello {n} {FILLER}"),
                    id=f"m{n}",
                    result_type=ChatReply,
                )
                assert reply.ok
                if len([r async for r in client.list_workflows(f"WorkflowId = '{queue}'")]) > 1:
                    break
            else:
                pytest.fail("the session never continued as new")
            await client.get_workflow_handle(queue).execute_update(END)
    count("turns", n + 1)
    first_run = client.get_workflow_handle(queue, run_id=handle.first_execution_run_id)
    history = await first_run.fetch_history()
    events = list(history.events)
    continued = events[-1].workflow_execution_continued_as_new_event_attributes
    carried = SessionState.model_validate_json(continued.input.payloads[0].data)
    return Recorded(events, history, carried)


async def test_a_catalog_fetch_is_timed_by_its_message_not_by_how_the_worker_cut_the_task(
    recorded: Recorded, running_mesh: Mesh
) -> None:
    events = recorded.events
    accepted = _first(events, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    plan = next(
        i for i, e in enumerate(events) if i > accepted and _local_activity(e) == "model_plan"
    )
    fetch = _first(events, EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED, accepted)
    assert any(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in events[plan:fetch]
    ), "the worker answers the Query by completing the task before the catalogs are fetched"
    # The catalogs were fetched in a later task; the turn's clock is still the
    # start of the task that delivered the message.
    delivered = max(
        i
        for i in range(accepted)
        if events[i].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    )
    message_time = _time(events[delivered])
    carried = recorded.carried
    fetched = {team: known.fetched_at for team, known in carried.catalogs.items()}
    assert set(fetched) == set(running_mesh.teams), fetched
    assert all(_at(at, message_time) for at in fetched.values()), (fetched, message_time)
    assert carried.model_plan is not None and _at(carried.model_plan.asked_at, message_time)
    await replayer().replay_workflow(recorded.history)


async def test_a_session_carries_its_turns_and_answered_messages_into_its_next_run(
    recorded: Recorded,
) -> None:
    carried = recorded.carried
    assert carried.turn_count == len(carried.turns) > 1
    assert "m0" in carried.answered, "a message sent again after continue-as-new is answered"
    assert carried.tools_by_location == {} and carried.runs == 2
