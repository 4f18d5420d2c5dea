"""This process's Temporal runtime: the SDK core's log lines go to Python's
logging, and a warning the core repeats while the server is away is logged
once per outage.

Left alone, the core writes its warnings to the process's stdout (a chat, a
script whose output is read): while the server restarts, a client retrying a
long poll writes one line per retry. Forwarded to the ``temporalio.core``
logger, they reach the process's log handlers (stderr; without any
configured, Python's last-resort handler, also stderr).

An outage, for one source of warnings (a core logger: the client's retries,
a worker's pollers), begins with its first warning and ends once that source
has been quiet for :data:`QUIET_S` seconds: the core logs nothing when a
retried call succeeds, so silence is the only sign the server is back. The
first warning of an outage is logged, with how many the previous outage of
that source repeated; the rest are counted, not logged.

:func:`meshkit.mesh.connect` installs this runtime before the first client of
the process connects; :func:`meshkit.observability.metrics.serve_metrics`
installs it with a Prometheus endpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

CORE_LOGGER = "temporalio.core"
"""The logger the core's lines are forwarded to (each source is a name below it)."""

QUIET_S = 60.0
"""Seconds without a warning from one source after which its outage is over.

The client's retries of a long poll back off to about 10 s between attempts,
so a shorter gap would start a new outage within one."""

_installed = False


@dataclass
class _Outage:
    last: float
    repeats: int = 0


class OncePerOutage(logging.Filter):
    """Pass the first warning of each source's outage; count and drop its repeats.

    Times are the records' own (``created``, the core's time for forwarded
    lines), so the filter decides the same way however late a batch arrives.
    """

    def __init__(self, quiet_s: float = QUIET_S) -> None:
        super().__init__()
        self.quiet_s = quiet_s
        self._outages: dict[str, _Outage] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        outage = self._outages.get(record.name)
        if outage is not None and record.created - outage.last < self.quiet_s:
            outage.last = record.created
            outage.repeats += 1
            return False
        note = f"repeats are logged again after {self.quiet_s:g} s without one"
        if outage is not None and outage.repeats:
            note += f"; the previous outage repeated it {outage.repeats} times"
        record.msg = f"{record.getMessage()} ({note})"
        record.args = ()
        self._outages[record.name] = _Outage(last=record.created)
        return True


def telemetry_config(
    metrics: PrometheusConfig | None = None, global_tags: dict[str, str] | None = None
) -> TelemetryConfig:
    """The runtime's telemetry: core warnings forwarded to :data:`CORE_LOGGER`."""
    logger = logging.getLogger(CORE_LOGGER)
    if not any(isinstance(f, OncePerOutage) for f in logger.filters):
        logger.addFilter(OncePerOutage())
    return TelemetryConfig(
        logging=LoggingConfig(
            # The SDK's default levels: the core's warnings, other crates' errors.
            filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
            forwarding=LogForwardingConfig(logger=logger),
        ),
        metrics=metrics,
        global_tags=global_tags or {},
    )


def install(runtime: Runtime) -> None:
    """Make ``runtime`` the process's default, for every client connected after."""
    global _installed
    Runtime.set_default(runtime, error_if_already_set=False)
    _installed = True


def ensure_installed() -> None:
    """Install a runtime that forwards the core's logs, unless one is already."""
    if not _installed:
        install(Runtime(telemetry=telemetry_config()))
