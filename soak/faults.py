"""Faults at random times, one after another, each repaired before the next.

The kinds come from a shuffled bag (every kind once, in a random order, then
again), so a run of F faults has each kind F/6 times give or take one; the
targets, durations and gaps are drawn from the run's seeded RNG.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from meshdev.fakes import FAULTS
from meshdev.processes import ORCHESTRATOR
from soak.config import FAULT_KINDS, SoakConfig
from soak.rig import BACKEND_TEAM, BACKEND_TOOLS, BACKENDS, Rig

log = logging.getLogger("soak.faults")


@dataclass
class Fault:
    """One injected fault: what, where, and when it started and was repaired."""

    kind: str
    target: str
    """The component (orchestrator or a team), or the backend, it hit."""
    components: tuple[str, ...]
    """The components whose turns count for its recovery time."""
    started: float
    repaired: float = 0.0
    """When the mesh could serve again: replicas respawned, the server started,
    the relay or the backend restored. For a single replica's kill, the kill
    itself (its surviving replicas are meant to take over at once)."""
    detail: str = ""
    done: float = 0.0
    """When the injector moved on (the restarted replicas polled)."""
    tools: tuple[str, ...] = field(default=())
    """For a backend fault: the tools whose turns count for its recovery time."""


class Injector:
    def __init__(self, rig: Rig, config: SoakConfig, rng: random.Random) -> None:
        self.rig = rig
        self.config = config
        self.rng = rng
        self.faults: list[Fault] = []
        self._bag: list[str] = []

    def _next_kind(self) -> str:
        if not self._bag:
            self._bag = list(FAULT_KINDS)
            self.rng.shuffle(self._bag)
        return self._bag.pop()

    def _duration(self) -> float:
        low, high = self.config.fault_s
        return self.rng.uniform(low, high)

    async def run(self, until: Callable[[], bool]) -> None:
        """Inject faults until ``until()`` is true; the fault in progress is repaired."""
        gap = self.config.fault_gap_s
        await asyncio.sleep(self.rng.uniform(0.5, 1.5) * gap)
        while not until():
            kind = self._next_kind()
            fault = await getattr(self, kind)()
            fault.done = time.monotonic()
            self.faults.append(fault)
            log.info(
                "fault %s on %s%s: repaired after %.1f s, done after %.1f s",
                fault.kind,
                fault.target,
                f" ({fault.detail})" if fault.detail else "",
                fault.repaired - fault.started,
                fault.done - fault.started,
            )
            await asyncio.sleep(self.rng.uniform(0.5, 1.5) * gap)

    def _component(self) -> str:
        return self.rng.choice([*self.rig.teams, ORCHESTRATOR])

    async def replica_kill(self) -> Fault:
        """kill -9 of one replica; restarted after a short pause."""
        component = self._component()
        slot = self.rng.choice(self.rig.replicas[component])
        killed = await asyncio.to_thread(slot.kill)
        fault = Fault("replica_kill", component, (component,), killed, killed, slot.name)
        await asyncio.sleep(self.rng.uniform(1.0, 3.0))
        await slot.restart(killed)
        return fault

    async def component_kill(self) -> Fault:
        """kill -9 of every replica of one component at once; respawned after a pause."""
        component = self._component()
        slots = self.rig.replicas[component]
        killed = time.monotonic()
        for slot in slots:
            await asyncio.to_thread(slot.kill)
        fault = Fault("component_kill", component, (component,), killed)
        await asyncio.sleep(self._duration())
        fault.repaired = time.monotonic()
        await asyncio.gather(*(slot.restart(killed) for slot in slots))
        return fault

    async def server_restart(self) -> Fault:
        everything = (*self.rig.teams, ORCHESTRATOR)
        stopped, started = await self.rig.restart_server(self.rng.uniform(0.5, 2.0))
        return Fault("server_restart", "temporal", everything, stopped, started)

    async def team_cut(self) -> Fault:
        """A team's workers cut off from Temporal at its relay."""
        team = self.rng.choice(self.rig.teams)
        relay = self.rig.relays[team]
        started = time.monotonic()
        relay.cut()
        await asyncio.sleep(self._duration())
        relay.restore()
        repaired = time.monotonic()
        self.rig.cut[team].append((started, repaired))
        return Fault("team_cut", team, (team,), started, repaired)

    async def _backend(self, mode: str) -> Fault:
        assert mode in FAULTS
        backend = self.rng.choice(BACKENDS)
        http = self.rig.backend(backend)
        started = time.monotonic()
        http.fail(mode)  # type: ignore[arg-type]
        await asyncio.sleep(self._duration())
        http.heal()
        team = BACKEND_TEAM[backend]
        return Fault(
            f"backend_{mode}",
            backend,
            (team,),
            started,
            time.monotonic(),
            tools=BACKEND_TOOLS[backend],
        )

    async def backend_5xx(self) -> Fault:
        return await self._backend("5xx")

    async def backend_hang(self) -> Fault:
        return await self._backend("hang")
