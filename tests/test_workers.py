"""Workers as real processes, and the setup command."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import pytest
from temporalio.api.operatorservice.v1 import DeleteNexusEndpointRequest, ListNexusEndpointsRequest
from temporalio.client import Client

from meshdev.processes import worker_command
from meshkit.mesh import Mesh, connect
from meshkit.polling import poll_until
from meshkit.setup import setup_mesh
from orchestrator.session_client import SessionClient
from tests.processes import own_mesh

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parent.parent


async def start_worker(name: str, mesh_file: Path, log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "MESH_FILE": str(mesh_file), "LLM_MODEL": "offline"}
    return await asyncio.create_subprocess_exec(
        *worker_command(name), cwd=ROOT, env=env,
        stdout=log.open("w"), stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def wait_for_line(log: Path, text: str, timeout_s: float = 30) -> None:
    await poll_until(
        lambda: text in log.read_text(),
        timeout_s=timeout_s,
        interval_s=0.1,
        what=f"{text!r} did not appear in {log}",
        explain=log.read_text,
    )


@pytest.mark.parametrize("name", ["orchestrator", "it", "finance"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_each_worker_shuts_down_cleanly_on_a_signal(
    running_mesh: Mesh, mesh_file: Path, tmp_path: Path, name: str, sig: signal.Signals
) -> None:
    log = tmp_path / f"{name}.log"
    process = await start_worker(name, mesh_file, log)
    await wait_for_line(log, "worker polling")
    process.send_signal(sig)
    assert await asyncio.wait_for(process.wait(), 30) == 0, log.read_text()
    assert f"{name} worker stopped" in log.read_text()
    assert "Traceback" not in log.read_text()


async def test_a_worker_without_its_namespace_says_so(tmp_path: Path, mesh_file: Path) -> None:
    broken = tmp_path / "mesh.toml"
    broken.write_text(mesh_file.read_text().replace('namespace = "it"', 'namespace = "no-such-ns"'))
    log = tmp_path / "it.log"
    process = await start_worker("it", broken, log)
    assert await asyncio.wait_for(process.wait(), 60) != 0
    assert "namespace 'no-such-ns' does not exist" in log.read_text()
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize(
    ("component", "variable", "value", "why"),
    [
        ("orchestrator", "LLM_STREAM", "sometimes", "'auto', 'on' or 'off'"),
        ("it", "MESH_WORKER_WORKFLOW_TASK_POLLERS", "1", "greater than or equal to 2"),
        ("orchestrator", "MESH_WORKER_NEXUS_TASK_POLLERS", "many", "valid integer"),
    ],
)
async def test_a_bad_setting_is_one_line_naming_the_variable(
    tmp_path: Path, mesh_file: Path, component: str, variable: str, value: str, why: str
) -> None:
    log = tmp_path / f"{component}.log"
    env = {**os.environ, "MESH_FILE": str(mesh_file), variable: value}
    process = await asyncio.create_subprocess_exec(
        *worker_command(component), cwd=ROOT, env=env,
        stdout=log.open("w"), stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert await asyncio.wait_for(process.wait(), 60) == 1
    text = log.read_text()
    assert f"cannot start: bad setting: {variable}={value!r}" in text
    assert why in text and "Traceback" not in text


async def test_setup_is_idempotent_and_recreates_a_missing_endpoint(running_mesh: Mesh) -> None:
    again = await setup_mesh(running_mesh)
    assert {(c.kind, c.action) for c in again} == {("namespace", "found"), ("endpoint", "found")}

    client = await connect(running_mesh, running_mesh.orchestrator)
    name = running_mesh.team("finance").endpoint
    [endpoint] = (
        await client.operator_service.list_nexus_endpoints(ListNexusEndpointsRequest(name=name))
    ).endpoints
    await client.operator_service.delete_nexus_endpoint(
        DeleteNexusEndpointRequest(id=endpoint.id, version=endpoint.version)
    )
    changes = {c.name: c.action for c in await setup_mesh(running_mesh)}
    assert changes[name] == "created"
    assert changes[running_mesh.team("it").endpoint] == "found"


async def test_setup_creates_a_missing_namespace(running_mesh: Mesh) -> None:
    extra = f"extra-{uuid.uuid4().hex[:6]}"
    mesh = running_mesh.model_copy(
        update={
            "teams": {
                **running_mesh.teams,
                "extra": running_mesh.team("it").model_copy(
                    update={"namespace": extra, "endpoint": extra, "task_queue": extra}
                ),
            }
        }
    )
    changes = {(c.kind, c.name): c.action for c in await setup_mesh(mesh)}
    assert changes[("namespace", extra)] == "created"
    assert changes[("endpoint", extra)] == "created"


async def test_model_calls_can_run_as_local_activities(
    client: Client, running_mesh: Mesh, tmp_path: Path
) -> None:
    # Its own orchestrator task queue; the teams' workers are the shared ones.
    orchestrator = running_mesh.orchestrator
    local_mesh = running_mesh.model_copy(
        update={
            "orchestrator": orchestrator.model_copy(
                update={"task_queue": f"{orchestrator.task_queue}-local"}
            )
        }
    )
    env = {"LLM_MODEL": "offline", "LLM_LOCAL_ACTIVITY": "true"}
    async with own_mesh(local_mesh, tmp_path, env=env) as own:
        await own.start("orchestrator")
        handle = await SessionClient(client, own.mesh).open(
            f"local-{uuid.uuid4().hex[:6]}", model="offline"
        )
        reply = await handle.send("What is 6 * 7?", 60)
        assert reply.ok and "42" in reply.text
        events = [e async for e in handle.handle.fetch_history_events()]
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        assert "invoke_model_activity" not in scheduled and "calculator" in scheduled
        assert sum(e.HasField("marker_recorded_event_attributes") for e in events) >= 2
