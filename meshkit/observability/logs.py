"""Logs that connect: one INFO line per turn, tool call and operation.

Each such line is an *event*: a short message plus fields — the session,
turn, tool call id, namespace, and the trace and span ids when tracing is
on — so one turn can be followed across the workers' logs by its trace id
(or, without tracing, by session and turn). Text lines end with the fields
as ``key=value``; ``MESH_LOG_FORMAT=json`` writes one JSON object per line
with the fields as keys. Events carry no message text, tool arguments or
results, and never a key.
"""

from __future__ import annotations

import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter
from temporalio import workflow

from meshkit.observability.tracing import current_ids

FIELDS = "mesh"
"""The log record attribute that holds an event's fields."""

_QUIET = ("httpx", "LiteLLM", "litellm", "opentelemetry")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, FIELDS, None)
        if fields:
            line += " " + " ".join(f"{key}={_text(value)}" for key, value in fields.items())
        return line


class JsonLineFormatter(JsonFormatter):
    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        fields = log_data.pop(FIELDS, None)
        if isinstance(fields, dict):
            log_data.update(fields)


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """The process's log format (``text`` or ``json``) and level."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(
            JsonLineFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "level", "name": "logger", "asctime": "time"},
            )
        )
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # LiteLLM and httpx log request lines that can carry URLs with keys.
    for noisy in _QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_event(logger: logging.Logger, message: str, /, **fields: Any) -> None:
    """One INFO event line, with the current trace and span ids added.

    In workflow code it logs only when the code runs for the first time, not
    when a history is replayed. Fields that are None are left out.
    """
    if workflow.in_workflow() and workflow.unsafe.is_replaying():
        return
    if not logger.isEnabledFor(logging.INFO):
        return
    data = {key: value for key, value in fields.items() if value is not None}
    data.update(current_ids())
    logger.info(message, extra={FIELDS: data})


def _text(value: Any) -> str:
    text = str(value)
    return text if text and " " not in text and '"' not in text else repr(text)
