"""Finance as shipped by a build that adds a tool, ``simple_interest``: the
same service and policies, and one operation more in the contract, the
handler and the policies."""

from __future__ import annotations

import nexusrpc
from nexusrpc.handler import StartOperationContext, service_handler, sync_operation
from pydantic import BaseModel, ConfigDict, Field

from meshkit.toolkit import TeamRegistration, ToolPolicy, bad_request
from meshkit.toolkit.catalog import ToolCatalog
from services.finance.contract import (
    Expense,
    RoiRequest,
    RoiResult,
    StockPrice,
    StockPriceRequest,
    SubmitExpenseRequest,
)
from services.finance.handler import FinanceServiceHandler
from services.finance.team import register as register_v1


class SimpleInterestRequest(BaseModel):
    """Interest earned on an amount at a simple (not compounded) annual rate."""

    model_config = ConfigDict(allow_inf_nan=False)

    principal: float = Field(description="Amount invested, greater than 0.")
    annual_rate: float = Field(description="Annual interest rate in percent, e.g. 5 for 5%.")
    years: float = Field(description="Horizon in years, greater than 0.")


class SimpleInterest(BaseModel):
    interest: float = Field(description="Interest earned, rounded to cents.")


@nexusrpc.service(name="FinanceService")
class FinanceServicePlus:
    catalog: nexusrpc.Operation[None, ToolCatalog]
    stock_price: nexusrpc.Operation[StockPriceRequest, StockPrice]
    calculate_roi: nexusrpc.Operation[RoiRequest, RoiResult]
    submit_expense: nexusrpc.Operation[SubmitExpenseRequest, Expense]
    simple_interest: nexusrpc.Operation[SimpleInterestRequest, SimpleInterest]


@service_handler(service=FinanceServicePlus)
class FinanceServicePlusHandler(FinanceServiceHandler):
    @sync_operation
    async def simple_interest(
        self, ctx: StartOperationContext, input: SimpleInterestRequest
    ) -> SimpleInterest:
        if input.principal <= 0 or input.years <= 0:
            raise bad_request("principal and years must be greater than 0")
        return SimpleInterest(
            interest=round(input.principal * input.annual_rate / 100 * input.years, 2)
        )


def register() -> TeamRegistration:
    v1 = register_v1()
    return TeamRegistration(
        handler=FinanceServicePlusHandler,
        policies={**v1.policies, "simple_interest": ToolPolicy(timeout_s=20, read_only=True)},
        hints=v1.hints,
        workflows=v1.workflows,
        activities=v1.activities,
    )
