"""A worker killed mid-operation: the turn completes and the side effect happens once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from meshdev.processes import WorkerProcess, start_worker
from meshkit.mesh import Mesh, load_mesh
from meshkit.setup import setup_mesh
from orchestrator.session_client import open_session, send
from orchestrator.session_types import SessionConfig
from tests.fakes import FakeExpenses
from tests.helpers import SCRIPTED, ScriptedModel, call, say

pytestmark = pytest.mark.asyncio


async def start_finance_worker(mesh_file: Path, expenses_url: str, log: Path) -> WorkerProcess:
    env = {"MESH_FILE": str(mesh_file), "EXPENSES_URL": expenses_url}
    return await start_worker("finance", env, log, timeout_s=30)


async def test_finance_worker_killed_during_submit_expense_files_exactly_one_claim(
    client: Client,
    running_mesh: Mesh,
    mesh_file: Path,
    scripted_model: ScriptedModel,
    tmp_path: Path,
) -> None:
    # A Finance deployment of its own (task queue and endpoint) so that only
    # the worker process under test serves it.
    suffix = uuid.uuid4().hex[:6]
    isolated = running_mesh.isolated(f"crash-{suffix}")
    variant = tmp_path / "mesh.toml"
    variant.write_text(isolated.to_toml())
    await setup_mesh(load_mesh(variant))
    backend = FakeExpenses(ack_delay_s=5)
    log = tmp_path / "finance.log"
    worker = await start_finance_worker(variant, backend.url, log)
    try:
        teams = {**running_mesh.teams, "finance": isolated.team("finance")}
        config = SessionConfig.for_mesh(
            running_mesh.model_copy(update={"teams": teams}), model=SCRIPTED
        )
        handle = await open_session(client, running_mesh, f"crash-{suffix}", config=config)
        expense = {"amount": 42.5, "currency": "EUR", "description": "Train ticket"}
        scripted_model.script(handle.id, call(("submit_expense", expense)), say("Filed."))
        turn = asyncio.ensure_future(send(handle, "file my train ticket", 120))

        # The claim reaches the backend; the worker dies before the answer does.
        await asyncio.to_thread(backend.first_request.wait, 30)
        await asyncio.to_thread(worker.kill)
        assert len(backend.records) == 1

        worker = await start_finance_worker(variant, backend.url, log)
        reply = await asyncio.wait_for(turn, 120)

        assert reply.ok and reply.text == "Filed."
        assert [(t.name, t.state) for t in reply.tools] == [("submit_expense", "ok")]
        assert len(backend.records) == 1, backend.records
        assert len(backend.requests) >= 2, "the retry after the crash should reach the backend"
        assert len(set(backend.requests)) == 1, "every attempt carries the same idempotency key"
    finally:
        await asyncio.to_thread(worker.stop)
        backend.http.close()
