"""The Temporal core's warnings go to the log (stderr), once per outage, never to stdout.

While the server is away, a client retrying a long poll makes the SDK core
warn on every few retries. Left to the SDK's defaults those lines are written
to stdout, into a chat's conversation or a script's output.
:mod:`meshkit.temporal_runtime` forwards them to Python's logging and lets the
first warning of each source's outage through.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from meshkit.polling import poll_until_blocking
from meshkit.temporal_runtime import OncePerOutage
from tests.test_server_restart import PersistentServer

ROOT = Path(__file__).resolve().parent.parent
CORE = "[sdk_core::"
"""How a forwarded core line begins (the SDK prepends its source)."""


def record(name: str, at: float, level: int = logging.WARNING) -> logging.LogRecord:
    line = logging.LogRecord(name, level, "(sdk-core)", 0, "call retried", (), None)
    line.created = at
    return line


def test_one_warning_per_source_passes_until_the_source_has_been_quiet() -> None:
    once = OncePerOutage(quiet_s=60)
    retry, poller = "temporalio.core-sdk_core::retry", "temporalio.core-sdk_core::poller"

    passed = [
        once.filter(record(retry, 0)),
        once.filter(record(retry, 10)),
        once.filter(record(poller, 11)),  # another source has its own outage
        once.filter(record(retry, 65)),  # 55 s after the last repeat: the same outage
        once.filter(record(poller, 12)),
    ]
    assert passed == [True, False, True, False, False]

    after = record(retry, 65 + 60)  # 60 s of quiet: the outage ended, a new one begins
    assert once.filter(after)
    assert "the previous outage repeated it 2 times" in after.getMessage()
    assert once.filter(record(retry, 200, logging.INFO)), "only warnings are collapsed"


CLIENT = """
import asyncio, sys, uuid
from temporalio.service import RPCError
from meshkit.mesh import DEFAULT_MESH_FILE, connect, load_mesh
from meshkit.polling import poll_until
from meshkit.runtime import exit_now

async def main() -> None:
    mesh = load_mesh(DEFAULT_MESH_FILE)
    client = await connect(mesh, mesh.orchestrator)
    handle = await client.start_workflow(
        "NobodyRunsThis", id=f"outage-{uuid.uuid4().hex}", task_queue=f"nobody-{uuid.uuid4().hex}"
    )
    waiting = asyncio.create_task(handle.result())  # a long poll, retried while the server is away
    print("waiting for a workflow", flush=True)
    await asyncio.to_thread(sys.stdin.readline)

    async def ended() -> bool:
        await handle.terminate()
        return True

    await poll_until(ended, timeout_s=60, what="the workflow was not ended", retry_on=(RPCError,))
    waiting.cancel()
    print("ended it", flush=True)
    exit_now(0)

asyncio.run(main())
"""


def test_a_clients_stdout_during_a_server_restart_holds_only_its_own_output(
    tmp_path: Path,
) -> None:
    server = PersistentServer(tmp_path)
    server.start()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = {**os.environ, "TEMPORAL_ADDRESS": server.address}
    env.pop("LOG_LEVEL", None)
    with out.open("w") as stdout, err.open("w") as stderr:
        client = subprocess.Popen(
            [sys.executable, "-c", CLIENT], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=stdout, stderr=stderr, text=True,
        )  # fmt: skip
    try:
        poll_until_blocking(
            lambda: "waiting" in out.read_text(),
            timeout_s=120,
            what="the client did not start waiting",
            explain=lambda: err.read_text(),
        )
        server.stop()
        # The server stays away until the core has warned at least once (in
        # the log, or, as the SDK would by default, on stdout).
        poll_until_blocking(
            lambda: CORE in err.read_text() or out.read_text().count("\n") > 1,
            timeout_s=120,
            what="the core never warned while the server was away",
            explain=lambda: f"stdout: {out.read_text()!r}",
        )
        server.start()
        assert client.stdin is not None
        client.stdin.write("go on\n")
        client.stdin.flush()
        assert client.wait(120) == 0, err.read_text()
    finally:
        if client.poll() is None:
            client.kill()
        server.stop()

    assert out.read_text() == "waiting for a workflow\nended it\n"
    warnings = [line for line in err.read_text().splitlines() if line.startswith(CORE)]
    sources = [line.split("]")[0] for line in warnings]
    assert warnings, "the core's warning should be in the log"
    assert len(sources) == len(set(sources)), f"repeated within one outage:\n{warnings}"
    assert all("repeats are logged again" in line for line in warnings)
