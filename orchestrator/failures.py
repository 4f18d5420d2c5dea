"""Reading a Temporal failure's cause chain, for messages people read."""

from __future__ import annotations

from temporalio.exceptions import TimeoutError as TemporalTimeout

# Wrappers whose message says nothing the rest of the chain does not.
_WRAPPERS = {"Activity task failed", "Activity task timed out"}


def cause_messages(err: BaseException) -> list[str]:
    """Every distinct message along the cause chain, outermost first."""
    messages: list[str] = []
    current: BaseException | None = err
    while current is not None:
        message = getattr(current, "message", None) or str(current)
        if message and message not in messages and message not in _WRAPPERS:
            messages.append(message)
        current = getattr(current, "cause", None) or current.__cause__
    return messages


def timed_out(err: BaseException) -> bool:
    """Whether a timeout of Temporal's (not a message that mentions one) is in the chain."""
    current: BaseException | None = err
    while current is not None:
        if isinstance(current, TemporalTimeout):
            return True
        current = getattr(current, "cause", None) or current.__cause__
    return False


def root_message(err: BaseException) -> str:
    """The innermost message: for a tool, the owning team's own words."""
    messages = cause_messages(err)
    return messages[-1] if messages else type(err).__name__


def turn_failure(err: BaseException) -> str:
    """The whole chain, e.g. "Non retryable OpenAI status code: 401; litellm...",
    which says both what Temporal decided and what the provider said."""
    text = "; ".join(cause_messages(err)) or type(err).__name__
    if any(
        code in text for code in ("status code: 401", "status code: 403", "AuthenticationError")
    ):
        text += (
            ". The model provider rejected the credentials: check the API key in the "
            "orchestrator worker's environment"
        )
    return text
