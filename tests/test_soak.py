"""The chaos soak: a bounded run (two minutes, every fault kind) loses,
duplicates and sticks nothing, and every history replays; and the parts it
injects faults with do what they say: a backend that answers 5xx or hangs
until healed, a relay that cuts a team off and lets it back."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from meshdev.fakes import FakeExpenses, FakeMarket
from soak.__main__ import cli
from soak.config import FAULT_KINDS
from soak.relay import Relay
from tests.reliability import count

ROOT = Path(__file__).resolve().parent.parent
FINAL = re.compile(
    r"^soak: sessions (\d+), turns (\d+), faults (\d+), lost (\d+), duplicated (\d+), stuck (\d+)$"
)


def test_a_bounded_soak_loses_duplicates_and_sticks_nothing(tmp_path: Path) -> None:
    figures = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "soak", "--minutes", "2", "--sessions", "3", "--seed", "7",
            "--fault-gap", "2", "--fault-min", "3", "--fault-max", "5", "--grace", "90",
            "--json", str(figures), "--workdir", str(tmp_path / "run"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )  # fmt: skip
    output = done.stdout.strip().splitlines()
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-3000:]}"
    final = FINAL.match(output[-1])
    assert final, output[-1]
    sessions, turns, faults, lost, duplicated, stuck = map(int, final.groups())
    assert (sessions, lost, duplicated, stuck) == (3, 0, 0, 0)
    data = json.loads(figures.read_text())
    assert turns == data["turns"] > 0 and faults == data["faults"]
    assert all(data["faults_by_kind"][kind] >= 1 for kind in FAULT_KINDS), data["faults_by_kind"]
    assert data["histories_replayed"] > 0 and data["replay_failures"] == 0
    assert data["side_effects_expected"] > 0 and data["side_effects_missing"] == 0
    assert "team reported unavailable while its worker was alive" in done.stdout
    count("faults", faults)
    count("turns", turns)
    count("records", data["side_effects_expected"])


def test_bad_options_are_refused_with_a_clear_error() -> None:
    runner = CliRunner()
    for args, says in (
        (["--sessions", "0"], "--sessions must be at least 1"),
        (["--minutes", "-1"], "--minutes must be above 0"),
        (["--fault-min", "9", "--fault-max", "3"], "--fault-min"),
        (["--approve-share", "2"], "--approve-share must be between 0 and 1"),
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert says in result.output
    assert runner.invoke(cli, ["--sessions", "many"]).exit_code == 2


def test_a_backend_answers_5xx_or_hangs_until_it_is_healed() -> None:
    market, expenses = FakeMarket(), FakeExpenses()
    try:
        market.http.fail("5xx")
        assert httpx.get(f"{market.url}/quote?symbol=MSFT").status_code == 503
        market.http.heal()
        assert httpx.get(f"{market.url}/quote?symbol=MSFT").status_code == 200

        expenses.http.fail("hang")
        body = {"amount": 1, "currency": "EUR", "description": "held"}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{expenses.url}/expenses", json=body, headers={"Idempotency-Key": "k"}, timeout=1
            )
        expenses.http.heal()
        assert expenses.records == {}, "a hung request is never served"
        with pytest.raises(ValueError, match="unknown fault"):
            expenses.http.fail("slow")  # type: ignore[arg-type]
    finally:
        market.http.close()
        expenses.http.close()


async def closed(reader: asyncio.StreamReader) -> bool:
    """Whether the other end closed or reset the connection (nothing more to read)."""
    try:
        return await asyncio.wait_for(reader.read(4), 5) == b""
    except ConnectionResetError:
        return True


async def test_a_cut_relay_drops_connections_and_refuses_new_ones_until_restored() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
    relay = Relay(f"127.0.0.1:{upstream.sockets[0].getsockname()[1]}")
    await relay.start()
    host, port = relay.address.split(":")
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.read(4), 5) == b"ping"
        relay.cut()
        assert await closed(reader), "the open connection is dropped"
        late_reader, _ = await asyncio.open_connection(host, int(port))
        assert await closed(late_reader), "a new one is closed"
        relay.restore()
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"back")
        assert await asyncio.wait_for(reader.read(4), 5) == b"back"
        assert relay.refused == 1
    finally:
        await relay.close()
        upstream.close()
