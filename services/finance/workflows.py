"""Workflows and activities behind the Finance team's workflow-backed operations."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from services.finance.contract import StockPrice, StockPriceRequest
    from services.finance.market import MarketDataSettings, fetch_quote


class MarketActivities:
    """Activities holding the market-data settings of the worker that runs them."""

    def __init__(self, settings: MarketDataSettings) -> None:
        self._settings = settings

    @activity.defn(name="fetch_stock_quote")
    async def fetch_stock_quote(self, request: StockPriceRequest) -> StockPrice:
        return await fetch_quote(self._settings, request.ticker)


@workflow.defn(name="StockPriceWorkflow")
class StockPriceWorkflow:
    """Fetches a quote, retrying market-data outages with backoff."""

    @workflow.run
    async def run(self, request: StockPriceRequest) -> StockPrice:
        return await workflow.execute_activity_method(
            MarketActivities.fetch_stock_quote,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=500),
                maximum_interval=timedelta(seconds=10),
                non_retryable_error_types=[
                    "BackendUnauthorized",
                    "BackendRefused",
                    "UnknownTicker",
                ],
            ),
        )
