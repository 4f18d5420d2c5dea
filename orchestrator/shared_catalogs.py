"""Catalogs shared by the sessions of one orchestrator worker process.

A team's catalog is the same for every session of the orchestrator's namespace
(the team builds it once, from its contract). Without sharing, each session
fetched each team's catalog at its first turn and every ``catalog_ttl_s``
after: a Nexus operation per team and session, each a round trip through the
server and the team's worker. At 100 sessions opening on 2 cores that was the
largest cost of the mesh's own (docs/benchmark.md).

So a catalog a session fetches is also kept here, in the worker process, and
a session that needs a team's catalog first asks, with the local activity
``shared_catalogs``, for one fetched by any session of its worker within its
``catalog_ttl_s``. The answer is recorded in the session's history like a
fetch's result, so a replay (on any replica) takes the same catalogs; a local
activity always runs in the process that runs its workflow task, the one
whose sessions filled this store. A team none of them has heard from lately,
or one the session itself found out of date or failing since, is fetched from
the team as before (``orchestrator.catalogs``).

Sessions that open together (a deploy, a busy hour) would all miss at once
and all ask. So the first session to miss a team it waits for *claims* the
fetch: it asks the team, and the others' local activities wait for its
answer, at most ``MAX_WAIT_S`` (a waiting session holds a workflow task
slot, see there). A catalog wakes them with it; a fetch that timed out
wakes them with its timeouts, which count as theirs (a team that did not
answer the worker does not get asked twice as long); any other failure, or
no answer in time, sends each to ask the team itself. A session that claims
a fetch waits for no other session's: two sessions each holding a claim the
other waits for would both wait out their time; it asks the teams others
claimed itself.
A team whose cached catalog a session still offers (its refresh runs beside
the turn) takes only a fresh catalog: its turn never waits here.

A catalog that expires while no session fetches it would make the next
sessions miss together, at the worst time: a burst of new sessions. So a
session that takes a catalog past ``AHEAD_FRACTION`` of its TTL may be told
to *refresh it ahead* (``SharedCatalog.refresh``): it asks the team beside its
turn, which never waits for it, and the catalog it gets goes into the store
like any other. One session at a time refreshes a team ahead; the grant ends
with a newer catalog, the fetch's failure, or ``AHEAD_HOLD_S``.

Workflow code writes here only while it runs a task for the first time, never
while it replays one, so an old history never puts an old catalog back. The
write decides nothing in the workflow that writes it; what another session
reads is recorded in that session's history.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import activity

from meshkit.toolkit.catalog import ToolCatalog
from orchestrator.contract import TeamRoute

log = logging.getLogger(__name__)

SHARED_PATCH = "catalogs-shared-by-worker"
"""Runs that passed it take a catalog another session of their worker fetched
within the TTL instead of asking the team."""

ACTIVITY = "shared_catalogs"

MAX_WAIT_S = 1.0
"""Longest a session waits for another's fetch. A waiting local activity holds
its session's workflow task, and with it one of the worker's workflow task
slots (``MESH_WORKER_WORKFLOW_TASK_SLOTS``, 200; the SDK's default is 100);
the session that claimed the fetch needs a slot to take the team's answer.
With as many sessions waiting as there are slots, nothing moved until the
waits ran out: at 100 sessions whose catalogs expired at once, with 100
slots, first turns took 7-11 s (``python -m bench.level``, its third round).
After this long a session asks the team itself, as without sharing."""


AHEAD_PATCH = "catalogs-refreshed-ahead"
"""Runs that passed it ask for refreshes ahead of expiry (``SharedCatalogRequest.ahead``)."""

AHEAD_FRACTION = 0.5
"""A catalog taken past this share of its TTL is refreshed ahead by one session."""

AHEAD_HOLD_S = 5.0
"""Longest one session holds a team's refresh ahead before another may take it."""


class SharedCatalogRequest(BaseModel):
    """Which teams' catalogs a session would take, and how old they may be."""

    session: str = Field(description="The asking session: the owner of the fetches it claims.")
    waited: dict[str, str] = Field(
        default_factory=dict,
        description="Teams the turn waits for, name to route key (see route_key): the "
        "session may wait for a fetch another session claimed, or claim it.",
    )
    beside: dict[str, str] = Field(
        default_factory=dict,
        description="Teams refreshed beside the turn: only a fresh catalog is taken.",
    )
    now: datetime = Field(description="The session's clock.")
    ttl_s: float = Field(gt=0, description="Oldest catalog taken, in seconds before now.")
    wait_s: float = Field(
        default=0, ge=0, description="Longest a claimed fetch may take: how long others wait."
    )
    after: dict[str, datetime] = Field(
        default_factory=dict,
        description="Per team, a time the catalog must have been fetched after: the "
        "session's own last failed fetch of it.",
    )
    ahead: bool = Field(
        default=False,
        description="The session can refresh a team beside its turn: it may be told to "
        "refresh ahead a catalog it takes that is past AHEAD_FRACTION of its TTL.",
    )


class SharedCatalog(BaseModel):
    """What the worker's sessions know of a team's catalog: the catalog, or that
    the fetch the asking session waited for timed out."""

    catalog: ToolCatalog | None = None
    fetched_at: datetime | None = Field(
        default=None, description="When the session that fetched it got it."
    )
    timeouts: int = Field(
        default=0, description="Without a catalog: times the awaited fetch timed out in a row."
    )
    refresh: bool = Field(
        default=False,
        description="The asking session refreshes this team beside its turn: the catalog "
        "is past AHEAD_FRACTION of its TTL and no other session is refreshing it.",
    )


@dataclass
class _Claim:
    owner: str
    deadline: float
    loop: asyncio.AbstractEventLoop
    done: asyncio.Event = field(default_factory=asyncio.Event)
    timeouts: int = 0


class SharedStore:
    """The newest catalog fetched per team route, and the fetches in flight.

    Claims are made by the local activity, on the worker's event loop; catalogs
    and failures arrive from workflow code, in the SDK's workflow threads, and
    wake the waiting activities through the loop."""

    def __init__(self) -> None:
        self._entries: dict[str, SharedCatalog] = {}
        self._claims: dict[str, _Claim] = {}
        self._ahead: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def put(self, key: str, catalog: ToolCatalog, fetched_at: datetime) -> None:
        """A session fetched ``catalog`` at ``fetched_at``: keep it if newest, wake waiters."""
        with self._lock:
            known = self._entries.get(key)
            if known is None or known.fetched_at is None or known.fetched_at < fetched_at:
                self._entries[key] = SharedCatalog(catalog=catalog, fetched_at=fetched_at)
                self._ahead.pop(key, None)
            claim = self._claims.pop(key, None)
        if claim is not None:
            claim.loop.call_soon_threadsafe(claim.done.set)

    def failed(self, key: str, owner: str, timeouts: int) -> None:
        """``owner``'s fetch failed (``timeouts`` > 0: it timed out that many times):
        the waiters of its claim stop waiting."""
        with self._lock:
            if self._ahead.get(key, ("", 0.0))[0] == owner:
                del self._ahead[key]
            claim = self._claims.get(key)
            if claim is None or claim.owner != owner:
                return
            del self._claims[key]
            claim.timeouts = timeouts
        claim.loop.call_soon_threadsafe(claim.done.set)

    def fresh(
        self, key: str, now: datetime, ttl_s: float, after: datetime | None = None
    ) -> SharedCatalog | None:
        entry = self._entries.get(key)
        if entry is None or entry.fetched_at is None:
            return None
        if now - entry.fetched_at >= timedelta(seconds=ttl_s):
            return None
        if after is not None and entry.fetched_at <= after:
            return None
        return entry

    def ahead(self, key: str, entry: SharedCatalog, request: SharedCatalogRequest) -> SharedCatalog:
        """``entry`` as given to ``request.session``: marked for it to refresh
        ahead when it is past ``AHEAD_FRACTION`` of the TTL and nobody else is."""
        if not request.ahead or entry.catalog is None or entry.fetched_at is None:
            return entry
        age = (request.now - entry.fetched_at).total_seconds()
        if age < request.ttl_s * AHEAD_FRACTION:
            return entry
        now = time.monotonic()
        with self._lock:
            owner, until = self._ahead.get(key, ("", 0.0))
            if owner not in ("", request.session) and until > now:
                return entry
            self._ahead[key] = (request.session, now + AHEAD_HOLD_S)
        return entry.model_copy(update={"refresh": True})

    async def take(self, request: SharedCatalogRequest) -> dict[str, SharedCatalog]:
        """For ``request.waited``: fresh catalogs; for the rest, the fetches
        ``request.session`` claims, or, when it claims none, the outcome of the
        fetches other sessions claimed, once they come.

        A session that claims a fetch never waits for another's: its own
        waiters would wait for it in turn, and two sessions each holding a
        claim the other waits for would both wait out the deadline. It asks
        the teams others claimed itself."""
        loop = asyncio.get_running_loop()
        found: dict[str, SharedCatalog] = {}
        others: dict[str, tuple[str, _Claim]] = {}
        claimed = False
        with self._lock:
            for team, key in request.waited.items():
                entry = self.fresh(key, request.now, request.ttl_s, request.after.get(team))
                if entry is not None:
                    found[team] = entry
                    continue
                claim = self._claims.get(key)
                deadline = loop.time() + request.wait_s
                if claim is not None and claim.owner == request.session:
                    # Asked again (its workflow task was lost and is run again):
                    # the same claim, which its waiters hold.
                    claim.deadline = deadline
                    claimed = True
                elif claim is None or claim.deadline <= loop.time():
                    if claim is not None:  # nobody answered it: its waiters ask themselves
                        claim.loop.call_soon_threadsafe(claim.done.set)
                    self._claims[key] = _Claim(request.session, deadline, loop)
                    claimed = True
                else:
                    others[team] = (key, claim)
        if claimed or not others:
            return found
        answers = await asyncio.gather(
            *(self._outcome(team, key, claim, request) for team, (key, claim) in others.items())
        )
        for team, answer in zip(others, answers, strict=True):
            if answer is not None:
                found[team] = answer
        return found

    async def _outcome(
        self, team: str, key: str, claim: _Claim, request: SharedCatalogRequest
    ) -> SharedCatalog | None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            await asyncio.wait_for(
                claim.done.wait(), min(max(claim.deadline - began, 0), MAX_WAIT_S)
            )
        except TimeoutError:
            log.info(
                "session %s waited %.1f s for session %s's fetch of %s: it asks the team itself",
                request.session, loop.time() - began, claim.owner, key,
            )  # fmt: skip
            return None
        entry = self.fresh(key, request.now, request.ttl_s, request.after.get(team))
        if entry is None and claim.timeouts:
            return SharedCatalog(timeouts=claim.timeouts)
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._claims.clear()
            self._ahead.clear()


STORE = SharedStore()
"""This process's store: every orchestrator worker of the process shares it."""


def route_key(route: TeamRoute) -> str:
    """Where a catalog came from: the same team reached the same way."""
    return f"{route.endpoint}/{route.service}"


@activity.defn(name=ACTIVITY)
async def shared_catalogs(request: SharedCatalogRequest) -> dict[str, SharedCatalog]:
    """What this worker's sessions know of the requested teams' catalogs."""
    found: dict[str, SharedCatalog] = {}
    for team, key in request.beside.items():
        entry = STORE.fresh(key, request.now, request.ttl_s, request.after.get(team))
        if entry is not None:
            found[team] = entry
    found.update(await STORE.take(request))
    keys = {**request.beside, **request.waited}
    return {team: STORE.ahead(keys[team], entry, request) for team, entry in found.items()}
