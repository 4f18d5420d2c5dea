"""Workflows and activities behind the Finance team's workflow-backed operations."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from meshkit.failover import ACTIVITY_HEARTBEAT
    from meshkit.toolkit.errors import backend_retry
    from services.finance.contract import (
        Expense,
        StockPrice,
        StockPriceRequest,
        SubmitExpenseRequest,
    )
    from services.finance.expenses import ExpenseOrder, ExpenseSettings, submit_expense
    from services.finance.market import MarketDataSettings, fetch_quote

# A tool call finishes on the build that started it: a rollout of this team
# never changes the code under a call in flight, and the old build's worker
# keeps polling until its last pinned call ends (meshkit.rollout).
PINNED = VersioningBehavior.PINNED


# Outages (timeouts, 429, 5xx) are retried with backoff; refusals are final.
BACKEND_RETRY = backend_retry()
QUOTE_RETRY = backend_retry("UnknownTicker")


class MarketActivities:
    """Activities holding the market-data settings of the worker that runs them."""

    def __init__(self, settings: MarketDataSettings) -> None:
        self._settings = settings

    @activity.defn(name="fetch_stock_quote")
    async def fetch_stock_quote(self, request: StockPriceRequest) -> StockPrice:
        return await fetch_quote(self._settings, request.ticker)


@workflow.defn(name="StockPriceWorkflow", versioning_behavior=PINNED)
class StockPriceWorkflow:
    """Fetches a quote, retrying market-data outages with backoff."""

    @workflow.run
    async def run(self, request: StockPriceRequest) -> StockPrice:
        return await workflow.execute_activity_method(
            MarketActivities.fetch_stock_quote,
            request,
            start_to_close_timeout=timedelta(seconds=15),
            # A call whose worker died is retried on another replica this soon.
            heartbeat_timeout=ACTIVITY_HEARTBEAT,
            schedule_to_close_timeout=timedelta(minutes=2),
            retry_policy=QUOTE_RETRY,
        )


class ExpenseActivities:
    """Activities that file expense claims, holding the worker's backend settings."""

    def __init__(self, settings: ExpenseSettings) -> None:
        self._settings = settings

    @activity.defn(name="submit_expense")
    async def submit_expense(self, order: ExpenseOrder) -> Expense:
        return await submit_expense(self._settings, order)


@workflow.defn(name="SubmitExpenseWorkflow", versioning_behavior=PINNED)
class SubmitExpenseWorkflow:
    """Files one expense claim exactly once.

    The idempotency key is this workflow's id, which the Nexus handler derives
    from the operation's request id: a retried activity (say, after the worker
    died before the API's answer arrived) sends the same key, and the backend
    returns the claim it already has.
    """

    @workflow.run
    async def run(self, request: SubmitExpenseRequest) -> Expense:
        order = ExpenseOrder(request=request, idempotency_key=workflow.info().workflow_id)
        return await workflow.execute_activity_method(
            ExpenseActivities.submit_expense,
            order,
            start_to_close_timeout=timedelta(seconds=10),
            # A claim whose worker died mid-call is retried on another replica this soon.
            heartbeat_timeout=ACTIVITY_HEARTBEAT,
            schedule_to_close_timeout=timedelta(minutes=5),
            retry_policy=BACKEND_RETRY,
        )
