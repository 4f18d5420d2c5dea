"""What the mesh tells the people who run it: traces, metrics and logs.

Every process of the mesh (each worker, the HTTP API, the terminal chat)
calls :func:`setup` once, before it connects to Temporal. What it switches on
comes from the environment (:class:`ObservabilitySettings`):

- **Traces** (:mod:`.tracing`) when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP over
  HTTP) or ``MESH_TRACE_FILE`` (JSON lines, read by ``python -m
  meshkit.observability``) is set; off otherwise, at no cost.
- **Metrics** (:mod:`.metrics`) on ``MESH_METRICS_PORT``: Temporal's SDK
  metrics and the mesh's own, in Prometheus' text format at ``/metrics``.
- **Logs** (:mod:`.logs`): one INFO line per turn, tool call and operation,
  as text or, with ``MESH_LOG_FORMAT=json``, as JSON lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError
from temporalio.client import Plugin

from meshkit.mesh import MeshError
from meshkit.observability.metrics import serve_metrics
from meshkit.observability.settings import ObservabilitySettings
from meshkit.observability.tracing import setup_tracing, shutdown_tracing
from meshkit.settings import setting_problems

__all__ = ["ObservabilitySettings", "Telemetry", "setup"]


@dataclass
class Telemetry:
    """What :func:`setup` switched on for this process."""

    component: str
    namespace: str
    settings: ObservabilitySettings
    plugins: list[Plugin] = field(default_factory=list)
    """Client plugins that carry the trace across Temporal calls (empty when off)."""
    metrics_address: str | None = None

    @property
    def tracing(self) -> bool:
        return bool(self.plugins)

    def shutdown(self) -> None:
        """Export the spans still buffered; call before the process exits."""
        if self.tracing:
            shutdown_tracing()


_current: Telemetry | None = None


def setup(
    component: str,
    namespace: str,
    *,
    build_id: str | None = None,
    settings: ObservabilitySettings | None = None,
) -> Telemetry:
    """Switch on this process's traces and metrics, as the environment says
    (its log format is set by its entry point: ``meshkit.runtime.configure_logging``).

    The tracer provider and the Temporal runtime are process-wide, so only
    the first call configures them; later calls return the same result. A
    bad setting is a :class:`~meshkit.mesh.MeshError` naming it.
    """
    global _current
    if _current is not None:
        return _current
    if settings is None:
        try:
            settings = ObservabilitySettings()
        except ValidationError as err:
            raise MeshError(f"bad observability setting: {setting_problems(err)}") from None
    telemetry = Telemetry(component, namespace, settings)
    if settings.tracing:
        telemetry.plugins = setup_tracing(component, namespace, settings, build_id)
    if settings.metrics_port is not None:
        telemetry.metrics_address = serve_metrics(
            settings.metrics_host, settings.metrics_port, component
        )
    _current = telemetry
    return telemetry
