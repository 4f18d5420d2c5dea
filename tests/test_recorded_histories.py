"""Histories recorded from real runs replay against today's workflow code.

A change that makes a workflow non-deterministic for executions already
running fails here. The file name's prefix says which worker's workflows it
belongs to (chat-, it-, finance-). Re-record, after a deliberate and
versioned change, with:

    RECORD_HISTORIES=tests/histories uv run pytest tests/test_determinism.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from tests.helpers import finance_replayer, it_replayer, replayer

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
REPLAYERS = {"chat": replayer, "it": it_replayer, "finance": finance_replayer}


def test_every_workflow_type_has_recorded_histories() -> None:
    types = set()
    for path in HISTORIES:
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        types.add(history.events[0].workflow_execution_started_event_attributes.workflow_type.name)
    assert types >= {
        "ChatSession",
        "JiraMetricsWorkflow",
        "CreateTicketWorkflow",
        "StockPriceWorkflow",
        "SubmitExpenseWorkflow",
    }


def test_a_continue_as_new_chain_was_recorded() -> None:
    continued = [p for p in HISTORIES if '"continuedExecutionRunId"' in p.read_text()]
    assert continued, "at least one recorded run was started by continue-as-new"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    make = REPLAYERS[path.stem.split("-", 1)[0]]
    await make().replay_workflow(history)
