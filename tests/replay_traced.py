"""Replay a session's history with tracing on, as the orchestrator worker runs it.

    python tests/replay_traced.py HISTORY.json   (MESH_TRACE_FILE set)

Prints ``started=N`` (spans the replayed workflow code started) and
``exported=M`` (spans finished and handed to the exporters). Run as its own
process because a tracer provider is process-wide.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import opentelemetry.trace
from opentelemetry.sdk.trace import SpanProcessor
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from meshkit import observability
from orchestrator.models.provider import LlmSettings
from orchestrator.worker import agent_plugins
from orchestrator.workflow import ChatSessionWorkflow


class Counting(SpanProcessor):
    def __init__(self) -> None:
        self.started = 0
        self.ended = 0

    def on_start(self, span, parent_context=None) -> None:  # type: ignore[no-untyped-def]
        self.started += 1

    def on_end(self, span) -> None:  # type: ignore[no-untyped-def]
        self.ended += 1


async def main(path: Path) -> None:
    telemetry = observability.setup("replayer", "orchestrator")
    assert telemetry.tracing, "set MESH_TRACE_FILE"
    counting = Counting()
    opentelemetry.trace.get_tracer_provider().add_span_processor(counting)  # type: ignore[attr-defined]
    history = WorkflowHistory.from_json("replayed", path.read_text())
    replayer = Replayer(
        workflows=[ChatSessionWorkflow],
        plugins=[*agent_plugins(LlmSettings(model="offline"), tracing=True), *telemetry.plugins],
    )
    await replayer.replay_workflow(history)
    telemetry.shutdown()
    print(f"started={counting.started} exported={counting.ended}")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
