"""Metrics: Temporal's SDK metrics and the mesh's own, in Prometheus' format.

With ``MESH_METRICS_PORT`` set, the process's Temporal runtime serves
``http://<host>:<port>/metrics`` (the SDK's exporter, in its core): the SDK's
own metrics (``temporal_*``: task latencies, polls, slots, failures) and the
mesh's (``mesh_*``), which are recorded through the same runtime's meter.

The mesh's metrics are recorded where they happen. Most happen in workflow
code (turns, tool calls, approvals, tokens, catalog refreshes), and there
they go through ``workflow.metric_meter()``, which records nothing while a
history is replayed: a crash or a deploy never counts a turn twice.

===========================  =========  ======================================
metric                       kind       labels
===========================  =========  ======================================
``mesh_turns``               counter    ``outcome`` (ok, failed, interrupted),
                                        ``model``
``mesh_tool_calls``          counter    ``tool``, ``team``, ``outcome``
``mesh_tool_latency``        histogram  ``tool``, ``team`` (milliseconds)
``mesh_approvals``           counter    ``tool``, ``team``, ``outcome``
                                        (approved, denied, expired)
``mesh_model_tokens``        counter    ``model``, ``kind`` (input, output)
``mesh_catalog_refreshes``   counter    ``team``, ``outcome`` (ok, failed)
``mesh_operations``          counter    ``team``, ``operation``, ``outcome``
                                        (ok, error, refused) — team workers
===========================  =========  ======================================
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from temporalio import activity, nexus, workflow
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime

from meshkit.temporal_runtime import install, telemetry_config

log = logging.getLogger("meshkit.metrics")

# Tool latency buckets, in milliseconds: a local tool takes tens of
# milliseconds, a team's workflow-backed tool seconds, one with an approval
# minutes.
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 120000)


def serve_metrics(host: str, port: int, component: str) -> str | None:
    """Make the process's Temporal runtime serve Prometheus metrics on ``host:port``.

    Must run before the first client connects (the runtime is chosen then).
    A port in use (on one machine, the build a rollout replaces still runs)
    is a warning, and the worker runs without a metrics endpoint.
    """
    address = f"{host}:{port}"
    try:
        runtime = _runtime(address, component)
    except ValueError as err:
        log.warning("%s serves no metrics: %s on %s", component, err, address)
        return None
    install(runtime)
    log.info("%s metrics at http://%s/metrics", component, address)
    return address


def _runtime(address: str, component: str) -> Runtime:
    return Runtime(
        telemetry=telemetry_config(
            PrometheusConfig(
                bind_address=address,
                histogram_bucket_overrides={"mesh_tool_latency": LATENCY_BUCKETS_MS},
            ),
            global_tags={"mesh_component": component},
        )
    )


def meter() -> MetricMeter:
    """The meter of the code running now: the workflow's (replay-safe), the
    activity's or the Nexus operation's, else the process's runtime's."""
    if workflow.in_workflow():
        return workflow.metric_meter()
    if activity.in_activity():
        return activity.metric_meter()
    if nexus.in_operation():
        return nexus.metric_meter()
    return Runtime.default().metric_meter


def count(name: str, description: str, value: int = 1, **labels: str) -> None:
    _instrument(meter(), "counter", name, description).add(value, labels)


def turn(outcome: str, model: str) -> None:
    count("mesh_turns", "Chat turns, by outcome", outcome=outcome, model=model)


def tool_call(tool: str, team: str, outcome: str, duration_ms: float) -> None:
    m = meter()
    labels = {"tool": tool, "team": team}
    _instrument(m, "counter", "mesh_tool_calls", "Tool calls, by tool, team and outcome").add(
        1, {**labels, "outcome": outcome}
    )
    _instrument(m, "histogram", "mesh_tool_latency", "Tool call latency").record(
        duration_ms, labels
    )


_instruments: weakref.WeakKeyDictionary[MetricMeter, dict[str, Any]] = weakref.WeakKeyDictionary()


def _instrument(m: MetricMeter, kind: str, name: str, description: str) -> Any:
    """One instrument per meter and name, made once (a workflow's meter lives
    as long as the workflow's run in the worker's cache)."""
    made = _instruments.setdefault(m, {})
    instrument = made.get(name)
    if instrument is None:
        if kind == "counter":
            instrument = m.create_counter(name, description)
        else:
            instrument = m.create_histogram_float(name, description, "ms")
        made[name] = instrument
    return instrument


def approval(tool: str, team: str, outcome: str) -> None:
    count("mesh_approvals", "Approval requests, by outcome", tool=tool, team=team, outcome=outcome)


def tokens(model: str, input_tokens: int, output_tokens: int) -> None:
    for kind, value in (("input", input_tokens), ("output", output_tokens)):
        if value:
            count("mesh_model_tokens", "Model tokens, by model", value, model=model, kind=kind)


def catalog_refresh(team: str, ok: bool) -> None:
    count(
        "mesh_catalog_refreshes",
        "Catalog fetches from teams, by outcome",
        team=team,
        outcome="ok" if ok else "failed",
    )


def catalog_shared(team: str) -> None:
    count(
        "mesh_catalogs_shared",
        "Catalogs a session took from another session of its worker instead of asking the team",
        team=team,
    )


def operation(team: str, operation: str, outcome: str) -> None:
    count(
        "mesh_operations",
        "Nexus operations a team's worker handled, by outcome",
        team=team,
        operation=operation,
        outcome=outcome,
    )
