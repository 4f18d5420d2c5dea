"""The observability parts that need no Temporal: settings, log lines, the trace reader."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from meshkit.observability import ObservabilitySettings
from meshkit.observability.logs import JsonLineFormatter, TextFormatter, log_event
from meshkit.observability.spans import TraceFileError, find_turn, read_spans, timeline, tree
from meshkit.observability.tracing import FileSpanExporter

ROOT = Path(__file__).resolve().parent.parent


def test_tracing_is_off_unless_an_exporter_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MESH_TRACE_FILE", raising=False)
    assert not ObservabilitySettings().tracing
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert ObservabilitySettings().tracing
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not ObservabilitySettings().tracing
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    monkeypatch.setenv("MESH_METRICS_PORT", "0")
    with pytest.raises(ValueError, match="MESH_METRICS_PORT"):
        ObservabilitySettings()


def _logger(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test-events-{id(formatter)}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, out


def test_an_event_is_one_text_line_with_its_fields() -> None:
    logger, out = _logger(TextFormatter("%(levelname)s %(name)s: %(message)s"))
    log_event(logger, "tool get_ip ok", session="chat-a", turn=2, call_id=None, team="it")
    (line,) = out.getvalue().splitlines()
    assert line.endswith("tool get_ip ok session=chat-a turn=2 team=it")
    assert "call_id" not in line  # None fields are left out


def test_an_event_is_one_json_object_with_its_fields_as_keys() -> None:
    logger, out = _logger(JsonLineFormatter("%(levelname)s %(name)s %(message)s"))
    log_event(logger, "turn 3 ok", session="chat-b", turn=3, duration_ms=12.5)
    record = json.loads(out.getvalue())
    assert record["message"] == "turn 3 ok"
    assert (record["session"], record["turn"], record["duration_ms"]) == ("chat-b", 3, 12.5)
    assert "mesh" not in record


def test_an_event_inside_a_span_carries_its_trace_and_span_ids() -> None:
    logger, out = _logger(JsonLineFormatter("%(message)s"))
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        log_event(logger, "operation get_ip ok", session="chat-c")
    record = json.loads(out.getvalue())
    context = span.get_span_context()
    assert record["trace_id"] == f"{context.trace_id:032x}"
    assert record["span_id"] == f"{context.span_id:016x}"


def _span(
    trace: str, span: str, parent: str | None, name: str, start: int, end: int, **attributes: object
) -> dict[str, object]:
    component = attributes.pop("component", "orchestrator")
    namespace = attributes.pop("namespace", "orchestrator")
    return {
        "trace_id": trace,
        "span_id": span,
        "parent_id": parent,
        "name": name,
        "kind": "INTERNAL",
        "start_ns": start * 1_000_000,
        "end_ns": end * 1_000_000,
        "status": "UNSET",
        "attributes": attributes,
        "resource": {"mesh.component": component, "temporal.namespace": namespace},
    }


def _trace_file(path: Path) -> Path:
    turn = {"mesh.session.id": "chat-s1", "mesh.turn": 1}
    later = {"mesh.session.id": "chat-s1", "mesh.turn": 2}
    lines = [
        _span("t1", "a", None, "chat.send", 0, 100, component="chat"),
        _span("t1", "b", "a", "chat.turn", 5, 95, **turn),
        _span(
            "t1",
            "d",
            "c",
            "RunStartNexusOperationHandler:ItService/get_ip",
            30,
            31,
            component="it",
            namespace="it",
        ),
        _span("t1", "c", "b", "tool get_ip", 20, 60, **{"mesh.tool.call_id": "call-1"}),
        _span("t2", "e", None, "chat.turn", 200, 300, **later),
        _span("t3", "f", None, "chat.turn", 400, 500, **{"mesh.session.id": "chat-other"}),
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + '\n{"trace_id": "cut sh')
    return path


def test_the_reader_finds_a_sessions_turns_and_builds_their_tree(tmp_path: Path) -> None:
    spans = read_spans(_trace_file(tmp_path / "traces.jsonl"))
    assert len(spans) == 6  # the line cut short by a dying process is skipped
    assert find_turn(spans, "s1")[0] == "t2"  # the session's last turn, by default
    assert find_turn(spans, "chat-s1", turn=1)[0] == "t1"
    assert find_turn(spans)[0] == "t3"  # the latest turn of any session
    with pytest.raises(TraceFileError, match="no turn of session 'nobody'"):
        find_turn(spans, "nobody")
    roots = tree(spans, "t1")
    assert [r.name for r in roots] == ["chat.send"]
    lines = timeline(roots)
    assert [line.split()[-1] for line in lines[:2]] == ["chat.send", "chat.turn"]
    assert "call_id=call-1" in lines[2]
    handler = lines[3]
    assert "it" in handler.split() and handler.index("RunStart") > lines[2].index("tool")


def test_the_trace_command_prints_the_turns_timeline(tmp_path: Path) -> None:
    path = _trace_file(tmp_path / "traces.jsonl")
    run = subprocess.run(
        [sys.executable, "-m", "meshkit.observability", "trace", "-s", "s1", "-t", "1", "-f", path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    header, _columns, *rows = run.stdout.splitlines()
    assert header.startswith("session chat-s1 turn 1 · trace t1 · 4 spans")
    assert "namespaces: it, orchestrator" in header
    assert len(rows) == 4 and rows[0].split()[:4] == ["0.0", "ms", "100.0", "ms"]
    missing = subprocess.run(
        [sys.executable, "-m", "meshkit.observability", "trace", "-f", tmp_path / "none.jsonl"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1
    assert "no trace file at" in missing.stderr and "MESH_TRACE_FILE" in missing.stderr


def test_the_file_exporter_appends_whole_lines(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    path = tmp_path / "deep" / "traces.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(path)))
    provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(path)))  # a second process
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner"):
        pass
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["name"] for r in records] == ["inner", "inner", "outer", "outer"]
    outer = records[2]
    assert records[0]["parent_id"] == outer["span_id"] and outer["parent_id"] is None


PROBE = """
from meshkit import observability
from meshkit.observability.tracing import span

telemetry = observability.setup("probe", "finance")
with span("probe.work", attributes={"mesh.turn": 7}):
    pass
telemetry.shutdown()
print("tracing" if telemetry.tracing else "off")
"""


def _probe(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MESH_TRACE"))}
    run = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return run.stdout.strip()


def test_spans_go_over_otlp_when_the_standard_endpoint_is_set(httpserver) -> None:  # type: ignore[no-untyped-def]
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    httpserver.expect_request("/v1/traces", method="POST").respond_with_data(b"", status=200)
    assert _probe({"OTEL_EXPORTER_OTLP_ENDPOINT": httpserver.url_for("/").rstrip("/")}) == "tracing"
    (request, _response), *_ = httpserver.log
    assert request.headers["Content-Type"] == "application/x-protobuf"
    exported = ExportTraceServiceRequest.FromString(request.get_data())
    (resource_spans,) = exported.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "mesh-probe"
    assert resource["temporal.namespace"] == "finance"
    (scope,) = resource_spans.scope_spans
    assert [s.name for s in scope.spans] == ["probe.work"]


def test_nothing_is_exported_when_no_exporter_is_set(httpserver) -> None:  # type: ignore[no-untyped-def]
    assert _probe({}) == "off"
    assert httpserver.log == []
