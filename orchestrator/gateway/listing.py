"""The teams' tools as MCP tools, from their catalogs.

The gateway keeps the catalogs of the teams that answered (fetched through
:class:`~orchestrator.gateway.durable.DurableCalls`) for a short time, and
lists each of their tools as the team publishes it: its description, its
strict input schema, its output schema, a title naming the team, and hints
that follow the team's policy (read-only, or destructive when a call needs
approval). A team that does not answer is not listed, unless it only answers late while
its last catalog is known (:mod:`orchestrator.catalogs` says how each case is
told apart).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from meshkit.toolkit.catalog import ToolEntry
from orchestrator.contract import TeamRoute
from orchestrator.gateway.calls import GatewayCatalogs
from orchestrator.gateway.durable import DurableCalls

log = logging.getLogger("orchestrator.gateway")


@dataclass(frozen=True)
class ListedTool:
    """A tool as the gateway lists it, and the team operation behind it."""

    name: str
    team: str
    route: TeamRoute
    entry: ToolEntry

    def as_mcp(self) -> types.Tool:
        entry = self.entry
        needs_approval = entry.approval is not None
        return types.Tool(
            name=self.name,
            title=f"{entry.name} ({self.team} team)",
            description=entry.description,
            input_schema=entry.input_schema,
            # MCP wants an object's schema here, and holds the result to it.
            output_schema=entry.output_schema if _is_object(entry.output_schema) else None,
            annotations=types.ToolAnnotations(
                title=f"{entry.name} ({self.team} team)",
                # The team's policy says which tools only read, and which calls need a
                # person's approval: those may change something that matters. A tool
                # the team does not call read-only is taken to change something.
                read_only_hint=entry.read_only,
                destructive_hint=needs_approval and not entry.read_only,
                open_world_hint=True,
            ),
        )


RESERVED = frozenset({"ask"})
"""Names of the gateway's own tools: a team's tool of that name is qualified."""


def _is_object(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object"


def listed_tools(
    catalogs: GatewayCatalogs, routes: Mapping[str, TeamRoute]
) -> dict[str, ListedTool]:
    """Every available team's tools by the name clients see: a name two teams
    share, or one of the gateway's own, is qualified by the team
    (``finance_report``)."""
    owners: dict[str, list[str]] = {name: ["gateway"] for name in RESERVED}
    for team, catalog in catalogs.catalogs.items():
        for entry in catalog.tools:
            owners.setdefault(entry.name, []).append(team)
    listed: dict[str, ListedTool] = {}
    for team in sorted(catalogs.catalogs):
        if team not in routes:
            continue
        for entry in catalogs.catalogs[team].tools:
            name = entry.name if len(owners[entry.name]) == 1 else f"{team}_{entry.name}"
            listed[name] = ListedTool(name, team, routes[team], entry)
    return listed


def fingerprint(catalogs: GatewayCatalogs) -> tuple[tuple[str, str], ...]:
    """What a client's list depends on: which teams answered, with which catalog version."""
    return tuple(sorted((team, c.version) for team, c in catalogs.catalogs.items()))


class Catalogs:
    """The teams' catalogs, fetched when older than ``ttl_s``; one fetch at a time."""

    def __init__(
        self,
        calls: DurableCalls,
        routes: Callable[[], Mapping[str, TeamRoute]],
        *,
        ttl_s: float = 10.0,
        timeout_s: float = 3.0,
    ) -> None:
        self._calls = calls
        self._routes = routes
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._current: GatewayCatalogs | None = None
        self._asked: dict[str, TeamRoute] = {}
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def tools(self, *, fresh: bool = False) -> dict[str, ListedTool]:
        routes = dict(self._routes())
        return listed_tools(await self.current(fresh=fresh), routes)

    async def current(self, *, fresh: bool = False) -> GatewayCatalogs:
        """The catalogs; fetched first when ``fresh`` or older than the TTL. While
        a fetch runs, others get the last catalogs rather than wait for it (a team
        that does not answer holds a fetch up to its timeout)."""
        if not fresh and self._current is not None and self._lock.locked():
            return self._current
        async with self._lock:
            age = time.monotonic() - self._fetched
            if fresh or self._current is None or age >= self.ttl_s:
                routes = dict(self._routes())
                # What the last fetch learned, for teams whose route is unchanged.
                known = self._current.states if self._current else {}
                cached = {t: s for t, s in known.items() if self._asked.get(t) == routes.get(t)}
                self._current = await self._calls.catalogs(routes, self.timeout_s, cached)
                self._asked = routes
                self._fetched = time.monotonic()
                for team, reason in self._current.unavailable.items():
                    log.warning("team %s is not listed: %s", team, reason)
            return self._current
