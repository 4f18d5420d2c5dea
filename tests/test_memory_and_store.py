"""Context bounds and the idempotent side-effect store, without a server."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import meshkit
from meshkit.toolkit.policy import ApprovalPolicy
from meshkit.toolkit.store import STATE_DIR_ENV, IdempotentStore, state_dir
from orchestrator.memory import NOTE_PREFIX, compact, estimate_tokens, truncate_output


def turn(n: int, size: int = 400) -> list[dict[str, object]]:
    return [
        {"role": "user", "content": f"question {n}"},
        {"type": "function_call", "call_id": f"c{n}", "name": "calculator", "arguments": "{}"},
        {"type": "function_call_output", "call_id": f"c{n}", "output": "x" * size},
        {"role": "assistant", "content": f"answer {n}"},
    ]


def test_short_tool_outputs_are_untouched() -> None:
    assert truncate_output('{"a": 1}', 100) == '{"a": 1}'


def test_long_tool_outputs_are_cut_with_a_note_saying_so() -> None:
    cut = truncate_output("y" * 10_000, 1_000)
    assert cut.startswith("y" * 1_000) and "y" * 1_001 not in cut
    assert "truncated: the tool returned 10000 characters; only the first 1000" in cut


def test_a_conversation_within_budget_is_kept_whole() -> None:
    items = turn(1) + turn(2)
    kept, dropped = compact(items, budget_tokens=10_000, dropped_before=0)
    assert kept == items and dropped == 0


def test_old_turns_are_dropped_whole_so_every_call_keeps_its_output() -> None:
    items = [i for n in range(20) for i in turn(n)]
    kept, dropped = compact(items, budget_tokens=1_000, dropped_before=0)
    assert dropped > 0
    assert kept[0]["role"] == "system" and str(kept[0]["content"]).startswith(NOTE_PREFIX)
    assert f"{dropped} earlier turn(s)" in str(kept[0]["content"])
    body = kept[1:]
    assert body[0] == {"role": "user", "content": f"question {dropped}"}
    calls = {i["call_id"] for i in body if i.get("type") == "function_call"}
    outputs = {i["call_id"] for i in body if i.get("type") == "function_call_output"}
    assert calls == outputs
    assert body[-4:] == turn(19)
    assert estimate_tokens(body) <= 1_000


def test_dropped_turns_add_up_and_the_note_is_never_duplicated() -> None:
    items = [i for n in range(20) for i in turn(n)]
    kept, first = compact(items, budget_tokens=1_000, dropped_before=0)
    kept, total = compact(kept + turn(20), budget_tokens=1_000, dropped_before=first)
    assert total > first
    notes = [i for i in kept if str(i.get("content", "")).startswith(NOTE_PREFIX)]
    assert len(notes) == 1 and f"{total} earlier turn(s)" in str(notes[0]["content"])


def test_the_latest_turn_is_kept_even_when_alone_it_is_over_budget() -> None:
    kept, dropped = compact(turn(1) + turn(2, size=50_000), budget_tokens=500, dropped_before=0)
    assert dropped == 1 and kept[1:] == turn(2, size=50_000)


def test_one_idempotency_key_makes_one_record(tmp_path: Path) -> None:
    store = IdempotentStore(tmp_path / "s.sqlite", "claims")
    first, created = store.put("k1", lambda seq: {"id": seq, "what": "first"})
    again, created_again = store.put("k1", lambda seq: {"id": seq, "what": "second"})
    other, _ = store.put("k2", lambda seq: {"id": seq, "what": "other"})
    assert created and not created_again
    assert again == first == {"id": 1, "what": "first"}
    assert other["id"] == 2
    assert store.all() == [first, other]


def test_concurrent_writers_with_one_key_still_make_one_record(tmp_path: Path) -> None:
    store = IdempotentStore(tmp_path / "s.sqlite", "claims")
    results: list[bool] = []

    def write() -> None:
        results.append(store.put("same", lambda seq: {"id": seq})[1])

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1 and len(store.all()) == 1


def test_local_stores_default_to_the_current_directory_never_the_installed_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    package = Path(meshkit.__file__).resolve().parent

    assert state_dir() == tmp_path / ".run" / "state"
    assert not state_dir().resolve().is_relative_to(package)

    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "stores"))
    assert state_dir() == tmp_path / "stores"


def test_approval_policies() -> None:
    above = ApprovalPolicy(above=100, field="amount")
    assert not above.requires_approval({"amount": 100})
    assert above.requires_approval({"amount": 100.01})
    assert above.requires_approval({"amount": "lots"})  # not comparable: ask
    assert above.requires_approval({})
    assert ApprovalPolicy(always=True).requires_approval({})
    assert not ApprovalPolicy().requires_approval({"amount": 1e9})
    assert json.loads(above.model_dump_json())["above"] == 100
