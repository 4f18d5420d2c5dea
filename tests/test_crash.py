"""A worker killed mid-operation: the turn completes and the side effect happens once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from meshkit.mesh import Mesh
from orchestrator.contract import SessionConfig
from orchestrator.session_client import SessionClient
from tests.fakes import FakeExpenses
from tests.helpers import SCRIPTED, ScriptedModel, call, say
from tests.processes import own_mesh

pytestmark = pytest.mark.asyncio


async def test_finance_worker_killed_during_submit_expense_files_exactly_one_claim(
    client: Client,
    running_mesh: Mesh,
    scripted_model: ScriptedModel,
    tmp_path: Path,
) -> None:
    # A Finance deployment of its own (task queue and endpoint) so that only
    # the worker process under test serves it.
    backend = FakeExpenses(ack_delay_s=5)
    try:
        async with own_mesh(running_mesh, tmp_path, "crash") as own:
            worker = await own.start("finance", {"EXPENSES_URL": backend.url}, timeout_s=30)
            teams = {**running_mesh.teams, "finance": own.mesh.team("finance")}
            config = SessionConfig.for_mesh(
                running_mesh.model_copy(update={"teams": teams}), model=SCRIPTED
            )
            session = f"crash-{uuid.uuid4().hex[:6]}"
            handle = await SessionClient(client, running_mesh).open(session, config=config)
            expense = {"amount": 42.5, "currency": "EUR", "description": "Train ticket"}
            scripted_model.script(handle.id, call(("submit_expense", expense)), say("Filed."))
            turn = asyncio.ensure_future(handle.send("file my train ticket", 120))

            # The claim reaches the backend; the worker dies before the answer does.
            await asyncio.to_thread(backend.first_request.wait, 30)
            await worker.kill()
            assert len(backend.records) == 1

            await worker.start(timeout_s=30)
            reply = await asyncio.wait_for(turn, 120)

            assert reply.ok and reply.text == "Filed."
            assert [(t.name, t.state) for t in reply.tools] == [("submit_expense", "ok")]
            assert len(backend.records) == 1, backend.records
            assert len(backend.requests) >= 2, "the retry after the crash should reach the backend"
            assert len(set(backend.requests)) == 1, "every attempt carries the same idempotency key"
    finally:
        backend.http.close()
