"""The HTTP API over real HTTP against the real mesh: every route, every error,
two users who cannot see each other's sessions, and a stream resumed after a
disconnect with no event lost or repeated."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import WebApi

pytestmark = pytest.mark.asyncio


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def events_of(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The server-sent events of a streaming response, as dicts with their id."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in fields:
                event = json.loads(fields["data"])
                assert event["kind"] == fields.get("event") and str(event["offset"]) == fields["id"]
                yield event
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            fields[key] = value


@pytest.fixture
async def api(web_api: WebApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=web_api.url, headers=auth(web_api.token), timeout=60
    ) as c:
        yield c


async def new_session(api: httpx.AsyncClient, **body: Any) -> str:
    response = await api.post("/api/sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def say(api: httpx.AsyncClient, session: str, text: str) -> list[dict[str, Any]]:
    async with api.stream("POST", f"/api/sessions/{session}/messages", json={"text": text}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        return [event async for event in events_of(r)]


async def test_a_message_streams_its_turns_events_ending_with_the_reply(
    api: httpx.AsyncClient,
) -> None:
    # The offline model answers in one piece: the session asks for it in pieces anyway.
    session = await new_session(api, stream=True)
    events = await say(api, session, "What is 15 * 23 and the ROI on 1000 at 10% for 2 years?")
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "turn_started" and kinds[-1] == "reply"
    started = {e["name"]: e["location"] for e in events if e["kind"] == "tool_started"}
    assert started == {"calculator": "local", "calculate_roi": "finance"}
    finished = [e for e in events if e["kind"] == "tool_finished"]
    assert all(e["ok"] and e["duration_ms"] > 0 for e in finished) and len(finished) == 2
    assert kinds.index("tool_finished") < kinds.index("reply")
    reply = events[-1]
    assert "345" in reply["text"] and "1210.00" in reply["text"] and reply["usage"]["requests"] == 2
    # Its text as the model call published it: batched, so an answer written at
    # once comes in one piece, before the reply.
    deltas = [e["delta"] for e in events if e["kind"] == "text_delta"]
    assert deltas and "".join(deltas) == reply["text"]
    assert kinds.index("text_delta") < kinds.index("reply")
    offsets = [e["offset"] for e in events]
    assert offsets == sorted(set(offsets))


async def test_a_session_shows_its_status_and_history(api: httpx.AsyncClient) -> None:
    session = await new_session(api)
    await say(api, session, "What is 6 * 7?")
    view = (await api.get(f"/api/sessions/{session}")).json()
    assert view["status"]["state"] == "idle" and view["status"]["turn"] == 1
    assert view["history"][0]["user"] == "What is 6 * 7?" and "42" in view["history"][0]["reply"]
    assert view["temporal_ui"].endswith(f"/namespaces/orchestrator/workflows/{session}")


async def test_requests_without_a_valid_token_get_401(web_api: WebApi) -> None:
    async with httpx.AsyncClient(base_url=web_api.url) as anonymous:
        for headers in ({}, auth("not-a-token-at-all-1234"), {"Authorization": "Basic abc"}):
            response = await anonymous.get("/api/sessions", headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
            assert response.json() == {"detail": "missing or wrong bearer token"}


async def test_users_see_only_their_own_sessions(api: httpx.AsyncClient, web_api: WebApi) -> None:
    mine = await new_session(api)
    listed = [s["id"] for s in (await api.get("/api/sessions")).json()]
    assert mine in listed
    async with httpx.AsyncClient(base_url=web_api.url, headers=auth(web_api.other_token)) as bob:
        assert mine not in [s["id"] for s in (await bob.get("/api/sessions")).json()]
        for method, path, body in [
            ("GET", f"/api/sessions/{mine}", None),
            ("POST", f"/api/sessions/{mine}/messages", {"text": "hi"}),
            ("GET", f"/api/sessions/{mine}/events?follow=false", None),
            ("POST", f"/api/sessions/{mine}/approvals/call-1", {"approve": True}),
            ("POST", f"/api/sessions/{mine}/interrupt", None),
            ("POST", f"/api/sessions/{mine}/undo", None),
            ("POST", f"/api/sessions/{mine}/compact", None),
            ("DELETE", f"/api/sessions/{mine}", None),
        ]:
            response = await bob.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json() == {"detail": f"no session {mine}"}
    # Bob's attempts changed nothing.
    assert (await api.get(f"/api/sessions/{mine}")).json()["status"]["turn"] == 0


async def test_unknown_sessions_get_404(api: httpx.AsyncClient) -> None:
    for session in ("chat-doesnotexist", "not-a-session", "chat-" + "x" * 200):
        assert (await api.get(f"/api/sessions/{session}")).status_code == 404


@pytest.mark.parametrize("text", ["", "   \n\t", "x" * 8_001])
async def test_an_empty_or_oversize_message_gets_422_and_changes_nothing(
    api: httpx.AsyncClient, text: str
) -> None:
    session = await new_session(api)
    response = await api.post(f"/api/sessions/{session}/messages", json={"text": text})
    assert response.status_code == 422
    assert (await api.get(f"/api/sessions/{session}")).json()["history"] == []


async def test_a_message_with_control_characters_is_refused_with_the_sessions_reason(
    api: httpx.AsyncClient,
) -> None:
    session = await new_session(api)
    response = await api.post(f"/api/sessions/{session}/messages", json={"text": "hi\x07"})
    assert response.json() == {
        "detail": "text: send plain text without control characters, and not only spaces"
    }


async def test_an_approval_card_is_answered_over_http_and_the_turn_completes(
    api: httpx.AsyncClient,
) -> None:
    session = await new_session(api)
    seen: list[dict[str, Any]] = []
    async with api.stream(
        "POST",
        f"/api/sessions/{session}/messages",
        json={"text": "Create a ticket in OPS: printer is broken"},
    ) as r:
        async for event in events_of(r):
            seen.append(event)
            if event["kind"] == "approval_requested":
                assert event["name"] == "create_ticket" and event["location"] == "it"
                wrong = await api.post(
                    f"/api/sessions/{session}/approvals/not-waiting", json={"approve": True}
                )
                assert wrong.status_code == 409
                ok = await api.post(
                    f"/api/sessions/{session}/approvals/{event['call_id']}",
                    json={"approve": True, "note": "go"},
                )
                assert ok.status_code == 200 and ok.json() == {"result": "create_ticket: approved"}
    kinds = [e["kind"] for e in seen]
    assert kinds.index("tool_started") < kinds.index("approval_requested")
    assert kinds.index("approval_decided") < kinds.index("tool_finished") < kinds.index("reply")
    decided = next(e for e in seen if e["kind"] == "approval_decided")
    assert decided["approve"] and decided["by"] == "alice"
    assert "Created ticket" in seen[-1]["text"]


async def test_a_turn_waiting_for_approval_is_interrupted(api: httpx.AsyncClient) -> None:
    session = await new_session(api)
    nothing = await api.post(f"/api/sessions/{session}/interrupt")
    assert nothing.status_code == 409 and "no turn is in progress" in nothing.json()["detail"]
    async with api.stream(
        "POST", f"/api/sessions/{session}/messages", json={"text": "Create a ticket in OPS: x"}
    ) as r:
        async for event in events_of(r):
            if event["kind"] == "approval_requested":
                assert (await api.post(f"/api/sessions/{session}/interrupt")).status_code == 200
            last = event
    assert last["kind"] == "reply" and last["interrupted"] is True


async def test_undo_and_compact_change_what_the_model_sees_next(api: httpx.AsyncClient) -> None:
    session = await new_session(api)
    assert (await api.post(f"/api/sessions/{session}/undo")).status_code == 409
    await say(api, session, "What is 1 + 1?")
    await say(api, session, "What is 2 + 2?")
    undone = await api.post(f"/api/sessions/{session}/undo")
    assert undone.status_code == 200 and "turn 2" in undone.json()["result"]
    events = await say(api, session, "What did I ask?")
    assert "What is 1 + 1?" in events[-1]["text"] and "2 + 2" not in events[-1]["text"]
    compacted = await api.post(f"/api/sessions/{session}/compact")
    assert compacted.status_code == 200 and "compacted" in compacted.json()["result"]
    view = (await api.get(f"/api/sessions/{session}")).json()
    assert view["status"]["compacted_turns"] >= 1


async def test_a_stream_resumed_after_a_disconnect_loses_and_repeats_nothing(
    api: httpx.AsyncClient,
) -> None:
    session = await new_session(api)
    first: list[dict[str, Any]] = []
    async with api.stream(
        "POST",
        f"/api/sessions/{session}/messages",
        json={"text": "What is 2 + 2 and the stock price of MSFT and my IP address?"},
    ) as r:
        async for event in events_of(r):
            first.append(event)
            if len(first) == 3:
                break  # the client goes away mid-turn
    resumed: list[dict[str, Any]] = []
    async with api.stream(
        "GET", f"/api/sessions/{session}/events", params={"after": first[-1]["offset"]}
    ) as r:
        async for event in events_of(r):
            resumed.append(event)
            if event["kind"] == "reply":
                break
    async with api.stream(
        "GET", f"/api/sessions/{session}/events", params={"follow": "false"}
    ) as r:
        everything = [event async for event in events_of(r)]
    assert first + resumed == everything
    assert everything[-1]["kind"] == "reply" and len(everything) > 6
    # Last-Event-ID resumes the same way.
    async with api.stream(
        "GET",
        f"/api/sessions/{session}/events",
        params={"follow": "false"},
        headers={"Last-Event-ID": str(first[-1]["offset"])},
    ) as r:
        assert [event async for event in events_of(r)] == resumed


async def test_an_ended_session_is_gone_from_the_api(api: httpx.AsyncClient) -> None:
    session = await new_session(api)
    ended = await api.delete(f"/api/sessions/{session}")
    assert ended.status_code == 200 and "Goodbye" in ended.json()["result"]
    assert session not in [s["id"] for s in (await api.get("/api/sessions")).json()]
    # An ended session is gone from the API.
    assert (await api.get(f"/api/sessions/{session}")).status_code == 404
    assert (await api.delete(f"/api/sessions/{session}")).status_code == 404
    late = await api.post(f"/api/sessions/{session}/messages", json={"text": "hello?"})
    assert late.status_code == 404


async def test_a_session_can_be_limited_to_some_tools_and_unknown_names_are_422(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/api/sessions", json={"tools": ["finance"]})
    assert created.status_code == 201
    assert created.json()["tools"] == ["calculate_roi", "stock_price", "submit_expense"]
    refused = await api.post("/api/sessions", json={"tools": ["finance", "warp"]})
    assert refused.status_code == 422 and "'warp'" in refused.json()["detail"]


async def test_messages_sent_during_a_turn_wait_for_it_in_order(api: httpx.AsyncClient) -> None:
    session = await new_session(api)
    first, second = await asyncio.gather(
        say(api, session, "What is 3 * 3?"), say(api, session, "What is 4 * 4?")
    )
    replies = sorted([first[-1], second[-1]], key=lambda e: e["turn"])
    assert [r["turn"] for r in replies] == [1, 2]
    assert {"9" in replies[0]["text"] or "16" in replies[0]["text"]}


async def test_the_openapi_document_and_docs_are_served(web_api: WebApi) -> None:
    async with httpx.AsyncClient(base_url=web_api.url) as anonymous:
        document = (await anonymous.get("/openapi.json")).json()
        assert "/api/sessions/{session_id}/messages" in document["paths"]
        assert (await anonymous.get("/docs")).status_code == 200
