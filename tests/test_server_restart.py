"""The Temporal server restarted in the middle of a multi-session run.

The server persists to SQLite (``--db-filename``); workers are processes that
reconnect by themselves; the chat client resends an Update with the same id
while the server is away, so no turn is lost and none runs twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from meshdev.dev_server import DevServer, free_port, start_dev_server
from meshkit.mesh import Mesh, connect
from orchestrator.session_client import SessionClient
from tests.conftest import NAMESPACES
from tests.processes import own_mesh
from tests.reliability import assert_no_task_failures, count

pytestmark = pytest.mark.asyncio

SESSIONS = 6
TURNS = 4


class PersistentServer:
    """A dev server on one port and one SQLite file, to stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.directory = directory
        self.server: DevServer | None = None

    def start(self) -> None:
        self.server = start_dev_server(
            self.directory / "server.log",
            port=self.port,
            db_filename=self.directory / "temporal.db",
            namespaces=NAMESPACES,
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PersistentServer]:
    server = PersistentServer(tmp_path)
    server.start()
    yield server
    server.stop()


async def test_every_session_survives_a_server_restart_mid_run(
    server: PersistentServer, tmp_path: Path, mesh: Mesh
) -> None:
    suffix = uuid.uuid4().hex[:6]
    env = {"LLM_MODEL": "offline", "MESH_STATE_DIR": str(tmp_path)}
    async with own_mesh(mesh, tmp_path, "r", address=server.address, env=env) as workers:
        isolated = workers.mesh
        client = await connect(
            isolated, isolated.orchestrator, data_converter=pydantic_data_converter
        )
        await workers.start_all()
        handles = [
            await SessionClient(client, isolated).open(f"restart-{suffix}-{i}", model="offline")
            for i in range(SESSIONS)
        ]
        first_turns = asyncio.Event()
        done_first = 0

        async def converse(i: int) -> list[str]:
            nonlocal done_first
            replies = []
            for j in range(1, TURNS + 1):
                reply = await handles[i].send(f"What is {i + 2} * {j + 10}?", 180)
                assert reply.ok, reply.text
                replies.append(reply.text)
                if j == 1:
                    done_first += 1
                    if done_first == SESSIONS:
                        first_turns.set()
            return replies

        conversations = asyncio.gather(*(converse(i) for i in range(SESSIONS)))
        await asyncio.wait_for(first_turns.wait(), 120)
        server.stop()
        count("faults")
        await asyncio.sleep(2)  # the server is away while turns are being sent
        server.start()

        results = await asyncio.wait_for(conversations, 300)
        for i, replies in enumerate(results):
            assert replies == [
                f"{i + 2} * {j + 10} = {(i + 2) * (j + 10)} (calculator)"
                for j in range(1, TURNS + 1)
            ]
        for handle in handles:
            status = await handle.status()
            assert status.turn == TURNS, "no turn lost and none ran twice"
            await assert_no_task_failures(handle.handle)
        count("turns", SESSIONS * TURNS)
