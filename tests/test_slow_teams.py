"""A slow team is not a dead one.

A team whose catalog answers late while a catalog is cached keeps serving
from that catalog: its tools are offered and called. A team with no worker
is reported unavailable, and a team that comes back is used again. The test
team (tests/teams/fx.py) answers its catalog late while a file holds a delay.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client

from meshkit.mesh import Mesh, TeamConfig
from meshkit.polling import poll_until
from orchestrator.contract import ChatReply, SessionConfig
from orchestrator.gateway.durable import DurableCalls
from orchestrator.gateway.listing import Catalogs
from orchestrator.session import Session
from orchestrator.session_client import SessionClient
from tests.helpers import replayer
from tests.processes import WorkerProcess, own_mesh
from tests.reliability import assert_no_task_failures
from tests.teams.fx import write_team

pytestmark = pytest.mark.asyncio

RATE = "fx_rate base=USD quote=EUR"


@dataclass
class SlowTeam:
    mesh: Mesh
    delay: Path
    worker: WorkerProcess

    def slow(self, seconds: float) -> None:
        self.delay.write_text(str(seconds))

    def refuse(self) -> None:
        self.delay.write_text("refuse")

    def fast(self) -> None:
        self.delay.unlink(missing_ok=True)


@pytest_asyncio.fixture(scope="module")
async def fx(
    running_mesh: Mesh, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SlowTeam]:
    suffix = uuid.uuid4().hex[:6]
    root = tmp_path_factory.mktemp("teams")
    package = f"fxslow_{suffix}"
    delay = root / "catalog-delay"
    write_team(root, package, ["fx_rate"], catalog_delay=delay)
    team = TeamConfig(
        namespace=f"fxslow-{suffix}",
        task_queue=f"fxslow-{suffix}",
        service="FxService",
        endpoint=f"fxslow-{suffix}",
        package=package,
    )
    mesh = running_mesh.model_copy(update={"teams": {**running_mesh.teams, "fx": team}})
    sys.path.insert(0, str(root))  # setup reads the team's catalog for the endpoint
    try:
        async with own_mesh(mesh, root, env={"PYTHONPATH": str(root)}) as own:
            yield SlowTeam(mesh, delay, await own.start("fx"))
    finally:
        sys.path.remove(str(root))


async def open_session(client: Client, fx: SlowTeam, **settings: float) -> Session:
    # Every turn's catalogs are due, and a fetch the turn waits for may take one second.
    config = SessionConfig.for_mesh(
        fx.mesh, model="offline", catalog_ttl_s=0, catalog_timeout_s=1, **settings
    )
    return await SessionClient(client, fx.mesh).open(f"slow-{uuid.uuid4().hex[:8]}", config=config)


async def test_a_team_whose_catalog_is_slow_keeps_serving_its_cached_tools(
    client: Client, fx: SlowTeam
) -> None:
    # A refresh beside the turns may take 1 s too; three late ones in a row are tolerated.
    handle = await open_session(client, fx, catalog_refresh_timeout_s=1, catalog_misses=3)
    assert [t.name for t in (await handle.send(RATE, 60)).tools] == ["fx_rate"]

    fx.slow(3)  # longer than the session's catalog timeouts; the worker is alive
    try:
        for _ in range(3):
            reply = await handle.send(RATE, 60)
            assert reply.unavailable == {}, reply.unavailable
            assert [(t.name, t.ok) for t in reply.tools] == [("fx_rate", True)], reply.text
    finally:
        fx.fast()
    # The late answers were seen, and the team stayed in: its cache is offered.
    teams = await cached(handle)
    assert "no answer within 1 s" in teams["fx"], teams


async def test_a_team_that_refuses_its_catalog_is_left_out_at_once_although_cached(
    client: Client, fx: SlowTeam
) -> None:
    handle = await open_session(client, fx)
    assert [t.name for t in (await handle.send(RATE, 60)).tools] == ["fx_rate"]

    fx.refuse()  # a non-retryable error: the caller sees it at once, not a timeout
    try:
        await handle.send("hello", 60)  # its fetch, beside the turn, is refused
        await poll_until(
            lambda: teams_when(handle, "fx", "unavailable: fx is closed"),
            timeout_s=30, what="fx left out", interval_s=0.5,
        )  # fmt: skip
        reply = await handle.send(RATE, 60)
        assert reply.unavailable == {"fx": "fx is closed"} and reply.tools == [], reply
    finally:
        fx.fast()


async def cached(handle: Session) -> dict[str, str]:
    return await poll_until(
        lambda: teams_when(handle, "fx", "available from its cached catalog"),
        timeout_s=30, what="fx served from its cache", interval_s=0.5,
    )  # fmt: skip


async def teams_when(handle: Session, team: str, prefix: str) -> dict[str, str] | None:
    teams = (await handle.status()).teams
    return teams if teams[team].startswith(prefix) else None


async def test_a_team_without_a_worker_is_left_out_and_used_again_when_it_is_back(
    client: Client, fx: SlowTeam
) -> None:
    # Two fetches in a row without an answer make the team unreachable; asked
    # again at every turn; a tool call to it gives up after 2 s.
    settings = {
        "catalog_misses": 2, "catalog_retry_s": 0, "catalog_refresh_timeout_s": 1,
        "nexus_timeout_s": 2,
    }  # fmt: skip
    handle = await open_session(client, fx, **settings)
    assert [t.name for t in (await handle.send(RATE, 60)).tools] == ["fx_rate"]

    await fx.worker.stop()
    try:
        # Each turn's fetch of fx times out beside the turn: the first leaves
        # its cached catalog offered, the second leaves the team out.
        assert (await handle.send("hello", 60)).unavailable == {}
        await cached(handle)
        await handle.send("hello", 60)
        await poll_until(
            lambda: teams_when(handle, "fx", "unavailable"),
            timeout_s=30, what="fx left out", interval_s=0.5,
        )  # fmt: skip

        reply = await handle.send(RATE, 60)
        assert set(reply.unavailable) == {"fx"} and reply.tools == [], reply
        assert "times in a row" in reply.unavailable["fx"], reply.unavailable
        # A session that has never heard from fx asks it twice in a row
        # (catalog_misses), then leaves it out.
        fresh = await open_session(client, fx, catalog_retry_s=0)
        reply = await fresh.send(RATE, 60)
        assert set(reply.unavailable) == {"fx"} and reply.tools == [], reply
        assert reply.unavailable["fx"].startswith("no answer within 1 s, 2 times in a row")
        # Its next fetch is a single one.
        reply = await fresh.send(RATE, 60)
        assert reply.unavailable["fx"].startswith("no answer within 1 s, 3 times in a row")
    finally:
        await fx.worker.start()

    # Back: each session uses fx again within seconds. (After this many
    # timeouts in a row the server's Nexus circuit breaker is open for 2 s, so
    # the first fetch may still time out: docs/sessions.md, "After an outage".)
    for session in (handle, fresh):
        reply = await poll_until(
            partial(answered_with_fx, session), timeout_s=30, what="fx used again", interval_s=0.5
        )
        assert [(t.name, t.ok) for t in reply.tools] == [("fx_rate", True)], reply.text
        assert (await session.status()).teams["fx"] == "available"


async def answered_with_fx(session: Session) -> ChatReply | None:
    reply = await session.send(RATE, 60)
    return reply if not reply.unavailable else None


async def test_the_mcp_gateway_keeps_listing_a_team_whose_catalog_is_slow(
    client: Client, fx: SlowTeam
) -> None:
    routes = SessionConfig.for_mesh(fx.mesh).teams
    catalogs = Catalogs(
        DurableCalls(client, fx.mesh.orchestrator.task_queue), lambda: routes, timeout_s=1
    )
    assert "fx_rate" in await catalogs.tools(fresh=True)

    fx.slow(3)
    try:
        # The first late answer leaves fx listed from its cache; the second in
        # a row (catalog_misses) leaves it out.
        assert "fx_rate" in await catalogs.tools(fresh=True)
        assert (await catalogs.current()).states["fx"].serving_cached
        assert "fx_rate" not in await catalogs.tools(fresh=True)
    finally:
        fx.fast()
    assert "fx_rate" in await catalogs.tools(fresh=True)
    assert not (await catalogs.current()).states["fx"].serving_cached


async def test_a_session_refreshing_catalogs_beside_its_turns_continues_as_new_and_replays(
    client: Client, fx: SlowTeam
) -> None:
    # Every turn refreshes its catalogs beside the turn, fx's answers late, and
    # the runs are small: runs end while refreshes are in flight.
    handle = await open_session(client, fx, max_run_history_bytes=50_000, catalog_retry_s=0)
    assert (await handle.send(RATE, 60)).tools[0].ok
    fx.slow(1.5)
    try:
        for n in range(12):
            reply = await handle.send(RATE if n % 2 else "hello", 60)
            assert reply.ok and reply.unavailable == {}, reply
    finally:
        fx.fast()
    assert (await handle.send(RATE, 60)).tools[0].ok
    await handle.end()
    await assert_no_task_failures(handle.handle)
    runs = [r async for r in client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) >= 3, "the session should have continued as new several times"
    for run in sorted(runs, key=lambda r: r.start_time):
        history = await client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history()
        await replayer().replay_workflow(history)
        if directory := os.environ.get("RECORD_HISTORIES"):
            (Path(directory) / f"chat-catalog-beside-{run.run_id[-8:]}.json").write_text(
                history.to_json()
            )
