"""Expense backends: an expenses HTTP API, or the local demo store.

With ``EXPENSES_URL`` set, claims are posted to ``{url}/expenses`` with an
``Idempotency-Key`` header (the API must return the first claim for a
repeated key, as payment-style APIs do). Without it claims go to a local
SQLite store (``EXPENSES_STORE_PATH``, default ``.run/state/expenses.sqlite``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshkit.toolkit.http import raise_for_backend, raise_for_transport
from meshkit.toolkit.store import IdempotentStore, state_dir
from services.finance.contract import Expense, SubmitExpenseRequest

DEMO_SOURCE = "local demo store (set EXPENSES_URL for a real expenses API)"


class ExpenseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXPENSES_", extra="ignore")

    url: str | None = None
    """Base URL of the expenses API; unset means the local demo store."""
    api_key: SecretStr | None = None
    """Bearer token for the expenses API."""
    store_path: Path | None = None
    """SQLite file of the demo store; default ``<state dir>/expenses.sqlite``."""
    timeout_s: float = 10.0

    def store(self) -> IdempotentStore:
        return IdempotentStore(self.store_path or state_dir() / "expenses.sqlite", "expenses")


class ExpenseOrder(BaseModel):
    """A claim to submit, with the key that makes submitting it idempotent."""

    request: SubmitExpenseRequest
    idempotency_key: str


async def submit_expense(settings: ExpenseSettings, order: ExpenseOrder) -> Expense:
    if not settings.url:
        return await asyncio.to_thread(_submit_to_store, settings.store(), order)
    base = settings.url.rstrip("/")
    headers = {"Accept": "application/json", "Idempotency-Key": order.idempotency_key}
    if settings.api_key:
        headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
    async with httpx.AsyncClient(timeout=settings.timeout_s, headers=headers) as http:
        try:
            response = await http.post(f"{base}/expenses", json=order.request.model_dump())
        except httpx.HTTPError as err:
            raise_for_transport("Expenses API", err)
            raise
    raise_for_backend("Expenses API", response)
    body = response.json()
    return Expense(
        id=str(body["id"]),
        amount=order.request.amount,
        currency=order.request.currency,
        description=order.request.description,
        status=str(body.get("status", "submitted")),
        source=base,
    )


def _submit_to_store(store: IdempotentStore, order: ExpenseOrder) -> Expense:
    request = order.request

    def build(seq: int) -> dict[str, object]:
        return Expense(
            id=f"EXP-{seq:05d}",
            amount=request.amount,
            currency=request.currency,
            description=request.description,
            status="submitted",
            source=DEMO_SOURCE,
        ).model_dump()

    record, _created = store.put(order.idempotency_key, build)
    return Expense.model_validate(record)
