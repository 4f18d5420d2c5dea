"""The Finance team's Nexus service handler."""

from __future__ import annotations

import math
import re

from nexusrpc.handler import StartOperationContext, service_handler, sync_operation
from temporalio import nexus

from meshkit.toolkit import TeamServiceHandler, bad_request, normalize_text
from services.finance.contract import (
    Expense,
    FinanceService,
    RoiRequest,
    RoiResult,
    StockPrice,
    StockPriceRequest,
    SubmitExpenseRequest,
)
from services.finance.roi import compound
from services.finance.workflows import StockPriceWorkflow, SubmitExpenseWorkflow

TICKER = re.compile(r"^[A-Z]{1,5}(\.[A-Z]{1,2})?$")
MAX_PRINCIPAL = 1e15


def validate_ticker(ticker: str) -> str:
    symbol = ticker.strip().upper().removeprefix("$")
    if not TICKER.match(symbol):
        raise bad_request(
            f"invalid ticker {ticker!r}: expected 1-5 letters with an optional class suffix, "
            "e.g. AAPL or BRK.B"
        )
    return symbol


def validate_roi(request: RoiRequest) -> RoiRequest:
    values = (request.principal, request.annual_rate, request.years)
    if not all(math.isfinite(v) for v in values):
        raise bad_request("principal, annual_rate and years must be finite numbers")
    if not 0 < request.principal <= MAX_PRINCIPAL:
        raise bad_request(
            f"principal must be greater than 0 and at most {MAX_PRINCIPAL:.0e}, "
            f"got {request.principal}"
        )
    if not -100 < request.annual_rate <= 1000:
        raise bad_request(
            f"annual_rate is a percentage between -100 and 1000, got {request.annual_rate}"
        )
    if not 0 < request.years <= 200:
        raise bad_request(f"years must be greater than 0 and at most 200, got {request.years}")
    return request


CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_EXPENSE = 100_000


def validate_expense(request: SubmitExpenseRequest) -> SubmitExpenseRequest:
    if not math.isfinite(request.amount) or not 0 < request.amount <= MAX_EXPENSE:
        raise bad_request(
            f"amount must be greater than 0 and at most {MAX_EXPENSE}, got {request.amount}"
        )
    if round(request.amount, 2) != request.amount:
        raise bad_request(f"amount has more than 2 decimal places: {request.amount}")
    currency = request.currency.strip().upper()
    if not CURRENCY.match(currency):
        raise bad_request(
            f"currency must be a 3-letter ISO code such as USD, got {request.currency!r}"
        )
    description = normalize_text(request.description)
    if not 3 <= len(description) <= 500:
        raise bad_request("description must be 3-500 characters")
    return SubmitExpenseRequest(amount=request.amount, currency=currency, description=description)


@service_handler(service=FinanceService)
class FinanceServiceHandler(TeamServiceHandler):
    @nexus.workflow_run_operation
    async def stock_price(
        self, ctx: nexus.WorkflowRunOperationContext, input: StockPriceRequest
    ) -> nexus.WorkflowHandle[StockPrice]:
        request = StockPriceRequest(ticker=validate_ticker(input.ticker))
        # A retried start carries the same request id, so this id never
        # yields a second workflow for one tool call.
        return await ctx.start_workflow(
            StockPriceWorkflow.run,
            request,
            id=f"stock-price-{request.ticker}-{ctx.request_id}",
            task_queue=self.team.task_queue,
        )

    @sync_operation
    async def calculate_roi(self, ctx: StartOperationContext, input: RoiRequest) -> RoiResult:
        return compound(validate_roi(input))

    @nexus.workflow_run_operation
    async def submit_expense(
        self, ctx: nexus.WorkflowRunOperationContext, input: SubmitExpenseRequest
    ) -> nexus.WorkflowHandle[Expense]:
        request = validate_expense(input)
        # The workflow id doubles as the claim's idempotency key: one Nexus
        # request, however often retried, files one claim.
        return await ctx.start_workflow(
            SubmitExpenseWorkflow.run,
            request,
            id=f"submit-expense-{ctx.request_id}",
            task_queue=self.team.task_queue,
        )
