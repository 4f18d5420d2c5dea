"""What the environment switches on: traces, metrics, the log format (:class:`ObservabilitySettings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
