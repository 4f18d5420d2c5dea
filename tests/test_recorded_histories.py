"""Histories recorded from real runs replay against today's workflow code.

A change that makes ChatSession non-deterministic for sessions already
running fails here. Re-record (after a deliberate, versioned change) with:

    RECORD_HISTORIES=tests/histories uv run pytest tests/test_mesh_e2e.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from tests.helpers import replayer

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_were_recorded() -> None:
    assert len(HISTORIES) >= 3


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await replayer().replay_workflow(history)
