"""How model calls run: the worker's plan, asked by each session, and what it costs.

The in-process orchestrator of the test mesh has the default settings
(LLM_STREAM=auto, LLM_LOCAL_ACTIVITY=true) and the offline model, which
answers in one piece: its sessions call the model as local activities unless
they ask to stream.
"""

from __future__ import annotations

import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.history import count_actions, turn_slice
from meshkit.mesh import Mesh
from orchestrator.contract import SessionConfig
from orchestrator.models.provider import LlmSettings, MeshModelProvider
from orchestrator.session import Session
from orchestrator.session_client import SessionClient
from orchestrator.session_types import ModelPlanRequest

pytestmark = pytest.mark.asyncio


def plan(stream: str, model: str = "default", asked: bool | None = None, **settings: object):  # type: ignore[no-untyped-def]
    provider = MeshModelProvider(
        LlmSettings(stream=stream, **settings),  # type: ignore[arg-type]
        extra={"scripted": None},  # type: ignore[dict-item]
    )
    return provider.plan(ModelPlanRequest(model=model, stream=asked))


async def test_the_plan_follows_the_worker_and_the_session() -> None:
    # auto: models that stream natively do, one-piece models do not.
    assert not plan("auto").stream  # the default model is offline
    assert not plan("auto", model="scripted").stream
    assert plan("auto", model="openai/gpt-4o-mini").stream
    assert plan("auto").local_activity
    # A session may ask either way, unless the worker never streams.
    assert plan("auto", asked=True).stream
    assert not plan("auto", model="openai/gpt-4o-mini", asked=False).stream
    assert plan("on").stream and not plan("on", asked=False).stream
    assert not plan("off", asked=True).stream
    assert not plan("off", model="openai/gpt-4o-mini").stream
    assert not plan("auto", local_activity=False).local_activity


async def test_llm_stream_accepts_the_old_true_and_false(monkeypatch: pytest.MonkeyPatch) -> None:
    for word, expected in (("true", "on"), ("False", "off"), ("auto", "auto"), ("on", "on")):
        monkeypatch.setenv("LLM_STREAM", word)
        assert LlmSettings().stream == expected
    monkeypatch.setenv("LLM_STREAM", "sometimes")
    with pytest.raises(ValueError, match="auto"):
        LlmSettings()


async def session(client: Client, mesh: Mesh, **settings: object) -> Session:
    config = SessionConfig.for_mesh(mesh, model="offline", **settings)
    return await SessionClient(client, mesh).open(f"mc-{uuid.uuid4().hex[:8]}", config=config)


async def turn_events(handle: Session) -> list:  # type: ignore[type-arg]
    history = await handle.handle.fetch_history()
    events, _ = turn_slice(list(history.events))
    return events


async def test_a_one_piece_model_is_called_as_local_activities_and_its_input_stays_out_of_history(
    client: Client, running_mesh: Mesh
) -> None:
    question = "What is 15 * 23?"
    plain = await session(client, running_mesh)
    streamed = await session(client, running_mesh, stream=True)
    for handle in (plain, streamed):
        for _ in range(2):
            reply = await handle.send(question, 60)
            assert reply.ok and "345" in reply.text

    plain_events = await turn_events(plain)
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in plain_events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["calculator", "calculator"], "no model activity was scheduled"
    actions = count_actions(plain_events)
    # Two model calls per turn, the plan asked once for both turns, and the
    # first turn's look for the teams' catalogs among its worker's.
    assert actions["local_activities"] == 2 * 2 + 1 + 1
    assert actions["signals"] == 0

    streamed_events = await turn_events(streamed)
    assert count_actions(streamed_events)["activities"] == 2 * 3  # two model calls, one tool
    # The same turns; the streamed ones add the activities' events and the
    # text's Signals, but not the model's input (tests/test_streamed_calls.py).
    plain_bytes = sum(e.ByteSize() for e in plain_events)
    streamed_bytes = sum(e.ByteSize() for e in streamed_events)
    assert plain_bytes < streamed_bytes < plain_bytes * 2, (plain_bytes, streamed_bytes)


async def test_the_plan_is_asked_again_once_it_is_older_than_its_ttl(
    client: Client, running_mesh: Mesh
) -> None:
    handle = await session(client, running_mesh, model_plan_ttl_s=0)
    for _ in range(2):
        assert (await handle.send("Tell me a joke", 60)).ok
    actions = count_actions(await turn_events(handle))
    # A plan and a model call per turn, and the first turn's look for the
    # teams' catalogs among its worker's.
    assert actions["local_activities"] == 2 * (1 + 1) + 1


def test_the_payload_converter_decodes_model_inputs_as_the_plugin_does_items_as_dicts() -> None:
    from agents import ModelSettings
    from agents.items import TResponseStreamEvent
    from temporalio.openai_agents._invoke_model_activity import (
        ActivityModelInput,
        FunctionToolInput,
        ModelTracingInput,
    )

    from orchestrator.payloads import MeshPayloadConverter

    converter = MeshPayloadConverter()
    items = [
        {"role": "user", "content": "What is 6 * 7?"},
        {"type": "function_call", "call_id": "c1", "name": "calculator", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
    ]
    value = ActivityModelInput(
        model_name="offline",
        input=items,  # type: ignore[typeddict-item]
        model_settings=ModelSettings(temperature=0.2),
        tools=[FunctionToolInput(name="calculator", description="d", params_json_schema={})],
        tracing=ModelTracingInput.DISABLED,
    )
    (payload,) = converter.to_payloads([value])
    (decoded,) = converter.from_payloads([payload], [ActivityModelInput])
    assert decoded["input"] == items and all(type(item) is dict for item in decoded["input"])
    assert decoded["model_settings"] == ModelSettings(temperature=0.2)
    assert decoded["tools"] == value["tools"] and decoded["tracing"] == 0

    # Every converter the SDK makes (one per serialization context) shares the
    # same encoding converters, and so their type adapter caches.
    json = converter.converters[b"json/plain"]
    assert MeshPayloadConverter().converters[b"json/plain"] is json
    hint = list[TResponseStreamEvent]  # type: ignore[valid-type]
    (empty,) = converter.to_payloads([[]])
    assert MeshPayloadConverter().from_payloads([empty], [hint]) == [[]]
