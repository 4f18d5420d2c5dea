"""The Finance team's registration: what the generic team worker runs for it.

Quotes come from ``MARKET_DATA_URL``/``MARKET_DATA_API_KEY`` (demo data when
unset), expenses from ``EXPENSES_*``; see README.
"""

from __future__ import annotations

from meshkit.toolkit import TeamRegistration
from meshkit.toolkit.store import require_backend
from services.finance.contract import HINTS, POLICIES
from services.finance.expenses import ExpenseSettings
from services.finance.handler import FinanceServiceHandler
from services.finance.market import MarketDataSettings
from services.finance.workflows import (
    ExpenseActivities,
    MarketActivities,
    StockPriceWorkflow,
    SubmitExpenseWorkflow,
)


def register(
    market: MarketDataSettings | None = None, expenses: ExpenseSettings | None = None
) -> TeamRegistration:
    quotes = MarketActivities(market or MarketDataSettings())
    expenses = expenses or ExpenseSettings()
    require_backend(expenses.url, "EXPENSES_URL", "Finance's expense claims")
    claims = ExpenseActivities(expenses)
    return TeamRegistration(
        handler=FinanceServiceHandler,
        policies=POLICIES,
        hints=HINTS,
        workflows=[StockPriceWorkflow, SubmitExpenseWorkflow],
        activities=[quotes.fetch_stock_quote, claims.submit_expense],
    )
