"""The teams' catalogs, fetched from inside the session workflow.

Fetching is a Nexus operation of the session, so it is in the session's
history and replays deterministically; the result is kept in the session's
state, across continue-as-new, and used until it is older than the session's
TTL. All due teams are asked at once, at a turn's start.

The rule for a team that does not answer: it is unavailable for that turn.
Its tools are left out, even if an older catalog is cached, because a call to
a team whose worker does not answer would only wait for its timeout; the model
and the chat are told. It is asked again after ``catalog_retry_s``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

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


async def refresh(
    config: SessionConfig, cache: dict[str, CatalogState], now: datetime | None = None
) -> dict[str, str]:
    """Fetch the catalogs that are due at ``now`` (the turn's clock; by default
    ``workflow.now()``); returns the unavailable teams with the reason."""
    now = now or workflow.now()
    due = [team for team in config.teams if _due(cache.get(team), config, now)]
    results = await asyncio.gather(
        *(_fetch(team, config.teams[team], config) for team in due), return_exceptions=True
    )
    for team, result in zip(due, results, strict=True):
        if isinstance(result, asyncio.CancelledError):
            raise result
        previous = cache.get(team) or CatalogState()
        metrics.catalog_refresh(team, not isinstance(result, BaseException))
        if isinstance(result, BaseException):
            reason = root_message(result)
            if timed_out(result):
                reason = f"no answer within {config.catalog_timeout_s:g} s; is its worker running?"
            workflow.logger.warning("catalog of team %s not fetched: %s", team, reason)
            cache[team] = previous.model_copy(
                update={"failed_at": now, "error": reason, "stale": False}
            )
        else:
            cache[team] = CatalogState(catalog=_checked(result), fetched_at=now)
    return {
        team: cache[team].error or "its catalog could not be fetched"
        for team in config.teams
        if team in cache and not cache[team].available
    }


def _due(state: CatalogState | None, config: SessionConfig, now: datetime) -> bool:
    if state is None or state.stale:
        return True
    if not state.available:
        assert state.failed_at is not None
        return now - state.failed_at >= timedelta(seconds=config.catalog_retry_s)
    assert state.fetched_at is not None
    return now - state.fetched_at >= timedelta(seconds=config.catalog_ttl_s)


async def _fetch(team: str, route: TeamRoute, config: SessionConfig) -> ToolCatalog:
    client = workflow.create_nexus_client(service=route.service, endpoint=route.endpoint)
    return await client.execute_operation(
        CATALOG_OPERATION,
        None,
        output_type=ToolCatalog,
        # Short: a team whose worker does not answer is left out of the turn
        # rather than holding it up.
        schedule_to_close_timeout=timedelta(seconds=config.catalog_timeout_s),
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
