"""meshkit.polling, the one deadline loop: it returns the first truthy value,
fails with what did not happen, stops at once on an error it was not told to
wait through, and names the last error it did wait through."""

from __future__ import annotations

import pytest

from meshkit.polling import poll_until, poll_until_blocking


class Countdown:
    """A check that is falsy ``n`` times, then returns ``value``."""

    def __init__(self, n: int, value: object = "ready", error: Exception | None = None) -> None:
        self.n, self.value, self.error, self.calls = n, value, error, 0

    def __call__(self) -> object:
        self.calls += 1
        if self.calls > self.n:
            return self.value
        if self.error is not None:
            raise self.error
        return None


async def test_the_first_truthy_value_of_a_sync_or_async_check_is_returned() -> None:
    check = Countdown(3)
    assert await poll_until(check, timeout_s=30, what="x", interval_s=0) == "ready"
    assert check.calls == 4

    async def later() -> object:
        return check()

    assert await poll_until(later, timeout_s=30, what="x", interval_s=0) == "ready"
    assert poll_until_blocking(Countdown(2, 7), timeout_s=30, what="x", interval_s=0) == 7


async def test_a_check_that_never_holds_fails_saying_what_did_not_happen() -> None:
    with pytest.raises(TimeoutError, match=r"^the worker did not poll within 0\.05 s: no log$"):
        await poll_until(
            lambda: False, timeout_s=0.05, what="the worker did not poll", explain=lambda: "no log"
        )
    with pytest.raises(TimeoutError, match=r"^the server did not answer within 0\.05 s$"):
        poll_until_blocking(lambda: 0, timeout_s=0.05, what="the server did not answer")


async def test_an_error_raised_by_the_check_ends_the_wait_at_once() -> None:
    check = Countdown(100, error=RuntimeError("the worker exited"))
    with pytest.raises(RuntimeError, match="the worker exited"):
        await poll_until(check, timeout_s=30, what="x", retry_on=(ConnectionError,))
    assert check.calls == 1
    blocking = Countdown(100, error=RuntimeError("the worker exited"))
    with pytest.raises(RuntimeError):
        poll_until_blocking(blocking, timeout_s=30, what="x")
    assert blocking.calls == 1


async def test_errors_of_the_retried_types_count_as_not_yet() -> None:
    check = Countdown(3, error=ConnectionError("refused"))
    got = await poll_until(check, timeout_s=30, what="x", interval_s=0, retry_on=(OSError,))
    assert got == "ready" and check.calls == 4
    blocking = Countdown(3, error=ConnectionError("refused"))
    assert poll_until_blocking(blocking, timeout_s=30, what="x", interval_s=0, retry_on=(OSError,))


async def test_a_wait_through_errors_that_times_out_names_the_last_one() -> None:
    refused = ConnectionError("connection refused")
    with pytest.raises(
        TimeoutError, match="last error: ConnectionError: connection refused"
    ) as err:
        await poll_until(
            Countdown(10**9, error=refused),
            timeout_s=0.05,
            what="the server did not answer",
            retry_on=(ConnectionError,),
        )
    assert err.value.__cause__ is refused
    with pytest.raises(TimeoutError, match="last error: ConnectionError") as err:
        poll_until_blocking(
            Countdown(10**9, error=refused), timeout_s=0.05, what="x", retry_on=(ConnectionError,)
        )
    assert err.value.__cause__ is refused
