"""The session's events survive continue-as-new: a client follows one session
across runs, offsets keep growing, and no turn's events are lost or repeated."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client

from meshkit.mesh import Mesh
from meshkit.polling import poll_until
from orchestrator.contract import SessionConfig, SessionEvent
from orchestrator.session_client import SessionClient

pytestmark = pytest.mark.asyncio


async def test_events_follow_a_session_across_continue_as_new(
    client: Client, running_mesh: Mesh
) -> None:
    config = SessionConfig.for_mesh(
        running_mesh, model="offline", max_run_history_bytes=50_000, stream=True
    )
    handle = await SessionClient(client, running_mesh).open(
        f"ev-{uuid.uuid4().hex[:8]}", config=config
    )
    turns = 0

    async def continued_as_new_twice() -> bool:
        nonlocal turns
        if (await handle.status()).runs >= 3:
            return True
        await handle.send(f"What is {turns} + 1?", 60)
        turns += 1
        assert turns < 60, "the session never continued as new"
        return False

    await poll_until(
        continued_as_new_twice,
        timeout_s=600,
        interval_s=0,
        what="the session did not continue as new twice",
    )

    seen: list[SessionEvent] = []

    async def collect() -> None:
        async for event in handle.follow(-1):
            seen.append(event)
            if event.kind == "reply" and event.turn == turns + 1:
                return

    follower = asyncio.ensure_future(collect())
    await handle.send("What is 2 * 21?", 60)
    await asyncio.wait_for(follower, 30)

    offsets = [event.offset for event in seen]
    assert offsets == sorted(set(offsets)), "offsets only grow, none twice"
    replies = [event.turn for event in seen if event.kind == "reply"]
    started = [event.turn for event in seen if event.kind == "turn_started"]
    assert replies == started == list(range(1, turns + 2)), "every turn, once, in order"
    last = [event for event in seen if event.turn == turns + 1]
    assert "42" in last[-1].text  # type: ignore[operator]
    assert "".join(e.delta or "" for e in last if e.kind == "text_delta") == last[-1].text
