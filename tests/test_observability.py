"""See across namespaces: one trace per turn, metrics that move, logs that connect.

The workers are real processes of a mesh of their own, each with tracing to
one trace file, JSON logs and its own metrics port. The turn is sent by the
terminal chat (a process too), so its trace starts at the client. It calls a
local tool (calculator), a sync Nexus tool of IT (get_ip) and a workflow-backed
Nexus tool of Finance (stock_price, whose activity calls the market API).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from meshdev.dev_server import free_port
from meshkit.mesh import Mesh, connect
from meshkit.observability.spans import Span, find_turn, read_spans, tree, turn_spans, walk
from meshkit.polling import poll_until
from orchestrator.session_client import session_workflow_id
from tests.fakes import FakeMarket
from tests.processes import OwnMesh, own_mesh

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parent.parent
MESSAGE = "What is 15 * 23 and my IP address and the stock price of MSFT?"
MARKET_KEY = "mkt-TRACESECRET-4e1d"


def scrape(port: int) -> dict[str, float]:
    """The mesh's samples (``mesh_*``) of one worker, by name and labels."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {}
    for line in text.splitlines():
        if line.startswith("mesh_"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        value
        for key, value in samples.items()
        if key.split("{", 1)[0] == name and all(w in key for w in wanted)
    )


