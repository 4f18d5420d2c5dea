"""A catalog one session fetched serves the other sessions of its worker.

A new session's first turn takes the teams' catalogs that another session of
the same worker process fetched within the TTL (the local activity
``shared_catalogs``) instead of asking every team over Nexus; a team the
session saw fail since, or found out of date, is still asked. Both sessions'
histories replay, in the sandbox too.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle, WorkflowHistory

import orchestrator.shared_catalogs as shared_module
from meshkit.mesh import Mesh, connect
from meshkit.polling import poll_until
from meshkit.toolkit.catalog import CATALOG_OPERATION, ToolCatalog
from orchestrator.contract import END, SEND_MESSAGE, ChatReply, ChatRequest, SessionConfig
from orchestrator.models.provider import LlmSettings, MeshModelProvider
from orchestrator.session_types import SessionState
from orchestrator.shared_catalogs import (
    STORE,
    SharedCatalogRequest,
    SharedStore,
    route_key,
    shared_catalogs,
)
from orchestrator.worker import agent_plugins
from tests.helpers import UnversionedSession, own_team_routes, replayer, session_worker

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _catalog(version: str) -> ToolCatalog:
    return ToolCatalog(team="it", service="ItService", namespace="it", tools=[], version=version)


def test_the_store_keeps_the_newest_catalog_and_gives_it_only_within_the_ttl() -> None:
    store = SharedStore()
    store.put("it/ItService", _catalog("new"), NOW)
    store.put("it/ItService", _catalog("old"), NOW - timedelta(seconds=5))  # a slower session
    entry = store.fresh("it/ItService", NOW + timedelta(seconds=29), ttl_s=30)
    assert entry is not None and entry.catalog.version == "new"
    assert store.fresh("it/ItService", NOW + timedelta(seconds=30), ttl_s=30) is None
    assert store.fresh("finance/FinanceService", NOW, ttl_s=30) is None
    # Fetched before the asking session's own failed fetch: not evidence the team is back.
    assert store.fresh("it/ItService", NOW, ttl_s=30, after=NOW) is None
    assert store.fresh("it/ItService", NOW, ttl_s=30, after=NOW - timedelta(seconds=1))


def _request(session: str, **fields: object) -> SharedCatalogRequest:
    return SharedCatalogRequest.model_validate(
        {"session": session, "now": NOW, "ttl_s": 30, "wait_s": 5, **fields}
    )


async def test_a_team_refreshed_beside_the_turn_takes_only_a_fresh_catalog() -> None:
    key = f"beside-{uuid.uuid4().hex[:6]}/ItService"
    request = _request("s1", beside={"it": key, "finance": key + "x"})
    assert await shared_catalogs(request) == {}  # nothing, and no waiting: no claim either
    STORE.put(key, _catalog("v1"), NOW)
    found = await shared_catalogs(request)
    assert set(found) == {"it"} and found["it"].fetched_at == NOW
    failed_since = _request("s1", beside={"it": key}, after={"it": NOW})
    assert await shared_catalogs(failed_since) == {}


IT = {"it": "it/ItService"}
BOTH = {"it": "it/ItService", "finance": "finance/FinanceService"}


def test_one_session_at_a_time_refreshes_a_catalog_past_half_its_ttl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = SharedStore()
    key = IT["it"]
    store.put(key, _catalog("v1"), NOW)
    entry = store.fresh(key, NOW, ttl_s=30)
    assert entry is not None

    def asked(session: str, age_s: float, ahead: bool = True) -> bool:
        request = _request(session, now=NOW + timedelta(seconds=age_s), ahead=ahead)
        return store.ahead(key, entry, request).refresh

    assert not asked("s1", 14), "refreshed before half its TTL"
    assert not asked("s1", 20, ahead=False), "a session that cannot refresh beside was asked"
    assert asked("s1", 20)
    assert not asked("s2", 21), "two sessions refresh the same team ahead"
    assert asked("s1", 21), "the holder asked again keeps its grant"
    store.failed(key, "s1", 1)  # its fetch failed: another may try
    assert asked("s2", 22)
    # A newer catalog ends the grant; it is fresh again.
    store.put(key, _catalog("v2"), NOW + timedelta(seconds=22))
    newer = store.fresh(key, NOW + timedelta(seconds=23), ttl_s=30)
    assert newer is not None and not store.ahead(key, newer, _request("s3", ahead=True)).refresh
    # A holder that never answers loses its grant after AHEAD_HOLD_S.
    monkeypatch.setattr(shared_module, "time", SimpleNamespace(monotonic=lambda: 1e9))
    assert asked("s3", 24)


async def test_sessions_that_miss_together_wait_for_the_one_fetch_claimed_first() -> None:
    store = SharedStore()
    assert await store.take(_request("s1", waited=IT)) == {}  # s1 claims the fetch
    waiters = [asyncio.create_task(store.take(_request(f"s{n}", waited=IT))) for n in (2, 3)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters), "a waiter did not wait for the claimed fetch"
    # The catalog arrives from a workflow thread, as a session's fetch does.
    await asyncio.to_thread(store.put, IT["it"], _catalog("v1"), NOW)
    for answer in await asyncio.gather(*waiters):
        assert answer["it"].catalog is not None and answer["it"].catalog.version == "v1"


async def test_a_session_holding_a_claim_never_waits_for_another_sessions_claim() -> None:
    store = SharedStore()
    assert await store.take(_request("s1", waited={"it": BOTH["it"]})) == {}
    assert await store.take(_request("s2", waited={"finance": BOTH["finance"]})) == {}
    # s1 holds IT's claim and s2 Finance's: neither waits for the other.
    began = asyncio.get_running_loop().time()
    assert await store.take(_request("s1", waited=BOTH)) == {}
    assert await store.take(_request("s2", waited=BOTH)) == {}
    assert asyncio.get_running_loop().time() - began < 0.5
    # A session holding none waits for both.
    waiter = asyncio.create_task(store.take(_request("s3", waited=BOTH)))
    await asyncio.sleep(0.05)
    store.put(BOTH["it"], _catalog("it"), NOW)
    await asyncio.sleep(0.05)
    assert not waiter.done()
    store.put(BOTH["finance"], _catalog("finance"), NOW)
    assert set(await waiter) == {"it", "finance"}


async def test_a_claim_its_session_asks_for_again_still_wakes_those_waiting_for_it() -> None:
    # A session's workflow task lost after its local activity claimed a fetch
    # runs that activity again: its waiters must still hear of the fetch.
    store = SharedStore()
    assert await store.take(_request("s1", waited=IT)) == {}
    waiter = asyncio.create_task(store.take(_request("s2", waited=IT)))
    await asyncio.sleep(0.05)
    assert await store.take(_request("s1", waited=IT)) == {}
    store.put(IT["it"], _catalog("v1"), NOW)
    answer = await asyncio.wait_for(waiter, 1)
    assert answer["it"].catalog is not None


async def test_a_claimed_fetch_that_timed_out_counts_for_its_waiters() -> None:
    store = SharedStore()
    key = IT["it"]
    assert await store.take(_request("s1", waited=IT)) == {}
    waiter = asyncio.create_task(store.take(_request("s2", waited=IT)))
    await asyncio.sleep(0.05)
    store.failed(key, "s2", 2)  # only the session that claimed it ends a claim
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await asyncio.to_thread(store.failed, key, "s1", 2)
    answer = (await waiter)["it"]
    assert answer.catalog is None and answer.timeouts == 2
    # A refusal (no timeout) sends each waiter to ask the team itself.
    assert await store.take(_request("s1", waited=IT)) == {}
    waiter = asyncio.create_task(store.take(_request("s2", waited=IT)))
    await asyncio.sleep(0.05)
    store.failed(key, "s1", 0)
    assert await waiter == {}


async def test_a_claim_nobody_answers_is_waited_for_until_its_deadline_then_taken_over() -> None:
    store = SharedStore()
    assert await store.take(_request("s1", waited=IT, wait_s=0.2)) == {}
    began = asyncio.get_running_loop().time()
    assert await store.take(_request("s2", waited=IT)) == {}
    assert asyncio.get_running_loop().time() - began >= 0.15
    # The deadline passed: s3 claims the fetch, and s4 waits for s3.
    assert await store.take(_request("s3", waited=IT)) == {}
    waiter = asyncio.create_task(store.take(_request("s4", waited=IT)))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    store.put(IT["it"], _catalog("v2"), NOW)
    assert (await waiter)["it"].catalog is not None


def _catalog_fetches(events: list[HistoryEvent]) -> list[str]:
    return [
        e.nexus_operation_scheduled_event_attributes.endpoint
        for e in events
        if e.event_type == EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED
        and e.nexus_operation_scheduled_event_attributes.operation == CATALOG_OPERATION
    ]


def _told_to_refresh(events: list[HistoryEvent]) -> int:
    """Teams the worker told the session to refresh ahead, in its shared_catalogs results."""
    told = 0
    for e in events:
        details = e.marker_recorded_event_attributes.details
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and "result" in details:
            for payload in details["result"].payloads:
                answer = json.loads(payload.data)
                if isinstance(answer, dict):
                    told += sum(
                        1 for v in answer.values() if isinstance(v, dict) and v.get("refresh")
                    )
    return told


def _local_activities(events: list[HistoryEvent]) -> list[str]:
    names = []
    for e in events:
        details = e.marker_recorded_event_attributes.details
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and "data" in details:
            names.append(json.loads(details["data"].payloads[0].data)["activity_type"])
    return names


@pytest.mark.asyncio(loop_scope="session")
async def test_sessions_opening_together_ask_each_team_once_and_later_ones_not_at_all(
    running_mesh: Mesh,
) -> None:
    provider = MeshModelProvider(LlmSettings(model="offline"))
    client = await connect(running_mesh, running_mesh.orchestrator, plugins=agent_plugins(provider))
    queue = f"shared-catalogs-{uuid.uuid4().hex[:6]}"
    async with own_team_routes(
        client, running_mesh, SessionConfig.for_mesh(running_mesh, model="offline")
    ) as config:
        teams = sorted(route.endpoint for route in config.teams.values())
        together, later = await _open_together(client, queue, provider, config)
    fetches = sorted(endpoint for events in together for endpoint in _catalog_fetches(events))
    assert fetches == teams, "one fetch per team for the sessions that opened together"
    assert all("shared_catalogs" in _local_activities(events) for events in together)
    assert _catalog_fetches(later) == [], "a later session asked the teams again"
    assert "shared_catalogs" in _local_activities(later)


async def _open_together(
    client: Client, queue: str, provider: MeshModelProvider, config: SessionConfig
) -> tuple[list[list[HistoryEvent]], list[HistoryEvent]]:
    """Four sessions' histories, each of one turn, opened at once; then a fifth's."""

    async def session(name: str) -> list[HistoryEvent]:
        handle = await client.start_workflow(
            UnversionedSession.run, SessionState(config=config), id=name, task_queue=queue
        )
        reply = await handle.execute_update(
            SEND_MESSAGE, ChatRequest(text="What is my IP address?"), id="m0", result_type=ChatReply
        )
        assert reply.ok and [(c.name, c.ok) for c in reply.tools] == [("get_ip", True)], reply
        assert not reply.unavailable, reply
        await handle.execute_update(END)
        history = await handle.fetch_history()
        await replayer().replay_workflow(history)
        return list(history.events)

    async with session_worker(client, queue, provider):
        together = await asyncio.gather(*(session(f"{queue}-{n}") for n in range(4)))
        return together, await session(f"{queue}-later")


@pytest.mark.asyncio(loop_scope="session")
async def test_a_catalog_past_half_its_ttl_is_refreshed_ahead_by_one_session(
    running_mesh: Mesh,
) -> None:
    """The second session takes the first's catalogs and refreshes them beside
    its turn; the third takes the refreshed ones and asks no team."""
    provider = MeshModelProvider(LlmSettings(model="offline"))
    client = await connect(running_mesh, running_mesh.orchestrator, plugins=agent_plugins(provider))
    queue = f"ahead-{uuid.uuid4().hex[:6]}"
    base = SessionConfig.for_mesh(running_mesh, model="offline", catalog_ttl_s=4.0)
    async with own_team_routes(client, running_mesh, base) as config:
        teams = sorted(route.endpoint for route in config.teams.values())
        histories = await _three_sessions_past_half_the_ttl(client, queue, provider, config)
    fetches = [sorted(_catalog_fetches(list(h.events))) for h in histories]
    assert fetches == [teams, teams, []], "first fetched, second refreshed ahead, third took"
    assert [_told_to_refresh(list(h.events)) for h in histories] == [0, len(teams), 0]
    for history in histories:
        await replayer().replay_workflow(history)


async def _three_sessions_past_half_the_ttl(
    client: Client, queue: str, provider: MeshModelProvider, config: SessionConfig
) -> list[WorkflowHistory]:
    """A session's turn; a second's once past half the TTL; a third's once the
    worker's store has catalogs newer than the first's."""
    keys = [route_key(route) for route in config.teams.values()]

    async def session(name: str) -> WorkflowHandle[Any, Any]:
        handle = await client.start_workflow(
            UnversionedSession.run, SessionState(config=config), id=name, task_queue=queue
        )
        reply = await handle.execute_update(
            SEND_MESSAGE, ChatRequest(text="What is my IP address?"), id="m0", result_type=ChatReply
        )
        assert reply.ok and [(c.name, c.ok) for c in reply.tools] == [("get_ip", True)], reply
        return handle

    def fetched_at() -> list[datetime | None]:
        now = datetime.now(UTC)
        return [entry.fetched_at if (entry := STORE.fresh(k, now, 3600)) else None for k in keys]

    async with session_worker(client, queue, provider):
        first = await session(f"{queue}-1")
        fetched = fetched_at()
        await asyncio.sleep(2.2)  # past half the TTL
        second = await session(f"{queue}-2")
        await poll_until(
            lambda: all(a and b and a > b for a, b in zip(fetched_at(), fetched, strict=True)),
            timeout_s=10,
            what="the refreshed catalogs reached the worker's store",
        )
        third = await session(f"{queue}-3")
        handles = [first, second, third]
        for handle in handles:
            await handle.execute_update(END)
    return [await handle.fetch_history() for handle in handles]
