"""Finance as shipped by its build 2: the same service, with claims that say
which expense policy filed them (a new field in ``submit_expense``'s result)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from meshkit.toolkit import TeamRegistration
    from services.finance.contract import Expense, SubmitExpenseRequest
    from services.finance.expenses import ExpenseOrder
    from services.finance.team import register as register_v1
    from services.finance.workflows import BACKEND_RETRY, ExpenseActivities

POLICY = "expense-policy-2"


class PolicyExpense(Expense):
    policy: str


@workflow.defn(name="SubmitExpenseWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class SubmitExpenseWorkflowV2:
    @workflow.run
    async def run(self, request: SubmitExpenseRequest) -> PolicyExpense:
        order = ExpenseOrder(request=request, idempotency_key=workflow.info().workflow_id)
        filed = await workflow.execute_activity_method(
            ExpenseActivities.submit_expense,
            order,
            start_to_close_timeout=timedelta(seconds=10),
            schedule_to_close_timeout=timedelta(minutes=5),
            retry_policy=BACKEND_RETRY,
        )
        return PolicyExpense(**filed.model_dump(), policy=POLICY)


def register() -> TeamRegistration:
    v1 = register_v1()
    workflows = [w for w in v1.workflows if w.__name__ != "SubmitExpenseWorkflow"]
    return TeamRegistration(
        handler=v1.handler,
        policies=v1.policies,
        hints=v1.hints,
        workflows=[*workflows, SubmitExpenseWorkflowV2],
        activities=v1.activities,
    )
