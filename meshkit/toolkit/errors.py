"""Errors a team's handler raises at its boundary, and the retry policy of its backends."""

from __future__ import annotations

from datetime import timedelta

import nexusrpc
from temporalio.common import RetryPolicy


def bad_request(message: str) -> nexusrpc.HandlerError:
    """The caller's input is wrong: final, and the message reaches the agent as-is."""
    return nexusrpc.HandlerError(message, type=nexusrpc.HandlerErrorType.BAD_REQUEST)


def require(condition: bool, message: str) -> None:
    """Raise :func:`bad_request` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise bad_request(message)


def normalize_text(text: str) -> str:
    """Whitespace collapsed to single spaces, as people mean it."""
    return " ".join(text.split())


def backend_retry(*final_error_types: str) -> RetryPolicy:
    """Retry policy of a team's backend activities.

    Outages (timeouts, 429, 5xx: ``BackendUnavailable``) are retried with
    backoff; refusals that retrying cannot fix are final, as are the
    ``final_error_types`` a team adds for its own refusals.
    """
    return RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        maximum_interval=timedelta(seconds=10),
        non_retryable_error_types=["BackendUnauthorized", "BackendRefused", *final_error_types],
    )
