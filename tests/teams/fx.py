"""A test-only team, "fx", as a team would write it: contract, handler, registration.

The tests write it into a temporary package directory in versions (one more
operation, one fewer), restart only its worker process, and watch open
sessions pick up the change through the catalog.
"""

from __future__ import annotations

from pathlib import Path

CONTRACT = '''
import nexusrpc
from pydantic import BaseModel, Field

from meshkit.toolkit.catalog import ToolCatalog
from meshkit.toolkit.hints import ToolHints
from meshkit.toolkit.policy import ToolPolicy


class RateRequest(BaseModel):
    """Exchange rate between two currencies (test data)."""

    base: str = Field(description="ISO code of the currency to convert from, e.g. USD.")
    quote: str = Field(description="ISO code of the currency to convert to, e.g. EUR.")


class Rate(BaseModel):
    base: str
    quote: str
    rate: float


class ConvertRequest(BaseModel):
    """Convert an amount between two currencies (test data)."""

    amount: float = Field(description="Amount in the base currency.")
    base: str = Field(description="ISO code of the currency to convert from.")
    quote: str = Field(description="ISO code of the currency to convert to.")
    rounding: int = Field(default=2, description="Decimal places of the result.")


class Converted(BaseModel):
    amount: float
    converted: float
    quote: str


@nexusrpc.service(name="FxService")
class FxService:
    catalog: nexusrpc.Operation[None, ToolCatalog]
{operations}

POLICIES = {{}}

HINTS = {{
{hints}
}}
'''

HANDLER = """
import asyncio
from pathlib import Path

from nexusrpc import HandlerError, HandlerErrorType
from nexusrpc.handler import StartOperationContext, service_handler, sync_operation

from meshkit.toolkit import TeamServiceHandler, bad_request
from {package}.contract import *  # noqa: F403

RATES = {{("USD", "EUR"): 0.5, ("EUR", "USD"): 2.0}}


def rate_of(base: str, quote: str) -> float:
    try:
        return RATES[(base.upper(), quote.upper())]
    except KeyError:
        raise bad_request(f"no rate for {{base}}/{{quote}}") from None


@service_handler(service=FxService)
class FxServiceHandler(TeamServiceHandler):
{catalog}
{handlers}
"""

# A catalog that answers late while the test's file holds a delay in seconds
# (a team that is alive but slow, as under load), and refuses for good while
# it holds "refuse".
SLOW_CATALOG = """    @sync_operation
    async def catalog(self, ctx: StartOperationContext, input: None) -> ToolCatalog:
        delay = Path({flag!r})
        if delay.exists():
            if delay.read_text() == "refuse":
                raise HandlerError(
                    "fx is closed", type=HandlerErrorType.UNAVAILABLE, retryable_override=False
                )
            await asyncio.sleep(float(delay.read_text()))
        return self.served_catalog()
"""

TEAM = """
from meshkit.toolkit import TeamRegistration
from {package}.contract import HINTS, POLICIES
from {package}.handler import FxServiceHandler


def register() -> TeamRegistration:
    return TeamRegistration(handler=FxServiceHandler, policies=POLICIES, hints=HINTS)
"""

OPERATIONS = {
    "fx_rate": (
        "    fx_rate: nexusrpc.Operation[RateRequest, Rate]",
        """    @sync_operation
    async def fx_rate(self, ctx: StartOperationContext, input: RateRequest) -> Rate:
        return Rate(base=input.base, quote=input.quote, rate=rate_of(input.base, input.quote))
""",
        # Phrasings only: without a reply template the answer lists the result's fields.
        """    "fx_rate": ToolHints(
        examples=["What is the exchange rate from {base} to {quote}?", "{base} to {quote} rate"]
    ),""",
    ),
    "fx_convert": (
        "    fx_convert: nexusrpc.Operation[ConvertRequest, Converted]",
        """    @sync_operation
    async def fx_convert(self, ctx: StartOperationContext, input: ConvertRequest) -> Converted:
        value = round(input.amount * rate_of(input.base, input.quote), input.rounding)
        return Converted(amount=input.amount, converted=value, quote=input.quote)
""",
        "",
    ),
}


def write_team(
    root: Path, package: str, operations: list[str], catalog_delay: Path | None = None
) -> None:
    """Write the team's package ``root/package`` offering ``operations``; with
    ``catalog_delay``, its catalog waits the seconds that file holds, if it exists."""
    directory = root / package
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "__init__.py").write_text('"""A test-only team."""\n')
    declared = "\n".join(OPERATIONS[name][0] for name in operations)
    handlers = "\n".join(OPERATIONS[name][1] for name in operations)
    hints = "\n".join(OPERATIONS[name][2] for name in operations)
    (directory / "contract.py").write_text(CONTRACT.format(operations=declared, hints=hints))
    catalog = SLOW_CATALOG.format(flag=str(catalog_delay)) if catalog_delay else ""
    (directory / "handler.py").write_text(
        HANDLER.format(package=package, handlers=handlers, catalog=catalog)
    )
    (directory / "team.py").write_text(TEAM.format(package=package))
