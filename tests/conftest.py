"""One real Temporal dev server and one mesh of workers for the whole test session.

The server is the Temporal CLI built by scripts/install (path in TEMPORAL_CLI,
or the default cache location), started by the same helper as the demo's.
Workers run in this process on the session's event loop, with the same code as
production (``orchestrator.worker.main``, and ``meshkit.team_worker.main`` for
every team of the mesh file), against a mesh file written for the session.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from meshdev.dev_server import start_dev_server
from meshkit import team_worker
from meshkit.mesh import DEFAULT_MESH_FILE, Mesh, MeshError, connect, load_mesh
from meshkit.polling import poll_until, poll_until_blocking
from meshkit.setup import setup_mesh
from meshkit.versioning import wait_current, worker_version
from orchestrator import worker as orchestrator_worker
from orchestrator.models.provider import LlmSettings
from orchestrator.weather import WeatherSettings
from tests.fakes import FakeMarket
from tests.helpers import SCRIPTED, ScriptedModel

NAMESPACES = ("orchestrator", "it", "finance")
FAKE_LLM_KEY = "sk-test-fake-key-never-valid"

_MODEL_GUARD = pytest.MonkeyPatch()


def pytest_configure(config: pytest.Config) -> None:
    """Before any test module is imported: any accidental call to a hosted model
    goes to a closed local port and fails fast, and LiteLLM's import reads its
    cost map from the package instead of the network. Undone when pytest ends."""
    _MODEL_GUARD.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    if not os.environ.get("OPENAI_API_KEY"):
        _MODEL_GUARD.setenv("OPENAI_API_KEY", "sk-test-guard")
    _MODEL_GUARD.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def pytest_unconfigure(config: pytest.Config) -> None:
    _MODEL_GUARD.undo()


@pytest.fixture(scope="session", autouse=True)
def environment(
    tmp_path_factory: pytest.TempPathFactory, stores: Path, fake_market: FakeMarket
) -> Iterator[None]:
    """The one environment of every test, set before the first and restored
    after the last, so that no test sees what another changed. A test that
    needs another value sets it with ``monkeypatch``."""
    with pytest.MonkeyPatch.context() as env:
        # The tests' mesh must not be redirected by a developer's own settings.
        env.delenv("TEMPORAL_ADDRESS", raising=False)
        env.delenv("TEMPORAL_API_KEY", raising=False)
        no_config = tmp_path_factory.mktemp("temporal-config") / "no-temporal.toml"
        env.setenv("TEMPORAL_CONFIG_FILE", str(no_config))
        # The teams read their backends from the environment, as deployed: demo
        # data, local stores in this session's directory, the fake market.
        env.setenv("MESH_STATE_DIR", str(stores))
        env.setenv("MARKET_DATA_URL", fake_market.url)
        yield


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    try:
        server = start_dev_server(log, namespaces=NAMESPACES)
    except RuntimeError as err:  # no CLI
        pytest.exit(str(err), 2)
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mesh(mesh_file: Path) -> Mesh:
    return load_mesh(mesh_file)


@pytest.fixture(scope="session")
def mesh_file(temporal_address: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The repository's mesh, on this server, with task queues and endpoints of its own.
    mesh = load_mesh(DEFAULT_MESH_FILE).isolated(uuid.uuid4().hex[:6], temporal_address)
    path = tmp_path_factory.mktemp("mesh") / "mesh.toml"
    path.write_text(mesh.to_toml())
    return path


@pytest.fixture(scope="session")
def scripted_model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture(scope="session")
def fake_llm_url(make_httpserver) -> str:  # type: ignore[no-untyped-def]
    """Base URL of the local OpenAI-compatible fake (pytest-httpserver, real HTTP).

    Tests install its answers through the ``httpserver`` fixture, which is
    the same server, cleared after each test.
    """
    return make_httpserver.url_for("/v1")


@pytest.fixture(scope="session")
def fake_market() -> Iterator[FakeMarket]:
    market = FakeMarket()
    yield market
    market.release.set()
    market.http.close()


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the local side-effect stores of the in-process workers."""
    return tmp_path_factory.mktemp("stores")


