"""How a team's HTTP backend failure becomes a Temporal error.

Shared by the teams' activities so every backend answers the same way: a
refusal that retrying cannot fix (bad credentials, unknown item) is a
non-retryable ``ApplicationError`` whose message reaches the agent; an outage
(timeout, 429, 5xx) is retryable and left to the activity's retry policy.
"""

from __future__ import annotations

import httpx
from temporalio.exceptions import ApplicationError


def raise_for_backend(service: str, response: httpx.Response) -> None:
    """Raise the right Temporal error for a non-2xx response of ``service``."""
    status = response.status_code
    if status < 400:
        return
    if status in (408, 409, 425, 429) or status >= 500:
        raise ApplicationError(
            f"{service} is unavailable (HTTP {status}); retrying",
            type="BackendUnavailable",
        )
    if status in (401, 403):
        raise ApplicationError(
            f"{service} rejected the credentials (HTTP {status}); check the worker's configuration",
            type="BackendUnauthorized",
            non_retryable=True,
        )
    raise ApplicationError(
        f"{service} refused the request (HTTP {status}): {_detail(response)}",
        type="BackendRefused",
        non_retryable=True,
    )


def raise_for_transport(service: str, err: httpx.HTTPError) -> None:
    """A transport failure (connection refused, timeout) is an outage: retry."""
    raise ApplicationError(
        f"{service} could not be reached: {type(err).__name__}: {err}",
        type="BackendUnavailable",
    ) from err


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        messages = body.get("errorMessages") or body.get("error") or body.get("message")
        if messages:
            return "; ".join(messages) if isinstance(messages, list) else str(messages)
    return str(body)[:200]
