"""The Finance team's Nexus contract.

Callers import only this module: it holds the operation inputs and outputs and
the service definition, never handler or worker code. Each input model's
docstring and field descriptions become the agent's view of the tool.
"""

from __future__ import annotations

import nexusrpc
from pydantic import BaseModel, Field


class StockPriceRequest(BaseModel):
    """Latest traded price of a stock, by ticker symbol."""

    ticker: str = Field(
        description="Ticker symbol: 1-5 capital letters, optionally with a class suffix such as BRK.B."
    )


class StockPrice(BaseModel):
    ticker: str = Field(description="The ticker symbol.")
    price: float = Field(description="Latest traded price.")
    currency: str = Field(description="ISO currency code of the price.")
    change_percent: float | None = Field(
        default=None, description="Change since the previous close, in percent."
    )
    as_of: str = Field(description="ISO 8601 time of the quote.")
    source: str = Field(
        description="Where the quote comes from: a market-data URL, or 'demo data'."
    )


class RoiRequest(BaseModel):
    """Future value and return of an investment with annually compounded interest."""

    principal: float = Field(description="Amount invested, greater than 0.")
    annual_rate: float = Field(
        description="Annual interest rate in percent, e.g. 5 for 5%; between -100 and 1000."
    )
    years: float = Field(description="Investment horizon in years, greater than 0 and at most 200.")


class RoiResult(BaseModel):
    principal: float = Field(description="Amount invested.")
    annual_rate: float = Field(description="Annual rate in percent.")
    years: float = Field(description="Horizon in years.")
    final_value: float = Field(description="Value at the end, rounded to cents.")
    profit: float = Field(description="final_value minus principal, rounded to cents.")
    roi_percent: float = Field(description="profit / principal in percent, rounded to 2 places.")


@nexusrpc.service(name="FinanceService")
class FinanceService:
    stock_price: nexusrpc.Operation[StockPriceRequest, StockPrice]
    calculate_roi: nexusrpc.Operation[RoiRequest, RoiResult]