@pytest_asyncio.fixture(scope="session")
async def running_mesh(
    mesh: Mesh,
    scripted_model: ScriptedModel,
    fake_llm_url: str,
) -> AsyncIterator[Mesh]:
    """The mesh set up and its workers running until the session ends: the
    orchestrator and every team of the mesh file, each from its registration,
    with the backends of the session's ``environment``."""
    await _wait_for_server(mesh)
    await setup_mesh(mesh)
    stop = asyncio.Event()
    llm = LlmSettings(model="offline", base_url=fake_llm_url, api_key=FAKE_LLM_KEY, timeout_s=3)  # type: ignore[arg-type]
    tasks = [
        asyncio.create_task(
            orchestrator_worker.main(
                mesh, llm, WeatherSettings(), extra_models={SCRIPTED: scripted_model}, stop=stop
            )
        ),
        *(asyncio.create_task(team_worker.main(mesh, team, stop=stop)) for team in mesh.teams),
    ]
    # Each worker makes itself its deployment's first current version; the
    # tests start once every one has.
    for config in (mesh.orchestrator, *mesh.teams.values()):
        await wait_current(await connect(mesh, config), worker_version(config))
    yield mesh
    stop.set()
    await asyncio.gather(*tasks)


@pytest_asyncio.fixture(scope="session")
async def client(running_mesh: Mesh) -> Client:
    """A client of the orchestrator's namespace, as the chat uses."""
    return await connect(
        running_mesh, running_mesh.orchestrator, data_converter=pydantic_data_converter
    )


async def _wait_for_server(mesh: Mesh) -> None:
    await poll_until(
        lambda: connect(mesh, mesh.orchestrator),
        timeout_s=60,
        interval_s=0.5,
        what="the Temporal dev server did not start",
        retry_on=(MeshError,),  # not reachable yet
    )


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    """The reliability summary: what the suite put the mesh through."""
    from tests.reliability import LABELS, RECOVERY, TALLY, recovery_line

    failures = len(terminalreporter.stats.get("failed", [])) + len(
        terminalreporter.stats.get("error", [])
    )
    parts = [f"{label}: {TALLY[kind]}" for kind, label in LABELS.items()]
    terminalreporter.write_sep("=", "reliability summary")
    terminalreporter.write_line(", ".join([*parts, f"failures: {failures}"]))
    if RECOVERY:
        # From the kill to the turn's reply: a lone worker's restart included; with
        # replicas, the time a surviving one took to take over.
        terminalreporter.write_line(
            "recovery after kill -9 (s): "
            + ", ".join(recovery_line(fault, seconds) for fault, seconds in RECOVERY.items())
        )


@dataclass
class WebApi:
    """The HTTP API served for the tests, with two users."""

    url: str
    token: str
    other_token: str


ALICE_TOKEN = "alice-token-0123456789abcdef"
BOB_TOKEN = "bob-token-0123456789abcdef"


@pytest.fixture(scope="session")
def web_api(running_mesh: Mesh) -> Iterator[WebApi]:
    """``python -m orchestrator.api``'s app on a free port, in a thread of its own
    (with its own event loop and Temporal client), so that blocking clients such
    as a browser driver can use it from a test."""
    import threading

    import uvicorn

    from meshdev.dev_server import free_port
    from orchestrator.api.app import create_app
    from orchestrator.api.auth import load_users

    users = load_users({"MESH_API_TOKENS": f"alice:{ALICE_TOKEN},bob:{BOB_TOKEN}"})
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(running_mesh, users), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    poll_until_blocking(lambda: server.started, timeout_s=10, what="the API did not start")
    yield WebApi(f"http://127.0.0.1:{port}", ALICE_TOKEN, BOB_TOKEN)
    server.should_exit = True
    thread.join(10)
