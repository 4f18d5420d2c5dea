"""The teams' catalogs, fetched from inside the session workflow.

Fetching is a Nexus operation of the session, so it is in the session's
history and replays deterministically; the result is kept in the session's
state, across continue-as-new, and fetched again when older than the
session's TTL. All due teams are asked at once, at a turn's start.

A slow team is not a dead one. Inside the workflow the only evidence is the
failure's type (never its text), and on Temporal 1.29 a worker that answers
late, a team whose handler keeps raising a retryable error (``UNAVAILABLE``,
``INTERNAL``: the server retries it until the deadline) and a task queue with
no poller at all look the same to the caller: a ``TimeoutError`` after
``catalog_timeout_s`` (a team's worker that cannot reach Temporal is, to the
caller, a queue with no poller). Only a final handler error arrives at once.
So the rule is by what the session already holds:

- the team answered: its catalog is used and cached;
- the team refused (a failure that is not a timeout, e.g. a non-retryable
  ``HandlerError``): it said it cannot serve, and it is left out of the turn;
- the fetch timed out and no catalog is cached: left out (nothing to offer).
  A team the session has never heard from (``FIRST_CONTACT_PATCH``) is asked
  again at once, up to ``catalog_misses`` fetches in a row, before it is left
  out: at a new session's first turn one timeout does not tell a slow team
  from a dead one, and on Temporal 1.29 a fast answer can even be lost (the
  server's matching drops a Nexus task's completion that beats its own
  bookkeeping: "Nexus task not found on completion" in the team's log; later
  servers register first, temporalio/temporal#8627). With 100 sessions
  opening at once on 2 cores, one fetch left live teams out of first turns;
- the fetch timed out and a catalog is cached: the cached catalog is still
  offered (stale-while-revalidate), until ``catalog_misses`` fetches in a row
  have timed out; then the team counts as unreachable and is left out.

A team left out is asked again after ``catalog_retry_s``; the turn in which it
answers uses it again. Since the ``CATALOG_PATCH`` change, a due refresh of a
team whose cached catalog is offered does not hold the turn up at all: it runs
beside the turn, with the longer ``catalog_refresh_timeout_s`` (nobody waits
for it, and a team busy under load answers in seconds, not in 3), and its
result is used in this turn if it comes within ``catalog_wait_s`` (0.5 s), else
from the next turn on. A team with nothing cached, a team left out, or a
catalog a tool call found out of date is still waited for, at most
``catalog_timeout_s``. The MCP gateway's ``McpCatalogs`` applies the same rule
with the catalogs the gateway last fetched. docs/sessions.md has the measured
cases and costs.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import TimeoutError as TemporalTimeout
from temporalio.exceptions import TimeoutType

with workflow.unsafe.imports_passed_through():
    from meshkit.observability import metrics
    from meshkit.toolkit.catalog import (
        CATALOG_OPERATION,
        ToolCatalog,
        call_headers,
        strict_schema_problems,
    )
    from orchestrator.contract import SessionConfig, TeamRoute
    from orchestrator.failures import root_message, timed_out
    from orchestrator.session_types import CatalogState
    from orchestrator.shared_catalogs import (
        ACTIVITY as SHARED_ACTIVITY,
    )
    from orchestrator.shared_catalogs import (
        STORE,
        SharedCatalog,
        SharedCatalogRequest,
        route_key,
    )

CATALOG_PATCH = "catalog-refresh-beside-the-turn"
"""Runs that passed it refresh cached catalogs without the turn waiting."""

FIRST_CONTACT_PATCH = "catalog-first-contact-asks-again"
"""Runs that passed it ask a team they have never heard from again after a timeout."""


async def refresh(
    config: SessionConfig,
    cache: dict[str, CatalogState],
    refreshing: dict[str, asyncio.Task[None]] | None = None,
    now: datetime | None = None,
    first_contact: bool = False,
    shared: bool = False,
    ahead: bool = False,
) -> dict[str, str]:
    """Fetch the catalogs that are due at ``now`` (the turn's clock, see
    ``orchestrator.turn_clock.TURN_CLOCK_PATCH``; by default ``workflow.now()``);
    returns the teams left out, with the reason. With ``first_contact``
    (``FIRST_CONTACT_PATCH``, asked by the caller where its message or request
    was delivered), a team never heard from is asked again after a timeout.
    With ``shared`` (``SHARED_PATCH``, asked there too), a due team takes a
    catalog another session of this worker fetched within the TTL, if there is
    one (``orchestrator.shared_catalogs``), before any team is asked. With
    ``ahead`` too (``AHEAD_PATCH``), and ``refreshing``, a team whose taken
    catalog the worker asks this session to refresh ahead of its expiry is
    fetched beside the turn, which does not wait for it.

    With ``refreshing`` (the session's fetches in flight), a team whose cached
    catalog is offered is fetched beside the turn: its task is kept there until
    it has updated ``cache``.
    """
    clock = now or workflow.now()
    due = [
        team
        for team in config.teams
        if team not in (refreshing or {}) and _due(cache.get(team), config, clock)
    ]
    waited, beside = due, []
    if refreshing is not None:
        waited = [team for team in due if not _offers_cache(cache.get(team))]
        beside = [team for team in due if team not in waited]
    # A team never heard from may time out catalog_misses times in a row.
    attempts = {
        team: config.catalog_misses if first_contact and _never_heard_from(cache.get(team)) else 1
        for team in waited
    }
    spent: dict[str, int] = {}
    refresh_ahead: list[str] = []
    if shared and due and config.catalog_ttl_s > 0:  # at 0 no catalog is ever fresh
        waited, beside, spent, refresh_ahead = await _take_shared(
            waited, beside, attempts, config, cache, clock, ahead and refreshing is not None
        )
    if refreshing is not None:
        for team in [*beside, *refresh_ahead]:
            refreshing[team] = asyncio.create_task(_refresh_beside(team, config, cache, refreshing))
    timeout_s = config.catalog_timeout_s
    results = await asyncio.gather(
        *(
            _fetch_waited(team, config.teams[team], timeout_s, attempts[team] - spent.get(team, 0))
            for team in waited
        )
    )
    for team, (result, timeouts) in zip(waited, results, strict=True):
        _record(team, result, config, cache, timeout_s, now, timeouts + spent.get(team, 0))
    if beside and refreshing is not None and config.catalog_wait_s > 0:
        # A team that answers at once is used in this turn (a new tool reaches
        # the session within its TTL); a slow one costs the turn this much.
        running = refreshing
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: not any(team in running for team in beside),
                timeout=timedelta(seconds=config.catalog_wait_s),
                timeout_summary="catalogs: use the cached ones",
            )
    return {
        team: cache[team].error or "its catalog could not be fetched"
        for team in config.teams
        if team in cache and not cache[team].available
    }


async def _refresh_beside(
    team: str,
    config: SessionConfig,
    cache: dict[str, CatalogState],
    refreshing: dict[str, asyncio.Task[None]],
) -> None:
    # Nobody waits for it: it may take as long as a busy team needs.
    timeout_s = config.catalog_refresh_timeout_s
    try:
        result: ToolCatalog | BaseException = await _fetch(team, config.teams[team], timeout_s)
    except asyncio.CancelledError:
        raise
    except Exception as err:
        result = err
    finally:
        refreshing.pop(team, None)
    _record(team, result, config, cache, timeout_s)


async def _fetch_waited(
    team: str, route: TeamRoute, timeout_s: float, attempts: int
) -> tuple[ToolCatalog | BaseException, int]:
    """The team's catalog, or the last failure and how many fetches timed out in a row
    (a failure that is not a timeout is the team's answer: not asked again)."""
    timeouts = 0
    if attempts <= 0:
        # The worker's fetch this session waited for already timed out as often.
        return _shared_timeout(team), timeouts
    while True:
        try:
            return await _fetch(team, route, timeout_s), timeouts
        except Exception as err:
            if not timed_out(err):
                return err, timeouts
            timeouts += 1
            if timeouts >= attempts:
                return err, timeouts


async def _take_shared(
    waited: list[str],
    beside: list[str],
    attempts: dict[str, int],
    config: SessionConfig,
    cache: dict[str, CatalogState],
    now: datetime,
    ahead: bool = False,
) -> tuple[list[str], list[str], dict[str, int], list[str]]:
    """Take the catalogs this worker's sessions fetched within the TTL (for a
    waited team, one another session is fetching now, once it comes); returns
    the waited and beside teams still to fetch, and per waited team the
    timeouts of a fetch it waited for, which count as its own. A team this
    session found out of date is not looked for, nor one fetched before this
    session's last failed fetch of it. The last list: the teams taken that
    this session refreshes ahead (``ahead``: it may be asked to)."""

    def routes(teams: list[str]) -> dict[str, str]:
        return {
            team: route_key(config.teams[team])
            for team in teams
            if not (team in cache and cache[team].stale)
        }

    request = SharedCatalogRequest(
        session=workflow.info().workflow_id,
        waited=routes(waited),
        beside=routes(beside),
        now=now,
        ttl_s=config.catalog_ttl_s,
        wait_s=config.catalog_timeout_s * max(attempts.values(), default=1) + 1,
        after={
            team: failed
            for team in [*waited, *beside]
            if team in cache and (failed := cache[team].failed_at) is not None
        },
        ahead=ahead,
    )
    if not request.waited and not request.beside:
        return waited, beside, {}, []
    try:
        found = await workflow.execute_local_activity(
            SHARED_ACTIVITY,
            request,
            result_type=dict[str, SharedCatalog],
            start_to_close_timeout=timedelta(seconds=request.wait_s + 5),
            retry_policy=RetryPolicy(maximum_attempts=1),
            summary="catalogs: shared by this worker",
        )
    except Exception as err:  # never worse than without sharing: ask the teams
        workflow.logger.warning("shared catalogs not read: %s", root_message(err))
        return waited, beside, {}, []
    spent: dict[str, int] = {}
    for team, answer in found.items():
        if answer.catalog is not None and answer.fetched_at is not None:
            cache[team] = CatalogState(catalog=answer.catalog, fetched_at=answer.fetched_at)
            metrics.catalog_shared(team)
        elif answer.timeouts and team in attempts:
            spent[team] = min(answer.timeouts, attempts[team])
    taken = {team for team, answer in found.items() if answer.catalog is not None}
    return (
        [team for team in waited if team not in taken],
        [team for team in beside if team not in taken],
        spent,
        [team for team in sorted(taken) if found[team].refresh],
    )


def _shared_timeout(team: str) -> BaseException:
    return TemporalTimeout(
        f"the catalog of team {team} was not fetched in time by this worker's other sessions",
        type=TimeoutType.SCHEDULE_TO_CLOSE,
        last_heartbeat_details=[],
    )


def _never_heard_from(state: CatalogState | None) -> bool:
    return state is None or (state.catalog is None and state.failed_at is None)


def _record(
    team: str,
    result: ToolCatalog | BaseException,
    config: SessionConfig,
    cache: dict[str, CatalogState],
    timeout_s: float,
    now: datetime | None = None,
    timeouts: int = 1,
) -> None:
    # A fetch the turn waited for is timed by the turn's clock when it has one;
    # one beside the turn by the task that got its answer (a Nexus result always
    # comes in a task of its own, so that time replays the same).
    now = now or workflow.now()
    previous = cache.get(team) or CatalogState()
    metrics.catalog_refresh(team, not isinstance(result, BaseException))
    # For the worker's other sessions; never from a replayed, older task.
    shared_key = None if workflow.unsafe.is_replaying() else route_key(config.teams[team])
    if not isinstance(result, BaseException):
        checked = _checked(result)
        cache[team] = CatalogState(catalog=checked, fetched_at=now)
        if shared_key:
            STORE.put(shared_key, checked, now)
        return
    slow = timed_out(result)
    if shared_key:
        STORE.failed(shared_key, workflow.info().workflow_id, timeouts if slow else 0)
    misses = previous.misses + (timeouts if slow else 1)
    # Only a timeout may be slowness; any other failure is the team's own answer.
    kept = slow and misses < config.catalog_misses and _offers_cache(previous, stale_ok=True)
    if not slow:
        reason = root_message(result)
    elif kept or misses == 1:
        reason = f"no answer within {timeout_s:g} s; is its worker running?"
    else:
        reason = (
            f"no answer within {timeout_s:g} s, {misses} times in a row; is its worker running?"
        )
    workflow.logger.warning(
        "catalog of team %s not fetched: %s%s",
        team, reason, "; its cached catalog is still offered" if kept else "",
    )  # fmt: skip
    cache[team] = previous.model_copy(
        update={
            "failed_at": now,
            "error": reason,
            "stale": False,
            "misses": misses,
            "serving_cached": kept,
        }
    )


def _offers_cache(state: CatalogState | None, stale_ok: bool = False) -> bool:
    """Whether the team's cached catalog is offered now (and not known to be out of date)."""
    return state is not None and state.available and (stale_ok or not state.stale)


def _due(state: CatalogState | None, config: SessionConfig, now: datetime) -> bool:
    if state is None or state.stale:
        return True
    if state.failed_at is not None and (
        state.fetched_at is None or state.failed_at >= state.fetched_at
    ):
        # The last fetch failed: ask again after the retry delay, whether the
        # team is left out or still offered from its cache.
        return now - state.failed_at >= timedelta(seconds=config.catalog_retry_s)
    assert state.fetched_at is not None
    return now - state.fetched_at >= timedelta(seconds=config.catalog_ttl_s)


async def _fetch(team: str, route: TeamRoute, timeout_s: float) -> ToolCatalog:
    client = workflow.create_nexus_client(service=route.service, endpoint=route.endpoint)
    return await client.execute_operation(
        CATALOG_OPERATION,
        None,
        output_type=ToolCatalog,
        schedule_to_close_timeout=timedelta(seconds=timeout_s),
        summary=f"{team}: catalog",
        headers=call_headers(workflow.info().workflow_id),
    )


def _checked(catalog: ToolCatalog) -> ToolCatalog:
    """The catalog without entries a hosted model would refuse (logged, not fatal)."""
    kept = []
    for tool in catalog.tools:
        problems = strict_schema_problems(tool.input_schema)
        if problems:
            workflow.logger.warning(
                "team %s: tool %s left out, its input schema is not strict: %s",
                catalog.team, tool.name, "; ".join(problems[:3]),
            )  # fmt: skip
            continue
        kept.append(tool)
    return catalog.model_copy(update={"tools": kept})