@dataclass
class Turn:
    session: str
    mesh: Mesh
    workers: OwnMesh
    trace_file: Path
    ports: dict[str, int]
    before: dict[str, dict[str, float]]
    after: dict[str, dict[str, float]]
    chat_output: str
    directory: Path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def turn(
    running_mesh: Mesh, fake_market: FakeMarket, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Turn]:
    directory = tmp_path_factory.mktemp("observability")
    trace_file = directory / "traces.jsonl"
    env = {
        "MESH_TRACE_FILE": str(trace_file),
        "MESH_LOG_FORMAT": "json",
        "MARKET_DATA_URL": fake_market.url,
        "MARKET_DATA_API_KEY": MARKET_KEY,
    }
    async with own_mesh(running_mesh, directory, "obs", env=env) as workers:
        ports = {name: free_port() for name in workers.components}
        await workers.start_all({name: {"MESH_METRICS_PORT": str(p)} for name, p in ports.items()})
        before = {name: scrape(port) for name, port in ports.items()}
        session = f"obs-{uuid.uuid4().hex[:8]}"
        chat = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "orchestrator.chat", "--session", session, "-m", MESSAGE],
            cwd=ROOT,
            env={**os.environ, "MESH_FILE": str(workers.file), "MESH_TRACE_FILE": str(trace_file)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert chat.returncode == 0, chat.stderr

        # Each process exports its spans in batches (200 ms), each on its own
        # clock: wait for the backend call's, the deepest span, for the turn's,
        # and for every process's part of the turn's trace (each span's parent
        # in the file: a team's workflow span can be exported after the turn's
        # under load). If any never comes, the tests below say which is missing.
        def exported() -> bool:
            if not trace_file.exists() or '"name":"GET"' not in trace_file.read_text():
                return False
            spans = read_spans(trace_file)
            ids = {session, session_workflow_id(session)}
            turns = [s for s in turn_spans(spans) if s.attributes.get("mesh.session.id") in ids]
            if not turns:
                return False
            return len(tree(spans, max(turns, key=lambda s: s.end_ns).trace_id)) == 1

        with contextlib.suppress(TimeoutError):
            await poll_until(
                exported, timeout_s=30, interval_s=0.1, what="the turn's spans were not exported"
            )
        after = {name: scrape(port) for name, port in ports.items()}
        yield Turn(
            session_workflow_id(session),
            workers.mesh,
            workers,
            trace_file,
            ports,
            before,
            after,
            chat.stdout,
            directory,
        )


def turn_trace(turn: Turn) -> tuple[str, list[Span]]:
    spans = read_spans(turn.trace_file)
    trace_id, _ = find_turn(spans, turn.session)
    return trace_id, [s for s in spans if s.trace_id == trace_id]


def ancestry(span: Span, by_id: dict[str, Span]) -> list[Span]:
    chain = [span]
    while chain[-1].parent_id in by_id:
        chain.append(by_id[chain[-1].parent_id])  # type: ignore[index]
    return chain


async def test_one_turn_is_one_trace_across_three_namespaces(turn: Turn) -> None:
    assert "345" in turn.chat_output and "MSFT" in turn.chat_output, turn.chat_output
    trace_id, spans = turn_trace(turn)
    roots = tree(spans, trace_id)
    # Every span's parent is in the trace: the tree has one root, the client's.
    assert [r.name for r in roots] == ["chat.send"], [(r.name, r.component) for r in roots]
    assert roots[0].component == "chat"
    assert {s.namespace for s in spans} == {"orchestrator", "it", "finance"}
    assert {s.component for s in spans} == {"chat", "orchestrator", "it", "finance"}

    by_id = {s.span_id: s for s in spans}
    (http,) = [s for s in spans if s.name == "GET"]
    chain = [(s.name, s.namespace) for s in ancestry(http, by_id)]
    # From the market API call back to the message, through every hop.
    expected = [
        ("GET", "finance"),
        ("RunActivity:fetch_stock_quote", "finance"),
        ("StartActivity:fetch_stock_quote", "finance"),
        ("RunWorkflow:StockPriceWorkflow", "finance"),
        ("StartWorkflow:StockPriceWorkflow", "finance"),
        ("RunStartNexusOperationHandler:FinanceService/stock_price", "finance"),
        ("StartNexusOperation:FinanceService/stock_price", "orchestrator"),
        ("tool stock_price", "orchestrator"),
    ]
    assert [c for c in chain if c in expected] == expected, chain
    assert chain[-4:] == [
        ("chat.turn", "orchestrator"),
        ("HandleUpdate:send_message", "orchestrator"),
        ("StartWorkflowUpdate:send_message", "orchestrator"),
        ("chat.send", "orchestrator"),
    ], chain
    assert http.attributes["url.full"] == f"{turn_market_url(turn)}/quote", http.attributes

    (sync_handler,) = [
        s for s in spans if s.name == "RunStartNexusOperationHandler:ItService/get_ip"
    ]
    assert ("tool get_ip", "orchestrator") in [
        (s.name, s.namespace) for s in ancestry(sync_handler, by_id)
    ]
    (local,) = [s for s in spans if s.name == "RunActivity:calculator"]
    assert "tool calculator" in [s.name for s in ancestry(local, by_id)]

    # What the spans say: session, turn, tools, teams, model and tokens.
    (turn_span,) = [s for s in spans if s.name == "chat.turn"]
    assert turn_span.attributes["mesh.session.id"] == turn.session
    assert turn_span.attributes["mesh.turn"] == 1
    assert turn_span.attributes["gen_ai.usage.input_tokens"] > 0
    tools = {s.attributes["mesh.tool.name"]: s for s in spans if s.name.startswith("tool ")}
    assert {name: s.attributes["mesh.tool.team"] for name, s in tools.items()} == {
        "calculator": "local",
        "get_ip": "it",
        "stock_price": "finance",
    }
    assert all(s.attributes["mesh.tool.call_id"] for s in tools.values())
    (finance_handler,) = [
        s for s in spans if s.name == "RunStartNexusOperationHandler:FinanceService/stock_price"
    ]
    assert finance_handler.attributes["mesh.session.id"] == turn.session
    assert (
        finance_handler.attributes["mesh.tool.call_id"]
        == tools["stock_price"].attributes["mesh.tool.call_id"]
    )
    models = [s for s in spans if s.name.startswith("RunActivity:invoke_model_activity")]
    assert len(models) == 2
    assert all(s.attributes["gen_ai.request.model"] == "offline" for s in models)
    assert all(s.attributes["gen_ai.usage.output_tokens"] > 0 for s in models)

    # No message text and no key, in any span of any process.
    written = turn.trace_file.read_text()
    assert "stock price of MSFT" not in written and "15 * 23" not in written
    assert MARKET_KEY not in written


def turn_market_url(turn: Turn) -> str:
    return turn.workers["finance"].env["MARKET_DATA_URL"]


async def test_replaying_the_session_emits_no_spans(turn: Turn) -> None:
    orchestrator = await connect(turn.mesh, turn.mesh.orchestrator)
    history = await orchestrator.get_workflow_handle(turn.session).fetch_history()
    path = turn.directory / "history.json"
    path.write_text(history.to_json())
    replay_file = turn.directory / "replay-traces.jsonl"
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(ROOT / "tests" / "replay_traced.py"), str(path)],
        cwd=ROOT,
        env={**os.environ, "MESH_TRACE_FILE": str(replay_file)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    counts = dict(re.findall(r"(\w+)=(\d+)", result.stdout))
    # The replayed code made its spans (the turn, the agent, the tools)...
    assert int(counts["started"]) >= 5, result.stdout
    # ...and finished none of them: nothing was exported twice.
    assert counts["exported"] == "0", result.stdout
    assert not replay_file.exists() or replay_file.read_text() == ""


async def test_each_workers_metrics_move_with_the_turn(turn: Turn) -> None:
    before, after = turn.before, turn.after

    def moved(worker: str, name: str, **labels: str) -> float:
        return total(after[worker], name, **labels) - total(before[worker], name, **labels)

    assert moved("orchestrator", "mesh_turns", outcome="ok") == 1
    for tool, team in (("calculator", "local"), ("get_ip", "it"), ("stock_price", "finance")):
        assert moved("orchestrator", "mesh_tool_calls", tool=tool, team=team, outcome="ok") == 1
        assert moved("orchestrator", "mesh_tool_latency_count", tool=tool, team=team) == 1
    assert moved("orchestrator", "mesh_model_tokens", kind="input") > 0
    assert moved("orchestrator", "mesh_catalog_refreshes", team="it", outcome="ok") == 1
    assert moved("it", "mesh_operations", nexus_operation="get_ip", outcome="ok") == 1
    assert moved("finance", "mesh_operations", nexus_operation="stock_price", outcome="ok") == 1
    # Temporal's own SDK metrics are served on the same endpoint.
    url = f"http://127.0.0.1:{turn.ports['finance']}/metrics"
    text = (await asyncio.to_thread(httpx.get, url, timeout=5)).text
    assert re.search(r"^temporal_activity_execution_latency_count\{.*\} [1-9]", text, re.M)


async def test_every_workers_log_lines_carry_the_turns_trace_id(turn: Turn) -> None:
    trace_id, spans = turn_trace(turn)
    span_ids = {s.span_id for s in spans}
    events: dict[str, list[dict[str, object]]] = {}
    for name, worker in turn.workers.workers.items():
        for line in worker.log.read_text().splitlines():
            record = json.loads(line)  # every line is JSON, not only the events
            if record.get("session") == turn.session:
                events.setdefault(name, []).append(record)
    assert set(events) == {"orchestrator", "it", "finance"}
    for name, records in events.items():
        assert all(r["trace_id"] == trace_id for r in records), (name, records)
        assert all(r["span_id"] in span_ids for r in records), (name, records)
        assert all(r["level"] == "INFO" for r in records)
    orchestrator = {r["message"]: r for r in events["orchestrator"]}
    assert orchestrator["turn 1 ok"]["turn"] == 1
    assert orchestrator["turn 1 ok"]["namespace"] == "orchestrator"
    assert {"tool calculator ok", "tool get_ip ok", "tool stock_price ok"} <= set(orchestrator)
    call_ids = {r["call_id"] for r in events["orchestrator"] if "call_id" in r}
    for team, operation in (("it", "get_ip"), ("finance", "stock_price")):
        (line,) = [r for r in events[team] if r["message"] == f"operation {operation} ok"]
        assert line["namespace"] == team and line["turn"] == 1 and line["call_id"] in call_ids
    everything = turn.workers.logs()
    assert "stock price of MSFT" not in everything and MARKET_KEY not in everything


async def test_a_message_sent_through_the_api_is_traced_from_its_request(turn: Turn) -> None:
    port = free_port()
    token = "obs-token-5a1c-9f27d3b8"
    api = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orchestrator.api",
        cwd=ROOT,
        env={
            **os.environ,
            "MESH_FILE": str(turn.directory / "mesh.toml"),
            "MESH_TRACE_FILE": str(turn.trace_file),
            "MESH_API_PORT": str(port),
            "MESH_API_TOKENS": f"obs:{token}",
        },
        stdout=subprocess.DEVNULL,
        stderr=(turn.directory / "api.log").open("wb"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:

            async def answers() -> bool:
                assert api.returncode is None, (turn.directory / "api.log").read_text()
                await http.get("/api/sessions")
                return True

            await poll_until(
                answers,
                timeout_s=20,
                interval_s=0.2,
                what="the API did not answer",
                retry_on=(httpx.TransportError,),
            )
            session = (await http.post("/api/sessions", json={})).json()["id"]
            message = {"text": "What is 6 * 7?"}
            async with http.stream("POST", f"/api/sessions/{session}/messages", json=message) as r:
                assert r.status_code == 200
                body = "".join([chunk async for chunk in r.aiter_text()])
        assert "42" in body

        # The API exports the request's span when the reply is sent, and the
        # orchestrator its turn's spans in its own batches: wait for both.
        def exported() -> list[Span] | None:
            spans = read_spans(turn.trace_file)
            request = any(s.name == "POST /api/sessions/{session_id}/messages" for s in spans)
            session_ids = {s.attributes.get("mesh.session.id") for s in turn_spans(spans)}
            return spans if request and session_ids & {session, f"chat-{session}"} else None

        spans = await poll_until(
            exported,
            timeout_s=10,
            interval_s=0.1,
            what="the API's request span and the turn's spans were not exported",
        )
        trace_id, _ = find_turn(spans, session)
        roots = tree(spans, trace_id)
        assert [(r.name, r.component) for r in roots] == [
            ("POST /api/sessions/{session_id}/messages", "api")
        ]
        assert roots[0].attributes["mesh.session.id"] == session
        names = [s.name for _, s in walk(roots)]
        assert "chat.turn" in names and "RunActivity:calculator" in names
    finally:
        if api.returncode is None:
            api.terminate()
            await asyncio.wait_for(api.wait(), 10)
