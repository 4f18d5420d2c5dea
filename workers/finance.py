"""Worker of the Finance team's namespace: the FinanceService Nexus handler and its workflows.

Run: ``python -m workers.finance``. Quotes come from ``MARKET_DATA_URL``/
``MARKET_DATA_API_KEY`` (demo data when unset); see README.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from services.finance.expenses import ExpenseSettings
from services.finance.handler import FinanceServiceHandler
from services.finance.market import MarketDataSettings
from services.finance.workflows import (
    ExpenseActivities,
    MarketActivities,
    StockPriceWorkflow,
    SubmitExpenseWorkflow,
)
from workers._run import cli_main, configure_logging, run_worker
from workers.mesh import Mesh, connect, load_mesh

TEAM = "finance"


async def main(
    mesh: Mesh,
    market: MarketDataSettings,
    expenses: ExpenseSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    team = mesh.team(TEAM)
    client = await connect(
        mesh, team, data_converter=pydantic_data_converter, require_namespace=True
    )
    activities = MarketActivities(market)
    expense_activities = ExpenseActivities(expenses or ExpenseSettings())
    worker = Worker(
        client,
        task_queue=team.task_queue,
        nexus_service_handlers=[FinanceServiceHandler(team.task_queue)],
        workflows=[StockPriceWorkflow, SubmitExpenseWorkflow],
        activities=[activities.fetch_stock_quote, expense_activities.submit_expense],
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
    await run_worker(worker, TEAM, stop)


if __name__ == "__main__":
    configure_logging()
    cli_main("finance", main(load_mesh(), MarketDataSettings(), ExpenseSettings()))
