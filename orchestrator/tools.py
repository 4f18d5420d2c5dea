"""The agent's tools, built inside the session workflow.

Local tools run as activities of the orchestrator. Remote tools come from the
teams' catalogs, fetched at run time (:mod:`orchestrator.catalogs`): this
module names no team's tool and imports no team's code. A remote tool is a
Nexus operation called by name with JSON arguments; the team's handler
validates them. Every tool:

- takes its name, description and argument schema from code (the team's
  contract, through its catalog, or the local tool's input model);
- asks the user first when the owning team's policy says so, and sends the
  approval record with the call, because the team checks it at its own door;
- returns JSON (cut to the session's limit, with a note), so the model reads
  structured results;
- hands a failure back to the model as a tool result ``{"error": ...}``
  instead of failing the workflow, and reports its progress to the session.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, NexusOperationError, TemporalError

with workflow.unsafe.imports_passed_through():
    import nexusrpc
    from agents import FunctionTool, RunContextWrapper, Tool
    from opentelemetry.trace import Status, StatusCode
    from pydantic import BaseModel, ValidationError

    from meshkit.observability import metrics
    from meshkit.observability.logs import log_event
    from meshkit.observability.tracing import span
    from meshkit.toolkit.catalog import ToolCatalog, ToolEntry, call_headers, strict_input_schema
    from meshkit.toolkit.hints import ToolHints
    from meshkit.toolkit.policy import ApprovalPolicy, ApprovalRecord, arguments_digest
    from orchestrator.activities import CALCULATOR_HINTS, CalculatorRequest, CalculatorResult
    from orchestrator.contract import SessionConfig, ToolCall
    from orchestrator.failover import LOCAL_TOOL_HEARTBEAT
    from orchestrator.failures import root_message
    from orchestrator.memory import truncate_output
    from orchestrator.weather import HINTS as WEATHER_HINTS
    from orchestrator.weather import Weather, WeatherRequest

LOCAL = "local"

log = logging.getLogger("orchestrator.tools")

Verdict = Literal["approved", "denied", "expired"]


@dataclass(frozen=True)
class Approval:
    """The user's answer to an approval request."""

    verdict: Verdict
    note: str = ""
    by: str = ""
    at: datetime | None = None


class ToolHost(Protocol):
    """What a tool needs from the session running it."""

    @property
    def turn(self) -> int: ...

    def tool_started(self, call: ToolCall) -> None: ...

    def tool_finished(self, call: ToolCall) -> None: ...

    def catalog_stale(self, team: str) -> None: ...

    async def await_approval(
        self, call: ToolCall, arguments: dict[str, Any], policy: ApprovalPolicy
    ) -> Approval: ...


@dataclass(frozen=True)
class LocalTool:
    """An activity of the orchestrator's own worker."""

    activity: str
    input_type: type[BaseModel]
    output_type: type[BaseModel]
    hints: ToolHints | None = None


LOCAL_TOOLS = (
    LocalTool("calculator", CalculatorRequest, CalculatorResult, CALCULATOR_HINTS),
    LocalTool("weather", WeatherRequest, Weather, WEATHER_HINTS),
)


class ToolInputError(Exception):
    """The model's arguments are not a JSON object that fits the tool."""


class UnknownToolError(ValueError):
    """A session's tool limit names a team or tool that no catalog offers."""


def local_tool_names() -> list[str]:
    return [spec.activity for spec in LOCAL_TOOLS]


def allowed_names(
    limit: list[str] | None,
    catalogs: Mapping[str, ToolCatalog],
    teams: Collection[str],
) -> set[str] | None:
    """The tool names a limit allows, or None for all of them.

    A name is a team (all its tools), ``local`` (the orchestrator's own
    tools) or one tool. A team that is in the session but unavailable is a
    known name; a tool name is known only from a fetched catalog.
    """
    if limit is None:
        return None
    allowed: set[str] = set()
    unknown: list[str] = []
    for name in limit:
        if name == LOCAL:
            allowed.update(local_tool_names())
        elif name in teams:
            catalog = catalogs.get(name)
            allowed.update(t.name for t in catalog.tools) if catalog else None
        elif name in local_tool_names() or any(c.entry(name) for c in catalogs.values()):
            allowed.add(name)
        else:
            unknown.append(name)
    if unknown:
        offered = sorted(
            {*local_tool_names(), *(t.name for c in catalogs.values() for t in c.tools)}
        )
        raise UnknownToolError(
            f"no team or tool is called {', '.join(repr(n) for n in unknown)}; teams: "
            f"{', '.join(sorted(teams)) or 'none'}, tools: {', '.join(offered)}"
        )
    return allowed


def build_tools(
    config: SessionConfig, catalogs: Mapping[str, ToolCatalog], host: ToolHost
) -> list[Tool]:
    """The turn's tools: local ones, then each available team's, within the session's limit."""
    local, remote = _offered(config, catalogs)
    tools: list[Tool] = [_local_tool(spec, config, host) for spec in local]
    for name, team, entry in remote:
        route = config.teams[team]
        tools.append(_remote_tool(name, team, route.service, route.endpoint, entry, config, host))
    return tools


