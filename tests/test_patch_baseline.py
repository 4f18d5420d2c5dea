"""A new session records the baseline patch, not each it covers; older runs ask each.

Each patch a session asks writes a marker and a ``TemporalChangeVersion``
upsert. A run that begins with ``BASELINE_PATCH`` asks none of the patches
in the baseline (``orchestrator.turn_clock``). A run recorded before it keeps
asking each one, also for the turns it runs after the change, and both kinds
of history replay in the sandbox.
"""

from __future__ import annotations

import json
import uuid

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle

import orchestrator.turn_clock
import orchestrator.workflow
from meshkit.mesh import Mesh, connect
from orchestrator.contract import END, SEND_MESSAGE, ChatReply, ChatRequest, SessionConfig
from orchestrator.models.provider import LlmSettings, MeshModelProvider
from orchestrator.session_types import SessionState
from orchestrator.shared_catalogs import AHEAD_PATCH
from orchestrator.turn_clock import BASELINE_PATCH, IN_BASELINE
from orchestrator.worker import agent_plugins
from tests.helpers import UnversionedSession, replayer, session_worker

AFTER_BASELINE = [AHEAD_PATCH]
"""Patches added after the baseline, in the order a turn asks them."""


def _patches(events: list[HistoryEvent]) -> list[str]:
    found = []
    for e in events:
        attributes = e.marker_recorded_event_attributes
        if (
            e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and "patch-data" in attributes.details
        ):
            found.append(json.loads(attributes.details["patch-data"].payloads[0].data)["id"])
    return found


def _upserts(events: list[HistoryEvent]) -> int:
    upsert = EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    return sum(e.event_type == upsert for e in events)


async def _turn(handle: WorkflowHandle, message_id: str) -> None:
    reply = await handle.execute_update(
        SEND_MESSAGE,
        ChatRequest(text="What is my IP address?"),
        id=message_id,
        result_type=ChatReply,
    )
    assert reply.ok and [(c.name, c.ok) for c in reply.tools] == [("get_ip", True)], reply


async def _client(mesh: Mesh) -> tuple[Client, MeshModelProvider]:
    provider = MeshModelProvider(LlmSettings(model="offline"))
    return await connect(mesh, mesh.orchestrator, plugins=agent_plugins(provider)), provider


@pytest.mark.asyncio(loop_scope="session")
async def test_a_new_session_records_only_the_baseline(running_mesh: Mesh) -> None:
    client, provider = await _client(running_mesh)
    queue = f"baseline-{uuid.uuid4().hex[:6]}"
    config = SessionConfig.for_mesh(running_mesh, model="offline")
    async with session_worker(client, queue, provider):
        handle = await client.start_workflow(
            UnversionedSession.run, SessionState(config=config), id=queue, task_queue=queue
        )
        await _turn(handle, "m0")
        await _turn(handle, "m1")
        await handle.execute_update(END)
    history = await handle.fetch_history()
    events = list(history.events)
    # The baseline, and each patch added after it (asked on its own).
    assert _patches(events) == [BASELINE_PATCH, *AFTER_BASELINE]
    assert _upserts(events) == 1 + len(AFTER_BASELINE)
    await replayer().replay_workflow(history)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_run_begun_before_the_baseline_keeps_asking_each_patch(
    running_mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, provider = await _client(running_mesh)
    queue = f"baseline-old-{uuid.uuid4().hex[:6]}"
    config = SessionConfig.for_mesh(running_mesh, model="offline")
    # The code before the baseline: every patch asked on its own.
    monkeypatch.setattr(orchestrator.turn_clock, "patched", workflow.patched)
    monkeypatch.setattr(orchestrator.workflow, "patched", workflow.patched)
    async with session_worker(client, queue, provider):
        handle = await client.start_workflow(
            UnversionedSession.run, SessionState(config=config), id=queue, task_queue=queue
        )
        await _turn(handle, "m0")
    monkeypatch.undo()
    # Today's code takes the run over (a new worker replays it first).
    async with session_worker(client, queue, provider):
        await _turn(handle, "m1")
        await handle.execute_update(END)
    history = await handle.fetch_history()
    patches = _patches(list(history.events))
    assert BASELINE_PATCH not in patches
    assert sorted(patches) == sorted([*IN_BASELINE, *AFTER_BASELINE]), "each asked once"
    await replayer().replay_workflow(history)
