"""The Finance team's Nexus contract.

Callers import only this module: it holds the operation inputs and outputs and
the service definition, never handler or worker code. Each input model's
docstring and field descriptions become the agent's view of the tool.
"""

from __future__ import annotations

import nexusrpc
from pydantic import BaseModel, ConfigDict, Field

from meshkit.toolkit.catalog import ToolCatalog
from meshkit.toolkit.hints import ToolHints
from meshkit.toolkit.policy import ApprovalPolicy, ToolPolicy


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

    # NaN and infinity would cross the wire as JSON null: refuse them here.
    model_config = ConfigDict(allow_inf_nan=False)

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


class SubmitExpenseRequest(BaseModel):
    """Submit an expense claim for reimbursement. Amounts above 100 need the user's approval."""

    model_config = ConfigDict(allow_inf_nan=False)

    amount: float = Field(description="Amount claimed, greater than 0 and at most 100000.")
    currency: str = Field(description="ISO 4217 currency code, e.g. USD or EUR.")
    description: str = Field(description="What the expense was for, 3-500 characters.")


class Expense(BaseModel):
    id: str = Field(description="The expense claim's id.")
    amount: float = Field(description="Amount claimed.")
    currency: str = Field(description="Currency code.")
    description: str = Field(description="What it was for.")
    status: str = Field(description="State of the claim, e.g. submitted.")
    source: str = Field(
        description="Where it was recorded: an expenses API URL, or the local demo store."
    )


@nexusrpc.service(name="FinanceService")
class FinanceService:
    catalog: nexusrpc.Operation[None, ToolCatalog]
    stock_price: nexusrpc.Operation[StockPriceRequest, StockPrice]
    calculate_roi: nexusrpc.Operation[RoiRequest, RoiResult]
    submit_expense: nexusrpc.Operation[SubmitExpenseRequest, Expense]


POLICIES: dict[str, ToolPolicy] = {
    "calculate_roi": ToolPolicy(timeout_s=20, read_only=True),
    "stock_price": ToolPolicy(timeout_s=120, read_only=True),
    "submit_expense": ToolPolicy(
        approval=ApprovalPolicy(
            above=100,
            field="amount",
            reason="Finance approves claims above 100 before filing them.",
        ),
        timeout_s=300,
    ),
}
"""The Finance team's rules per operation: approvals, timeouts, which tools only read.
The team's worker enforces the approvals itself; callers read them from the catalog."""

HINTS: dict[str, ToolHints] = {
    "stock_price": ToolHints(
        examples=[
            "What is the stock price of {ticker}?",
            "Share price of {ticker}",
            "Quote for {ticker}",
            "Where is {ticker} trading?",
        ],
        reply=[
            "{ticker} is at {price} {currency}",
            " ({change_percent:+}% since the previous close)",
            ", as of {as_of} (source: {source})",
        ],
    ),
    "calculate_roi": ToolHints(
        examples=[
            "What is the ROI on {principal} at {annual_rate}% for {years} years?",
            "Return on investment of {principal} at {annual_rate}% over {years} years",
            "If I invest {principal} at {annual_rate}% for {years} years, what is my return?",
        ],
        reply=[
            "Investing {principal:.2f} at {annual_rate}% a year for {years:g} years grows to "
            "{final_value:.2f}: a profit of {profit:.2f}, an ROI of {roi_percent}%"
        ],
    ),
    "submit_expense": ToolHints(
        examples=[
            "File an expense of {amount} {currency} for {description}",
            "Submit an expense of {amount} {currency} for {description}",
            "Expense {amount} {currency} for {description}",
            "Reimburse {amount} {currency} for {description}",
        ],
        # Said without a currency, an amount is in US dollars.
        defaults={"currency": "USD"},
        reply=[
            "Submitted expense claim {id} for {amount:.2f} {currency} ({description}), "
            "status {status} (source: {source})"
        ],
    ),
}
"""How the offline model, which does not understand language, recognises a
request for each tool and words its answer; the catalog carries them."""