def tool_hints(config: SessionConfig, catalogs: Mapping[str, ToolCatalog]) -> dict[str, ToolHints]:
    """The hints of the turn's tools, by the name the model sees."""
    local, remote = _offered(config, catalogs)
    hints = {spec.activity: spec.hints for spec in local if spec.hints}
    hints.update({name: entry.hints for name, _, entry in remote if entry.hints})
    return hints


def _offered(
    config: SessionConfig, catalogs: Mapping[str, ToolCatalog]
) -> tuple[list[LocalTool], list[tuple[str, str, ToolEntry]]]:
    """The local tools, and the remote ones as (name the model sees, team, entry)."""
    allowed = allowed_names(config.tools, catalogs, config.teams)
    local = [spec for spec in LOCAL_TOOLS if allowed is None or spec.activity in allowed]
    taken = {spec.activity for spec in local}
    remote = []
    for team, catalog in catalogs.items():
        for entry in catalog.tools:
            if allowed is not None and entry.name not in allowed:
                continue
            # Two teams offering one name: the later one's tool is qualified.
            name = entry.name if entry.name not in taken else f"{team}_{entry.name}"
            taken.add(name)
            remote.append((name, team, entry))
    return local, remote


def _local_tool(spec: LocalTool, config: SessionConfig, host: ToolHost) -> FunctionTool:
    async def call(arguments: dict[str, Any], approval: ApprovalRecord | None, call_id: str) -> str:
        try:
            arg = spec.input_type.model_validate(arguments)
        except ValidationError as err:
            raise ToolInputError(f"invalid arguments: {_problems(err)}") from None
        result = await workflow.execute_activity(
            spec.activity,
            arg,
            result_type=spec.output_type,
            schedule_to_close_timeout=timedelta(seconds=config.activity_timeout_s),
            # Bounds one attempt; an attempt lost with its worker is retried on
            # another replica once its heartbeats stop.
            start_to_close_timeout=timedelta(seconds=20),
            heartbeat_timeout=LOCAL_TOOL_HEARTBEAT,
            retry_policy=RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=10)),
            summary=spec.activity,
        )
        return result.model_dump_json()

    description = " ".join((spec.input_type.__doc__ or spec.activity).split())
    schema = copy.deepcopy(_local_schema(spec.input_type))
    return _function_tool(
        spec.activity, spec.activity, LOCAL, description, schema, (), call, None, config, host
    )


def _remote_tool(
    name: str,
    team: str,
    service: str,
    endpoint: str,
    entry: ToolEntry,
    config: SessionConfig,
    host: ToolHost,
) -> FunctionTool:
    async def call(arguments: dict[str, Any], approval: ApprovalRecord | None, call_id: str) -> str:
        args = _sent(arguments, entry.optional)
        headers = call_headers(workflow.info().workflow_id, host.turn, call_id)
        if approval:
            headers.update(approval.header())
        client = workflow.create_nexus_client(service=service, endpoint=endpoint)
        try:
            result: Any = await client.execute_operation(
                entry.name,
                args if entry.takes_input else None,
                # Without a schedule-to-close timeout a failing operation is retried forever.
                schedule_to_close_timeout=timedelta(
                    seconds=min(entry.timeout_s, config.nexus_timeout_s)
                ),
                # Cancellation (an interrupted turn) waits for the handler to finish
                # cancelling: with TRY_CANCEL, temporalio 1.35 fails the workflow task
                # when an operation's start resolves after its cancellation.
                cancellation_type=workflow.NexusOperationCancellationType.WAIT_COMPLETED,
                headers=headers,
                summary=f"{team}: {entry.name}",
            )
        except NexusOperationError as err:
            if _operation_gone(err, entry.name):
                host.catalog_stale(team)
                raise ToolInputError(
                    f"team {team} no longer offers {entry.name} (it was removed or renamed "
                    "since its catalog was fetched); the next turn uses its current catalog"
                ) from None
            raise
        return json.dumps(result)

    schema = copy.deepcopy(entry.input_schema)
    return _function_tool(
        name,
        entry.name,
        team,
        entry.description,
        schema,
        entry.optional,
        call,
        entry.approval,
        config,
        host,
    )


