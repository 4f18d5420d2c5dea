"""How soon a client sees a tool call start: events pushed by the session
against the status query polled every 250 ms, and what following costs a turn.

The delay runs from the tool call's start in the workflow (the time of the
workflow task that started it, as the event and the status carry it) to the
moment the client has it. Three sessions take the same tool turns: one with
nobody watching (the turn's own cost), one followed through its event stream,
one polled as the terminal chat used to.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from temporalio.client import Client

from bench.config import BenchConfig
from bench.stats import Summary
from bench.turns import BY_NAME, TurnResults, end_session, one_turn, open_session
from meshkit.mesh import Mesh
from orchestrator.session import Session

KIND = BY_NAME["nexus_workflow"]
POLL_INTERVAL_S = 0.25


@dataclass
class PushResult:
    pushed: Summary
    """Tool start to client, events pushed."""
    polled: Summary
    """Tool start to client, status polled every 250 ms."""
    turn_alone: Summary
    turn_followed: Summary
    errors: list[str]


async def _follow(session: Session, delays: list[float]) -> None:
    async for event in session.follow(-1):
        if event.kind == "tool_started" and event.at is not None:
            delays.append((time.time() - event.at.timestamp()) * 1000)


class Poller:
    """The terminal chat's old way: the status query every 250 ms, and calls that
    started and ended between two polls reported when the reply arrives."""

    def __init__(self, delays: list[float]) -> None:
        self.delays = delays
        self.seen: set[str] = set()

    async def check(self, session: Session) -> None:
        with contextlib.suppress(Exception):
            for call in (await session.status()).tools:
                if call.call_id not in self.seen and call.started_at is not None:
                    self.seen.add(call.call_id)
                    self.delays.append((time.time() - call.started_at.timestamp()) * 1000)

    async def run(self, session: Session) -> None:
        while True:
            await self.check(session)
            await asyncio.sleep(POLL_INTERVAL_S)


async def _turns(
    client: Client,
    mesh: Mesh,
    config: BenchConfig,
    label: str,
    watch: Callable[[Session], Awaitable[None]] | None,
    after_turn: Callable[[Session], Awaitable[None]] | None = None,
) -> TurnResults:
    results = TurnResults()
    session = await open_session(client, mesh, f"push-{label}")
    watcher = asyncio.ensure_future(watch(session)) if watch else None
    try:
        for n in range(config.warmup + config.turn_samples):
            measured = results if n >= config.warmup else None
            await one_turn(session, KIND, config.turn_timeout_s, measured)
            if after_turn:
                await after_turn(session)
    finally:
        if watcher:
            watcher.cancel()
        await end_session(session)
    return results


async def measure_push(client: Client, mesh: Mesh, config: BenchConfig) -> PushResult:
    pushed: list[float] = []
    polled: list[float] = []
    alone = await _turns(client, mesh, config, "alone", None)
    followed = await _turns(client, mesh, config, "followed", lambda h: _follow(h, pushed))
    poller = Poller(polled)
    await _turns(client, mesh, config, "polled", poller.run, poller.check)
    # Warm-up turns are watched too; only the measured turns' delays count.
    return PushResult(
        pushed=Summary.of(pushed[config.warmup :]),
        polled=Summary.of(polled[config.warmup :]),
        turn_alone=Summary.of(alone.latencies),
        turn_followed=Summary.of(followed.latencies),
        errors=alone.errors + followed.errors,
    )
