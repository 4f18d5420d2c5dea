"""The mesh end to end: real server, real workers, offline and scripted models."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from meshkit.mesh import Mesh, connect
from orchestrator.contract import ChatReply, SessionConfig, SessionError
from orchestrator.session_client import SessionClient
from services.it.netinfo import host_addresses
from tests.helpers import SCRIPTED, ScriptedModel, call, replayer, say

pytestmark = pytest.mark.asyncio

SESSIONS: list[str] = []
"""Every session these tests ran; test_replay replays them all."""


async def ask(client: Client, mesh: Mesh, text: str, *, model: str = "offline") -> ChatReply:
    session = f"t-{uuid.uuid4().hex[:10]}"
    handle = await SessionClient(client, mesh).open(session, model=model)
    SESSIONS.append(handle.id)
    return await handle.send(text, timeout_s=60)


async def test_arithmetic_is_answered_by_the_local_calculator(
    client: Client, running_mesh: Mesh
) -> None:
    reply = await ask(client, running_mesh, "What is 15 * 23?")
    assert reply.ok
    assert "345" in reply.text
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("calculator", "local", True)]


async def test_weather_is_answered_by_the_local_weather_tool(
    client: Client, running_mesh: Mesh
) -> None:
    reply = await ask(client, running_mesh, "What is the weather in Paris?")
    assert [(t.name, t.location) for t in reply.tools] == [("weather", "local")]
    assert "Paris" in reply.text and "demo data" in reply.text


async def test_ip_address_comes_from_the_it_namespace(client: Client, running_mesh: Mesh) -> None:
    reply = await ask(client, running_mesh, "What is my IP address?")
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("get_ip", "it", True)]
    assert host_addresses().primary in reply.text


async def test_jira_metrics_run_as_a_workflow_in_the_it_namespace(
    client: Client, running_mesh: Mesh
) -> None:
    reply = await ask(client, running_mesh, "Jira metrics for project OPS")
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("jira_metrics", "it", True)]
    assert "Jira project OPS" in reply.text and "demo data" in reply.text
    it_client = await connect(running_mesh, running_mesh.team("it"))
    started = [w async for w in it_client.list_workflows("WorkflowType = 'JiraMetricsWorkflow'")]
    assert started, "the Nexus operation should have started a workflow in the it namespace"
    assert all(w.id.startswith("jira-metrics-OPS-") for w in started)


async def test_stock_price_runs_as_a_workflow_in_the_finance_namespace(
    client: Client, running_mesh: Mesh
) -> None:
    reply = await ask(client, running_mesh, "What is the stock price of AAPL?")
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("stock_price", "finance", True)]
    assert "AAPL is at" in reply.text
    finance = await connect(running_mesh, running_mesh.team("finance"))
    started = [w async for w in finance.list_workflows("WorkflowType = 'StockPriceWorkflow'")]
    assert any(w.id.startswith("stock-price-AAPL-") for w in started)


async def test_roi_is_computed_by_the_finance_namespace(client: Client, running_mesh: Mesh) -> None:
    reply = await ask(client, running_mesh, "What is the ROI on 10000 at 5% for 10 years?")
    assert [(t.name, t.location, t.ok) for t in reply.tools] == [("calculate_roi", "finance", True)]
    assert "16288.95" in reply.text


async def test_one_message_can_use_several_tools_across_namespaces(
    client: Client, running_mesh: Mesh
) -> None:
    reply = await ask(
        client, running_mesh, "What is 2 + 2 and the stock price of MSFT and my IP address?"
    )
    assert sorted((t.name, t.location) for t in reply.tools) == [
        ("calculator", "local"),
        ("get_ip", "it"),
        ("stock_price", "finance"),
    ]
    assert "2 + 2 = 4" in reply.text and "MSFT" in reply.text


async def test_unrecognised_question_gets_the_list_of_tools(
    client: Client, running_mesh: Mesh
) -> None:
    reply = await ask(client, running_mesh, "Tell me a joke")
    assert reply.ok and not reply.tools
    for tool in ("calculator", "weather", "get_ip", "jira_metrics", "stock_price", "calculate_roi"):
        assert tool in reply.text


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        ("stock_price", {"ticker": "123"}, "invalid ticker"),
        ("stock_price", {"ticker": "AAPL;DROP"}, "invalid ticker"),
        ("calculate_roi", {"principal": -5, "annual_rate": 5, "years": 10}, "principal must be"),
        ("calculate_roi", {"principal": 100, "annual_rate": -150, "years": 10}, "annual_rate"),
        ("calculate_roi", {"principal": 100, "annual_rate": 5, "years": 0}, "years must be"),
        ("jira_metrics", {"project": "not a key"}, "invalid Jira project key"),
        ("jira_metrics", {"project": ""}, "invalid Jira project key"),
        ("get_ip", "{not json", "not valid JSON"),
        ("calculator", {"expression": "__import__('os').system('id')"}, "unsupported element"),
        ("calculator", {"expression": "1/0"}, "division by zero"),
        ("weather", {"city": "   "}, "city must be"),
        ("stock_price", {"symbol": "AAPL"}, "invalid arguments"),
    ],
)
async def test_bad_tool_input_is_reported_to_the_model_and_the_session_goes_on(
    client: Client,
    running_mesh: Mesh,
    scripted_model: ScriptedModel,
    tool: str,
    args: object,
    message: str,
) -> None:
    session = f"bad-{uuid.uuid4().hex[:10]}"
    handle = await SessionClient(client, running_mesh).open(session, model=SCRIPTED)
    SESSIONS.append(handle.id)
    scripted_model.script(
        handle.id, call((tool, args)), say("Sorry, that did not work."), say("fine")
    )  # type: ignore[arg-type]
    reply = await handle.send("please run the tool", timeout_s=60)
    assert reply.ok and reply.text == "Sorry, that did not work."
    [record] = reply.tools
    assert record.name == tool and not record.ok
    assert message in (record.error or "")
    # The model saw the error as the tool's output.
    outputs = [
        i for i in scripted_model.seen[handle.id][-1] if i.get("type") == "function_call_output"
    ]
    assert message in outputs[0]["output"]
    # The session is still usable.
    assert (await handle.send("and now?", timeout_s=60)).text == "fine"


async def test_the_next_turn_sees_the_whole_conversation(
    client: Client, running_mesh: Mesh, scripted_model: ScriptedModel
) -> None:
    handle = await SessionClient(client, running_mesh).open(
        f"mem-{uuid.uuid4().hex[:10]}", model=SCRIPTED
    )
    SESSIONS.append(handle.id)
    scripted_model.script(
        handle.id,
        call(("calculator", {"expression": "6 * 7"})),
        say("It is 42."),
        say("You asked about 6 * 7."),
    )
    await handle.send("What is 6 * 7?", timeout_s=60)
    await handle.send("What did I ask?", timeout_s=60)
    second_turn_input = scripted_model.seen[handle.id][-1]
    texts = [str(item.get("content")) for item in second_turn_input]
    assert any("What is 6 * 7?" in t for t in texts)
    assert any("It is 42." in t for t in texts)
    assert any(
        item.get("type") == "function_call_output" and "42" in item["output"]
        for item in second_turn_input
    )
    assert "What did I ask?" in texts[-1]


async def test_offline_model_remembers_earlier_questions(
    client: Client, running_mesh: Mesh
) -> None:
    handle = await SessionClient(client, running_mesh).open(
        f"mem-{uuid.uuid4().hex[:10]}", model="offline"
    )
    SESSIONS.append(handle.id)
    await handle.send("What is 3 * 3?", timeout_s=60)
    await handle.send("Weather in Oslo", timeout_s=60)
    reply = await handle.send("What did I ask before?", timeout_s=60)
    assert "1. What is 3 * 3?" in reply.text and "2. Weather in Oslo" in reply.text


async def test_history_query_and_end_of_chat(client: Client, running_mesh: Mesh) -> None:
    handle = await SessionClient(client, running_mesh).open(
        f"end-{uuid.uuid4().hex[:10]}", model="offline"
    )
    SESSIONS.append(handle.id)
    await handle.send("What is 1 + 1?", timeout_s=60)
    history = await handle.history()
    assert [(t.turn, t.user) for t in history] == [(1, "What is 1 + 1?")]
    assert "1 + 1 = 2" in history[0].reply
    assert await handle.end() == "Session ended. Goodbye!"
    assert (await handle.handle.result())["turns"] == 1
    with pytest.raises(SessionError, match="has ended"):
        await handle.send("hello?", timeout_s=30)
    # Its id cannot be reused by accident for a new, empty session.
    with pytest.raises(SessionError, match="has ended"):
        await SessionClient(client, running_mesh).open(handle.id, model="offline")


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "empty"), ("   \n\t ", "empty"), ("x" * 8_001, "limit is 8000")],
)
async def test_bad_messages_are_rejected_and_change_nothing(
    client: Client, running_mesh: Mesh, text: str, reason: str
) -> None:
    handle = await SessionClient(client, running_mesh).open(
        f"rej-{uuid.uuid4().hex[:10]}", model="offline"
    )
    SESSIONS.append(handle.id)
    with pytest.raises(SessionError, match=reason):
        await handle.send(text, timeout_s=30)
    assert await handle.history() == []
    # The rejected Update left no trace in history either.
    events = [e async for e in handle.handle.fetch_history_events()]
    assert not any(
        e.HasField("workflow_execution_update_accepted_event_attributes") for e in events
    )


async def test_a_model_that_never_stops_calling_tools_gets_a_clear_reply(
    client: Client, running_mesh: Mesh, scripted_model: ScriptedModel
) -> None:
    session_id = f"chat-loop-{uuid.uuid4().hex[:10]}"
    config = SessionConfig.for_mesh(running_mesh, model=SCRIPTED, max_agent_turns=2)
    handle = await SessionClient(client, running_mesh).open(session_id, config=config)
    SESSIONS.append(handle.id)
    loop = call(("calculator", {"expression": "1 + 1"}))
    scripted_model.script(session_id, loop, loop, loop, say("recovered"))
    reply = await handle.send("loop forever", timeout_s=60)
    assert not reply.ok and "stopped after 2 model calls" in reply.text
    # The session is still usable, and knows the last turn failed.
    assert (await handle.send("try again", timeout_s=60)).text == "recovered"
    assert any(
        "(turn failed)" in str(i.get("content")) for i in scripted_model.seen[session_id][-1]
    )


async def test_every_session_of_this_run_replays_without_nondeterminism(client: Client) -> None:
    """Runs last in this module: replays the histories the tests above recorded."""
    assert SESSIONS, "run with the rest of the module"
    histories = [await client.get_workflow_handle(wid).fetch_history() for wid in SESSIONS]
    failures = {}
    for history in histories:
        result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure:
            failures[history.workflow_id] = str(result.replay_failure)
    assert failures == {}
    if RECORD_DIR := os.environ.get("RECORD_HISTORIES"):
        # Keep a few histories to replay in future runs against future code.
        for history in histories[:: max(1, len(histories) // 6)]:
            Path(RECORD_DIR, f"{history.workflow_id}.json").write_text(history.to_json())
