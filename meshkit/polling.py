"""Waiting for something to become true: the one deadline loop of the project.

Product code waits for workers to poll, for a deployment to route, for a
server to answer; tests wait for a workflow to reach a state. Each of those
is ``poll_until(check, timeout_s=..., what=...)``: ``check`` is called until it
returns something truthy, which is returned, or the deadline passes and a
``TimeoutError`` says ``what`` did not happen, phrased as a failure ("the
it worker did not poll"), and, when ``explain`` is given, what is missing.
An exception raised by ``check`` ends the wait at once: a check that can tell
the wait is hopeless (a process exited) says so by raising. Only the types in
``retry_on`` (a server that does not answer yet) count as "not yet"; the last
one is the ``TimeoutError``'s cause and is named in its message.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

__all__ = ["poll_until", "poll_until_blocking"]


# Two signatures so that a type checker sees through an async check (a
# coroutine is itself truthy, so one ``Awaitable[T] | T`` hint infers nothing)
# and drops the ``None`` a check returns for "not yet".
@overload
async def poll_until(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = ...,
    explain: Callable[[], str] | None = ...,
    retry_on: tuple[type[Exception], ...] = ...,
) -> T: ...
@overload
async def poll_until(
    check: Callable[[], T | None],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = ...,
    explain: Callable[[], str] | None = ...,
    retry_on: tuple[type[Exception], ...] = ...,
) -> T: ...
async def poll_until(
    check: Callable[[], Any],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.05,
    explain: Callable[[], str] | None = None,
    retry_on: tuple[type[Exception], ...] = (),
) -> Any:
    """The first truthy value of ``check()`` (sync or async), within ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: Exception | None = None
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
        except retry_on as err:
            value, last = None, err
        if value:
            return value
        if loop.time() >= deadline:
            raise TimeoutError(_message(what, timeout_s, explain, last)) from last
        await asyncio.sleep(min(interval_s, max(0.0, deadline - loop.time())))


def poll_until_blocking(
    check: Callable[[], T | None],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.05,
    explain: Callable[[], str] | None = None,
    retry_on: tuple[type[Exception], ...] = (),
) -> T:
    """:func:`poll_until` for code without an event loop (command lines, threads)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while True:
        try:
            value = check()
        except retry_on as err:
            value, last = None, err
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(_message(what, timeout_s, explain, last)) from last
        time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))


def _message(
    what: str,
    timeout_s: float,
    explain: Callable[[], str] | None,
    last: Exception | None = None,
) -> str:
    message = f"{what} within {timeout_s:g} s"
    if explain is not None:
        detail = explain()
        if detail:
            message += f": {detail}"
    if last is not None:
        message += f" (last error: {type(last).__name__}: {last})"
    return message
