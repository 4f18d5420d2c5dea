"""Reading the trace file: a turn's spans as an indented timeline.

The file is what :class:`~meshkit.observability.tracing.FileSpanExporter`
writes (``MESH_TRACE_FILE``): one finished span per line, from every process
of the mesh. A turn is the trace whose ``chat.turn`` span names the session
and turn; the timeline shows each span's start (from the trace's first span),
duration, namespace, component and name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TURN_SPAN = "chat.turn"


class TraceFileError(Exception):
    """The trace file is missing, or holds no matching turn."""


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status: str = "UNSET"
    kind: str = "INTERNAL"
    children: list[Span] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def namespace(self) -> str:
        return str(self.resource.get("temporal.namespace") or "-")

    @property
    def component(self) -> str:
        return str(self.resource.get("mesh.component") or "-")

    @classmethod
    def of(cls, record: dict[str, Any]) -> Span:
        return cls(
            trace_id=record["trace_id"],
            span_id=record["span_id"],
            parent_id=record.get("parent_id"),
            name=record["name"],
            start_ns=int(record["start_ns"]),
            end_ns=int(record["end_ns"]),
            attributes=record.get("attributes") or {},
            resource=record.get("resource") or {},
            status=record.get("status", "UNSET"),
            kind=record.get("kind", "INTERNAL"),
        )


def read_spans(path: Path) -> list[Span]:
    """Every span in the file; a line cut short by a process that died is skipped."""
    if not path.exists():
        raise TraceFileError(
            f"no trace file at {path}: start the mesh with MESH_TRACE_FILE={path} "
            "(scripts/demo --trace does)"
        )
    spans = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                spans.append(Span.of(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                continue
    return spans


def turn_spans(spans: Iterable[Span]) -> list[Span]:
    return [s for s in spans if s.name == TURN_SPAN and "mesh.session.id" in s.attributes]


def find_turn(
    spans: list[Span], session: str | None = None, turn: int | None = None
) -> tuple[str, Span]:
    """The trace id of a session's turn (its last one by default; the last
    session's by default) and that turn's span."""
    turns = turn_spans(spans)
    if session is not None:
        wanted = {session, f"chat-{session}"}
        turns = [s for s in turns if s.attributes["mesh.session.id"] in wanted]
    if turn is not None:
        turns = [s for s in turns if s.attributes.get("mesh.turn") == turn]
    if not turns:
        which = f"session {session!r}" if session else "any session"
        raise TraceFileError(
            f"the trace file has no turn of {which}"
            + (f" numbered {turn}" if turn is not None else "")
        )
    last = max(turns, key=lambda s: s.end_ns)
    return last.trace_id, last


def tree(spans: Iterable[Span], trace_id: str) -> list[Span]:
    """The trace's spans as trees (roots first by start time), each span's
    children by start time. A span whose parent is not in the file (another
    process has not exported it yet, or it is the client's) is a root."""
    members = {s.span_id: s for s in spans if s.trace_id == trace_id}
    for span in members.values():
        span.children = []
    roots = []
    for span in members.values():
        parent = members.get(span.parent_id or "")
        if parent is None:
            roots.append(span)
        else:
            parent.children.append(span)
    for span in members.values():
        span.children.sort(key=lambda s: s.start_ns)
    return sorted(roots, key=lambda s: s.start_ns)


def walk(roots: list[Span], depth: int = 0) -> Iterator[tuple[int, Span]]:
    for span in roots:
        yield depth, span
        yield from walk(span.children, depth + 1)


DETAIL_KEYS = (
    "mesh.tool.call_id",
    "mesh.outcome",
    "gen_ai.request.model",
    "llm.model_name",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "llm.token_count.prompt",
    "llm.token_count.completion",
    "http.response.status_code",
    "http.status_code",
)


def timeline(roots: list[Span]) -> list[str]:
    """The trees as lines: start offset, duration, namespace, component, name, details."""
    if not roots:
        return []
    origin = min(s.start_ns for _, s in walk(roots))
    lines = []
    for depth, span in walk(roots):
        details = " ".join(
            f"{key.rsplit('.', 1)[-1]}={span.attributes[key]}"
            for key in DETAIL_KEYS
            if key in span.attributes
        )
        mark = " ERROR" if span.status == "ERROR" else ""
        lines.append(
            f"{(span.start_ns - origin) / 1e6:9.1f} ms {span.duration_ms:9.1f} ms  "
            f"{span.namespace:<14} {span.component:<13} {'  ' * depth}{span.name}"
            f"{'  ' + details if details else ''}{mark}"
        )
    return lines
