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
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.client import Plugin


class ObservabilitySettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
    )
    """OTLP/HTTP collector (the standard variables); unset means no OTLP export."""
    trace_file: Path | None = Field(default=None, validation_alias="MESH_TRACE_FILE")
    """Append finished spans to this file as JSON lines (several processes may share it)."""
    trace_content: bool = Field(default=False, validation_alias="MESH_TRACE_CONTENT")
    """Let spans carry messages, tool arguments and results; off, they carry only ids,
    names, counts and durations."""
    sdk_disabled: bool = Field(default=False, validation_alias="OTEL_SDK_DISABLED")
    """The standard switch that turns tracing off whatever else is set."""
    metrics_port: int | None = Field(default=None, validation_alias="MESH_METRICS_PORT", ge=1)
    """Serve Prometheus metrics on this port; unset means no metrics endpoint."""
    metrics_host: str = Field(default="0.0.0.0", validation_alias="MESH_METRICS_HOST")
    log_format: Literal["text", "json"] = Field(default="text", validation_alias="MESH_LOG_FORMAT")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")

    @property
    def tracing(self) -> bool:
        return not self.sdk_disabled and bool(self.otlp_endpoint or self.trace_file)


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
            from meshkit.observability.tracing import shutdown_tracing

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
            from meshkit.mesh import MeshError
            from meshkit.runtime import setting_problems

            raise MeshError(f"bad observability setting: {setting_problems(err)}") from None
    telemetry = Telemetry(component, namespace, settings)
    if settings.tracing:
        from meshkit.observability.tracing import setup_tracing

        telemetry.plugins = setup_tracing(component, namespace, settings, build_id)
    if settings.metrics_port is not None:
        from meshkit.observability.metrics import serve_metrics

        telemetry.metrics_address = serve_metrics(
            settings.metrics_host, settings.metrics_port, component
        )
    _current = telemetry
    return telemetry


def current() -> Telemetry | None:
    """What :func:`setup` switched on, or None before it ran."""
    return _current