def _function_tool(
    name: str,
    operation: str,
    location: str,
    description: str,
    schema: dict[str, Any],
    optional: Collection[str],
    call: Callable[[dict[str, Any], ApprovalRecord | None, str], Awaitable[str]],
    policy: ApprovalPolicy | None,
    config: SessionConfig,
    host: ToolHost,
) -> FunctionTool:
    async def invoke(ctx: RunContextWrapper[Any], arguments: str) -> str:
        call_id = getattr(ctx, "tool_call_id", None) or str(workflow.uuid4())
        info = workflow.info()
        with span(
            f"tool {name}",
            attributes={
                "mesh.tool.name": name,
                "mesh.tool.team": location,
                "mesh.tool.call_id": call_id,
                "mesh.session.id": info.workflow_id,
                "mesh.turn": host.turn,
                "temporal.namespace": info.namespace,
            },
        ) as tool_span:
            record = ToolCall(
                name=name,
                location=location,
                call_id=call_id,
                arguments=arguments[:500],
                state="running",
                started_at=workflow.now(),
            )
            try:
                output = await run(record, arguments)
            finally:
                # Also when the turn is interrupted and the call cancelled.
                tool_span.set_attribute("mesh.outcome", record.state)
                metrics.tool_call(name, location, record.state, record.duration_ms)
                log_event(
                    log,
                    f"tool {name} {record.state}",
                    session=info.workflow_id,
                    turn=host.turn,
                    call_id=call_id,
                    namespace=info.namespace,
                    tool=name,
                    team=location,
                    duration_ms=record.duration_ms,
                )
            if not record.ok:
                tool_span.set_status(Status(StatusCode.ERROR, record.state))
        if output is None:
            return json.dumps({"error": record.error})
        return output

    async def run(record: ToolCall, arguments: str) -> str | None:
        """The call, its approval first if its policy asks; the output, or None
        when it failed (``record`` says why)."""
        started = workflow.time()
        call_id = record.call_id
        host.tool_started(record)
        output: str | None = None
        try:
            args = _parse(arguments)
            approval: ApprovalRecord | None = None
            if policy is not None and policy.requires_approval(args):
                record.state = "awaiting_approval"
                answer = await host.await_approval(record, args, policy)
                if answer.verdict == "approved":
                    record.state = "running"
                    approval = ApprovalRecord(
                        tool=operation,
                        call_id=call_id,
                        approved_by=answer.by or "user",
                        approved_at=answer.at or workflow.now(),
                        arguments_sha256=arguments_digest(_sent(args, optional)),
                        session=workflow.info().workflow_id,
                        note=answer.note[:500],
                    )
                else:
                    record.state, record.error = answer.verdict, answer.note
            if record.state == "running":
                result = await call(args, approval, call_id)
                output = truncate_output(result, config.max_tool_output_chars)
                record.state = "ok"
        except ToolInputError as err:
            record.state, record.error = "error", str(err)
        except (NexusOperationError, ActivityError, TemporalError) as err:
            record.state, record.error = "error", readable(root_message(err))
        finally:
            # Also on cancellation (an interrupted turn): the call is reported as ended.
            if record.state in ("running", "awaiting_approval"):
                record.state, record.error = "error", "interrupted"
            record.ok = record.state == "ok"
            record.duration_ms = round((workflow.time() - started) * 1000, 1)
            host.tool_finished(record)
        return output

    return FunctionTool(
        name=name,
        description=description,
        params_json_schema=schema,
        on_invoke_tool=invoke,
        strict_json_schema=True,
    )


@functools.cache
def _local_schema(input_type: type[BaseModel]) -> dict[str, Any]:
    # Tools are built for every turn; generating a pydantic schema each time
    # was ~5% of the orchestrator's CPU per turn (scripts/bench, py-spy).
    return strict_input_schema(input_type)[0]


def _operation_gone(err: BaseException, operation: str) -> bool:
    current: BaseException | None = err
    while current is not None:
        if isinstance(current, nexusrpc.HandlerError) or getattr(current, "type", None):
            kind = getattr(current, "type", None)
            text = str(current)
            if (
                str(kind).endswith("NOT_FOUND")
                and operation in text
                and "operation" in text.lower()
            ):
                return True
        current = getattr(current, "cause", None) or current.__cause__
    return False


_VALIDATION = re.compile(r"^\d+ validation errors? for \w+$")


def readable(message: str) -> str:
    """A team's pydantic validation report (its handler refused the arguments) as
    one line, ``invalid arguments: field: problem; ...``; other messages as they are."""
    lines = [
        line
        for line in message.splitlines()
        if line.strip() and not line.strip().startswith("For further information")
    ]
    if not lines or not _VALIDATION.match(lines[0].strip()):
        return message
    problems = []
    for loc, detail in zip(lines[1::2], lines[2::2], strict=False):
        problems.append(f"{loc.strip()}: {detail.strip().split(' [type=')[0]}")
    return "invalid arguments: " + "; ".join(problems)


def _sent(arguments: dict[str, Any], optional: Collection[str]) -> dict[str, Any]:
    """The arguments as sent to the team: optional ones left out rather than null,
    so the team's input model fills in its own default."""
    return {k: v for k, v in arguments.items() if not (v is None and k in optional)}


def _problems(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in err.errors()
    )


def _parse(arguments: str) -> dict[str, Any]:
    try:
        data = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        raise ToolInputError(f"arguments are not valid JSON: {arguments[:200]!r}") from None
    if not isinstance(data, dict):
        raise ToolInputError(f"arguments must be a JSON object, got {arguments[:200]!r}")
    return data
