"""Retries run nothing twice: every API request that changes something takes an
``Idempotency-Key``, a request repeated with the same key gets the first one's
outcome, and a message repeated after its stream was cut follows the same turn.
Without a key (or with another key) a request is a new request. The session
also answers a repeated message after it continued as new."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from meshkit.mesh import Mesh
from meshkit.polling import poll_until
from meshkit.toolkit.store import IdempotentStore
from orchestrator.contract import SessionConfig
from orchestrator.session_client import SessionClient
from tests.conftest import WebApi
from tests.test_api import auth, events_of, new_session

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def api(web_api: WebApi) -> Any:
    async with httpx.AsyncClient(
        base_url=web_api.url, headers=auth(web_api.token), timeout=60
    ) as c:
        yield c


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def say(
    api: httpx.AsyncClient, session: str, text: str, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    async with api.stream(
        "POST", f"/api/sessions/{session}/messages", json={"text": text}, headers=headers
    ) as r:
        assert r.status_code == 200, await r.aread()
        return [event async for event in events_of(r)]


async def history(api: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    view = (await api.get(f"/api/sessions/{session}")).json()
    turns: list[dict[str, Any]] = view["history"]
    return turns


async def test_a_message_sent_twice_with_one_key_runs_one_turn_and_both_get_its_reply(
    api: httpx.AsyncClient,
) -> None:
    session = await new_session(api)
    same = key()
    first = await say(api, session, "What is 6 * 7?", same)
    again = await say(api, session, "What is 6 * 7?", same)
    assert first[-1]["kind"] == again[-1]["kind"] == "reply"
    assert again[-1]["turn"] == first[-1]["turn"] == 1
    assert again[-1]["text"] == first[-1]["text"] and "42" in first[-1]["text"]
    # The repeat follows the same turn's events, from its start.
    assert again == first
    assert [t["turn"] for t in await history(api, session)] == [1]


async def test_a_message_whose_stream_was_cut_and_sent_again_follows_the_same_turn(
    api: httpx.AsyncClient,
) -> None:
    session = await new_session(api)
    same = key()
    text = "What is 2 + 2 and the stock price of MSFT and my IP address?"
    async with api.stream(
        "POST", f"/api/sessions/{session}/messages", json={"text": text}, headers=same
    ) as r:
        async for event in events_of(r):
            first = event
            break  # the connection is lost once the message was accepted
    assert first["kind"] == "turn_started"
    again = await say(api, session, text, same)
    assert again[0] == first and again[-1]["kind"] == "reply" and again[-1]["turn"] == 1
    assert {e["name"] for e in again if e["kind"] == "tool_started"} == {
        "calculator",
        "stock_price",
        "get_ip",
    }
    turns = await history(api, session)
    assert [t["turn"] for t in turns] == [1] and turns[0]["reply"] == again[-1]["text"]


async def test_a_ticket_created_through_repeated_requests_exists_once(
    api: httpx.AsyncClient, stores: Path
) -> None:
    session = await new_session(api)
    message, approval = key(), key()
    title = f"printer {uuid.uuid4().hex[:8]} is broken"
    text = f"Create a ticket in OPS: {title}"
    decided: list[dict[str, Any]] = []
    async with api.stream(
        "POST", f"/api/sessions/{session}/messages", json={"text": text}, headers=message
    ) as r:
        async for event in events_of(r):
            if event["kind"] == "approval_requested":
                url = f"/api/sessions/{session}/approvals/{event['call_id']}"
                for _ in range(2):
                    answer = await api.post(url, json={"approve": True}, headers=approval)
                    assert answer.status_code == 200, answer.text
                    decided.append(answer.json())
                break  # the client goes away while the call runs
    # Both approvals got the first one's outcome.
    assert decided == [{"result": "create_ticket: approved"}] * 2
    again = await say(api, session, text, message)
    assert again[-1]["kind"] == "reply" and "Created ticket" in again[-1]["text"]
    assert sum(e["kind"] == "approval_decided" for e in again) == 1
    tickets = IdempotentStore(stores / "tickets.sqlite", "tickets").all()
    assert sum(title in str(t) for t in tickets) == 1
    assert len(await history(api, session)) == 1


async def test_two_creates_with_one_key_give_one_session_and_another_user_gets_another(
    api: httpx.AsyncClient, web_api: WebApi
) -> None:
    same = key()
    first = await api.post("/api/sessions", json={"tools": ["finance"]}, headers=same)
    again = await api.post("/api/sessions", json={"tools": ["finance"]}, headers=same)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    mine = [s["id"] for s in (await api.get("/api/sessions")).json()]
    assert mine.count(first.json()["id"]) == 1
    async with httpx.AsyncClient(base_url=web_api.url, headers=auth(web_api.other_token)) as bob:
        theirs = await bob.post("/api/sessions", headers=same)
        assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]


async def test_messages_with_different_keys_or_none_run_two_turns_in_order(
    api: httpx.AsyncClient,
) -> None:
    for headers in ((key(), key()), (None, None)):
        session = await new_session(api)
        first = await say(api, session, "What is 3 * 3?", headers[0])
        second = await say(api, session, "What is 3 * 3?", headers[1])
        assert (first[-1]["turn"], second[-1]["turn"]) == (1, 2)
        turns = await history(api, session)
        assert [(t["turn"], t["user"]) for t in turns] == [
            (1, "What is 3 * 3?"),
            (2, "What is 3 * 3?"),
        ]


async def test_one_key_on_two_kinds_of_request_is_two_requests(api: httpx.AsyncClient) -> None:
    session = await new_session(api)
    same = key()
    await say(api, session, "What is 1 + 1?", same)
    undone = await api.post(f"/api/sessions/{session}/undo", headers=same)
    assert undone.status_code == 200 and "turn 1" in undone.json()["result"]
    # Undo again with the same key: the first outcome, not "nothing to undo".
    assert (await api.post(f"/api/sessions/{session}/undo", headers=same)).json() == undone.json()
    assert (await api.post(f"/api/sessions/{session}/undo", headers=key())).status_code == 409


@pytest.mark.parametrize("bad", ["", "x" * 201, "has space", "semi;colon", "ünïcode".encode()])
async def test_a_bad_idempotency_key_is_422_and_changes_nothing(
    api: httpx.AsyncClient, bad: str | bytes
) -> None:
    before = len((await api.get("/api/sessions")).json())
    refused = await api.post("/api/sessions", headers={"Idempotency-Key": bad})
    assert refused.status_code == 422 and "Idempotency-Key" in refused.json()["detail"]
    assert len((await api.get("/api/sessions")).json()) == before


async def test_an_empty_post_creates_a_session(api: httpx.AsyncClient) -> None:
    bare = await api.post("/api/sessions")
    empty = await api.post("/api/sessions", json={})
    assert bare.status_code == empty.status_code == 201
    assert bare.json()["id"] != empty.json()["id"] and bare.json()["tools"] is None


async def test_a_repeated_message_or_undo_after_continue_as_new_gets_its_first_answer(
    client: Client, running_mesh: Mesh
) -> None:
    config = SessionConfig.for_mesh(running_mesh, model="offline", max_run_history_bytes=50_000)
    session = await SessionClient(client, running_mesh).open(config=config)
    first = await session.send("What is 5 * 5?", 60, key="five")
    undone = await session.undo(key="take-back")
    sent = 0

    async def continued_as_new() -> bool:
        nonlocal sent
        if (await session.status()).runs >= 2:
            return True
        await session.send(f"What is {sent} + 1?", 60)
        sent += 1
        return False

    await poll_until(continued_as_new, timeout_s=600, interval_s=0, what="no continue-as-new")
    turns = (await session.status()).turn
    again = await session.send("What is 5 * 5?", 60, key="five")
    assert again.model_dump() == first.model_dump()
    assert (await session.status()).turn == turns
    progress = await session.progress("message-five")
    assert progress is not None and progress.done and progress.turn == 1
    # A fresh undo would take back the latest turn; the repeat takes back nothing.
    assert (
        await session.undo(key="take-back")
        == undone
        == ("turn 1 is no longer part of the conversation")
    )
    assert (await session.undo(key="another")) != undone
    await session.end()
