"""What the session client sends again, with the same id, and what it gives up on.

While a worker is replaced or the server restarts, an Update can be refused
for a moment: the server is unreachable, the session's workflow task is
failing ("Workflow Task in failed state", FAILED_PRECONDITION), or the
server's long poll ends before the Update reached its stage. Every door goes
through the client's one retry loop, so each of these is retried until the
caller's deadline; a refusal that another attempt cannot change is not.
"""

from __future__ import annotations

import asyncio
import gc

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from orchestrator.contract import NoReply
from orchestrator.session import UNPROCESSED, _until

pytestmark = pytest.mark.asyncio(loop_scope="session")


def rpc(status: RPCStatusCode) -> RPCError:
    return RPCError(f"refused: {status.name}", status, b"")


class Flaky:
    """Fails with each of ``errors`` in turn, then answers."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answered"


def deadline(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


@pytest.mark.parametrize(
    "error",
    [
        rpc(RPCStatusCode.UNAVAILABLE),
        rpc(RPCStatusCode.FAILED_PRECONDITION),
        rpc(RPCStatusCode.RESOURCE_EXHAUSTED),
        WorkflowUpdateRPCTimeoutOrCancelledError(),
        # The server's answer to an Update whose workflow task was lost before
        # a worker processed it: it never ran (seen in the chaos soak).
        WorkflowUpdateFailedError(ApplicationError("not processed", type=UNPROCESSED)),
    ],
    ids=["unavailable", "task-failing", "exhausted", "long-poll-ended", "unprocessed"],
)
async def test_a_passing_refusal_is_sent_again_until_it_is_answered(error: BaseException) -> None:
    call = Flaky(error, error)
    assert await _until(deadline(10), call) == "answered"
    assert call.calls == 3


@pytest.mark.parametrize(
    "status",
    [RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.NOT_FOUND, RPCStatusCode.ALREADY_EXISTS],
)
async def test_a_lasting_refusal_is_raised_at_once(status: RPCStatusCode) -> None:
    call = Flaky(rpc(status))
    with pytest.raises(RPCError) as raised:
        await _until(deadline(10), call)
    assert raised.value.status == status and call.calls == 1


async def test_refusals_past_the_deadline_end_in_no_reply() -> None:
    call = Flaky(*[rpc(RPCStatusCode.FAILED_PRECONDITION)] * 100)
    with pytest.raises(NoReply):
        await _until(deadline(0.5), call)
    assert 1 < call.calls < 100


async def test_a_message_the_session_refused_is_not_sent_again() -> None:
    refused = WorkflowUpdateFailedError(
        ApplicationError("this session has ended", type="SessionEnded")
    )
    call = Flaky(refused)
    with pytest.raises(WorkflowUpdateFailedError):
        await _until(deadline(10), call)
    assert call.calls == 1


async def test_a_caller_cancelled_mid_attempt_leaves_no_unretrieved_error() -> None:
    # The SDK answers the cancellation of an Update's RPC with its own error;
    # when the caller was cancelled (an outer timeout), nobody awaits it, and
    # asyncio used to log "Task exception was never retrieved" at each failover.
    started = asyncio.Event()

    async def attempt() -> str:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise WorkflowUpdateRPCTimeoutOrCancelledError() from None
        return "answered"

    unretrieved: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: unretrieved.append(context))
    try:
        caller = asyncio.ensure_future(_until(deadline(30), attempt))
        await started.wait()
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        del caller
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert unretrieved == []
