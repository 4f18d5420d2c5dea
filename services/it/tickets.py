"""Ticket backends: Jira (create issue), or the local demo store.

With ``JIRA_URL`` set, tickets are created in Jira. Jira has no idempotency
keys, so each ticket carries the label ``mesh-<key>`` and creation first
searches for it: a retry after a lost response finds the ticket it already
made. Without ``JIRA_URL`` tickets go to a local SQLite store
(``TICKETS_STORE_PATH``, default ``.run/state/tickets.sqlite``).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import httpx
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshkit.toolkit.http import raise_for_backend, raise_for_transport
from meshkit.toolkit.store import IdempotentStore, state_dir
from services.it.contract import CreateTicketRequest, Ticket
from services.it.jira import JiraSettings, auth_and_headers

DEMO_SOURCE = "local demo store (set JIRA_URL for a real Jira)"


class TicketSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETS_", extra="ignore")

    store_path: Path | None = None
    """SQLite file of the demo store; default ``<state dir>/tickets.sqlite``."""
    issue_type: str = "Task"
    """Jira issue type of created tickets."""

    def store(self) -> IdempotentStore:
        return IdempotentStore(self.store_path or state_dir() / "tickets.sqlite", "tickets")


class TicketOrder(BaseModel):
    """A ticket to create, with the key that makes creating it idempotent."""

    request: CreateTicketRequest
    idempotency_key: str


def idempotency_label(key: str) -> str:
    # Jira labels cannot contain spaces and are limited in length: hash the key.
    return "mesh-" + hashlib.sha256(key.encode()).hexdigest()[:24]


async def create_ticket(jira: JiraSettings, tickets: TicketSettings, order: TicketOrder) -> Ticket:
    if not jira.url:
        return await asyncio.to_thread(_create_in_store, tickets.store(), order)
    return await _create_in_jira(jira, tickets, order)


def _create_in_store(store: IdempotentStore, order: TicketOrder) -> Ticket:
    request = order.request

    def build(seq: int) -> dict[str, object]:
        return Ticket(
            key=f"{request.project}-{seq}",
            project=request.project,
            summary=request.summary,
            source=DEMO_SOURCE,
        ).model_dump()

    record, _created = store.put(order.idempotency_key, build)
    return Ticket.model_validate(record)


async def _create_in_jira(
    jira: JiraSettings, tickets: TicketSettings, order: TicketOrder
) -> Ticket:
    assert jira.url
    base = jira.url.rstrip("/")
    label = idempotency_label(order.idempotency_key)
    request = order.request
    auth, headers = auth_and_headers(jira)
    async with httpx.AsyncClient(timeout=jira.timeout_s, headers=headers, auth=auth) as http:
        try:
            found = await http.get(
                f"{base}/rest/api/2/search",
                params={
                    "jql": f'labels = "{label}"',
                    "fields": "summary,project",
                    "maxResults": "1",
                },
            )
            raise_for_backend("Jira", found)
            issues = found.json().get("issues") or []
            if issues:
                key = issues[0]["key"]
            else:
                created = await http.post(
                    f"{base}/rest/api/2/issue",
                    json={
                        "fields": {
                            "project": {"key": request.project},
                            "summary": request.summary,
                            "description": request.description,
                            "issuetype": {"name": tickets.issue_type},
                            "labels": [label],
                        }
                    },
                )
                raise_for_backend("Jira", created)
                key = created.json()["key"]
        except httpx.HTTPError as err:
            raise_for_transport("Jira", err)
            raise
    return Ticket(
        key=key,
        project=request.project,
        summary=request.summary,
        url=f"{base}/browse/{key}",
        source=base,
    )
