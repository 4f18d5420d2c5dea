"""Traces: one OpenTelemetry trace per chat turn, across every namespace it touches.

The trace starts where the message is sent (the terminal chat or the HTTP
API), and Temporal's OpenTelemetry plugin carries it in the headers of every
Update, activity, Nexus operation and workflow start, so the session's turn,
its model calls, its tool calls, the team's handler, the workflow it starts,
that workflow's activities and their backend HTTP requests are one tree.

Spans made in workflow code come from the SDK's replay-safe tracer provider:
their ids derive from the workflow's deterministic randomness, and a span is
only ended (exported) when the code that ends it runs for the first time, so
replaying a history after a crash, a cache eviction or a deploy emits
nothing twice.

Spans carry ids, names, counts and durations. Messages, tool arguments and
results stay out unless ``MESH_TRACE_CONTENT=true``; URLs lose their query
strings, which is where some providers put keys.
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import opentelemetry.context
import opentelemetry.trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from temporalio.client import Plugin

from meshkit.observability.settings import ObservabilitySettings

TRACER_NAME = "nexus-tool-mesh"

_provider: Any = None


def tracer() -> opentelemetry.trace.Tracer:
    """The mesh's tracer (a no-op one while tracing is off)."""
    return opentelemetry.trace.get_tracer(TRACER_NAME)


@contextmanager
def span(
    name: str,
    *,
    kind: opentelemetry.trace.SpanKind = opentelemetry.trace.SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> Iterator[opentelemetry.trace.Span]:
    """A span of the mesh's code, current inside the block.

    With tracing off this touches nothing (no context is attached), so it
    costs a turn nothing. With it on, the span records the exception that
    leaves the block; in workflow code the replay-safe provider then keeps a
    cancelled or evicted turn's span from being exported half-done. The
    context is detached even when the block is finished in another context
    (a workflow evicted from the cache is closed wherever its coroutine is
    collected), where OpenTelemetry's own helper would log an error.
    """
    if _provider is None:
        yield opentelemetry.trace.INVALID_SPAN
        return
    current = tracer().start_span(name, kind=kind, attributes=attributes)
    token = opentelemetry.context.attach(opentelemetry.trace.set_span_in_context(current))
    try:
        yield current
    except BaseException as err:
        current.record_exception(err)
        current.set_status(opentelemetry.trace.Status(opentelemetry.trace.StatusCode.ERROR))
        raise
    finally:
        current.end()
        with suppress(ValueError):  # the token belongs to another context
            token.var.reset(token)


def current_span() -> opentelemetry.trace.Span:
    """The span of the code running now (a non-recording one outside any trace)."""
    return opentelemetry.trace.get_current_span()


def untraced() -> contextvars.Context:
    """A copy of the current context outside any trace, to run background work in."""
    context = contextvars.copy_context()
    context.run(opentelemetry.context.attach, opentelemetry.context.Context())
    return context


def current_ids() -> dict[str, str]:
    """The current trace and span ids, as log fields (empty outside a trace)."""
    context = opentelemetry.trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def setup_tracing(
    component: str, namespace: str, settings: ObservabilitySettings, build_id: str | None
) -> list[Plugin]:
    """Install the process's tracer provider and exporters; the client plugins to use."""
    global _provider
    from temporalio.contrib.opentelemetry import OpenTelemetryPlugin, create_tracer_provider

    attributes = {
        "service.name": f"mesh-{component}",
        "service.namespace": "nexus-tool-mesh",
        "mesh.component": component,
        "temporal.namespace": namespace,
    }
    if build_id:
        attributes["service.version"] = build_id
    provider = create_tracer_provider(resource=Resource.create(attributes))
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # No endpoint argument: the exporter reads the standard variables
        # (endpoint, headers, timeout, compression) itself.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if settings.trace_file:
        provider.add_span_processor(
            BatchSpanProcessor(FileSpanExporter(settings.trace_file), schedule_delay_millis=200)
        )
    opentelemetry.trace.set_tracer_provider(provider)
    _provider = provider
    _instrument_httpx(provider, settings.trace_content)
    if not settings.trace_content:
        # The Agents SDK instrumentation (OpenInference) records prompts and
        # completions unless told not to.
        for name in ("OPENINFERENCE_HIDE_INPUTS", "OPENINFERENCE_HIDE_OUTPUTS"):
            os.environ.setdefault(name, "true")
    return [OpenTelemetryPlugin(add_temporal_spans=True)]


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.force_flush(5_000)
        _provider.shutdown()


def _instrument_httpx(provider: Any, content: bool) -> None:
    import httpx
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    def request_hook(span: Any, request: Any) -> None:
        # Keep scheme, host and path: a query string can hold a key.
        if content or not span.is_recording():
            return
        try:
            url = httpx.URL(str(request.url))
            bare = f"{url.scheme}://{url.netloc.decode()}{url.path}"
        except Exception:  # a hook must never fail the request it observes
            bare = "(unreadable URL)"
        for key in ("url.full", "http.url"):
            span.set_attribute(key, bare)

    HTTPXClientInstrumentor().instrument(
        tracer_provider=provider, request_hook=request_hook, async_request_hook=_async(request_hook)
    )


def _async(hook: Any) -> Any:
    async def run(span: Any, request: Any) -> None:
        hook(span, request)

    return run


class FileSpanExporter(SpanExporter):
    """Appends each finished span to a file as one JSON line.

    Several processes may append to one file: each batch is one ``write`` on
    a file opened for appending, which the OS keeps whole.
    """

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = "".join(
            json.dumps(span_record(span), separators=(",", ":")) + "\n" for span in spans
        )
        try:
            with self._lock:
                fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, data.encode())
                finally:
                    os.close(fd)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A span as the trace file stores it."""
    context = span.get_span_context()
    assert context is not None
    parent = span.parent
    return {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": f"{parent.span_id:016x}" if parent is not None else None,
        "name": span.name,
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "resource": {k: v for k, v in span.resource.attributes.items() if isinstance(k, str)},
    }
