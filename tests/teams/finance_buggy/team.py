"""Finance with a bug: filing a claim fails with an error Temporal retries, so a
call waits, attempt after attempt, until a fixed build takes it over."""

from __future__ import annotations

from temporalio import activity

from meshkit.toolkit import TeamRegistration
from services.finance.expenses import ExpenseOrder
from services.finance.team import register as register_fixed


@activity.defn(name="submit_expense")
async def submit_expense(order: ExpenseOrder) -> None:
    raise KeyError("currency_code")  # the bug: a field the API never had


def register() -> TeamRegistration:
    fixed = register_fixed()
    others = [a for a in fixed.activities if a.__name__ != "submit_expense"]
    return TeamRegistration(
        handler=fixed.handler,
        policies=fixed.policies,
        hints=fixed.hints,
        workflows=fixed.workflows,
        activities=[*others, submit_expense],
    )
