"""The agent's tools, built inside the session workflow.

Local tools run as activities of the orchestrator; remote tools are Nexus
operations of the teams' services, reached through their endpoints. Every tool:

- takes its name, description and argument schema from code (the input model's
  docstring and field descriptions), so the model sees what the team wrote;
- asks the user first when the owning team's approval policy says so;
- returns JSON (cut to the session's limit, with a note), so the model reads
  structured results;
- hands a failure back to the model as a tool result ``{"error": ...}``
  instead of failing the workflow, and reports its progress to the session.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, NexusOperationError, TemporalError

with workflow.unsafe.imports_passed_through():
    import nexusrpc
    from agents import FunctionTool, RunContextWrapper, Tool
    from agents.strict_schema import ensure_strict_json_schema
    from pydantic import BaseModel, ValidationError

    from orchestrator.activities import CalculatorRequest, CalculatorResult
    from orchestrator.failures import root_message
    from orchestrator.memory import truncate_output
    from orchestrator.session_types import SessionConfig, ToolCall
    from orchestrator.weather import Weather, WeatherRequest
    from services.approval import ApprovalPolicy
    from services.finance.contract import APPROVALS as FINANCE_APPROVALS
    from services.finance.contract import FinanceService
    from services.it.contract import APPROVALS as IT_APPROVALS
    from services.it.contract import ItService

LOCAL = "local"

Verdict = Literal["approved", "denied", "expired"]


class ToolHost(Protocol):
    """What a tool needs from the session running it."""

    def tool_started(self, call: ToolCall) -> None: ...

    def tool_finished(self, call: ToolCall) -> None: ...

    async def await_approval(
        self, call: ToolCall, arguments: dict[str, Any], policy: ApprovalPolicy
    ) -> tuple[Verdict, str]: ...


@dataclass(frozen=True)
class LocalTool:
    """An activity of the orchestrator's own worker."""

    activity: str
    input_type: type[BaseModel]
    output_type: type[BaseModel]


@dataclass(frozen=True)
class RemoteTool:
    """A Nexus operation of a team's service, with the team's approval policy."""

    team: str
    service: type
    operation: nexusrpc.Operation[Any, Any]
    approvals: Mapping[str, ApprovalPolicy] = field(default_factory=dict)

    @property
    def policy(self) -> ApprovalPolicy | None:
        return self.approvals.get(self.operation.name)


LOCAL_TOOLS = (
    LocalTool("calculator", CalculatorRequest, CalculatorResult),
    LocalTool("weather", WeatherRequest, Weather),
)

REMOTE_TOOLS = (
    RemoteTool("it", ItService, ItService.jira_metrics, IT_APPROVALS),
    RemoteTool("it", ItService, ItService.get_ip, IT_APPROVALS),
    RemoteTool("it", ItService, ItService.create_ticket, IT_APPROVALS),
    RemoteTool("finance", FinanceService, FinanceService.stock_price, FINANCE_APPROVALS),
    RemoteTool("finance", FinanceService, FinanceService.calculate_roi, FINANCE_APPROVALS),
    RemoteTool("finance", FinanceService, FinanceService.submit_expense, FINANCE_APPROVALS),
)


class ToolInputError(Exception):
    """The model's arguments do not fit the tool's input model."""


def build_tools(config: SessionConfig, host: ToolHost) -> list[Tool]:
    tools: list[Tool] = [_local_tool(spec, config, host) for spec in LOCAL_TOOLS]
    for spec in REMOTE_TOOLS:
        if spec.team in config.endpoints:
            tools.append(_remote_tool(spec, config.endpoints[spec.team], config, host))
    return tools


def _local_tool(spec: LocalTool, config: SessionConfig, host: ToolHost) -> FunctionTool:
    async def call(arg: BaseModel | None) -> BaseModel:
        return await workflow.execute_activity(
            spec.activity,
            arg,
            result_type=spec.output_type,
            schedule_to_close_timeout=timedelta(seconds=config.activity_timeout_s),
            # Bounds one attempt, so an attempt lost with its worker is retried soon.
            start_to_close_timeout=timedelta(seconds=20),
            retry_policy=RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=10)),
            summary=spec.activity,
        )

    return _function_tool(
        spec.activity, LOCAL, spec.input_type, spec.output_type, call, None, config, host
    )


def _remote_tool(
    spec: RemoteTool, endpoint: str, config: SessionConfig, host: ToolHost
) -> FunctionTool:
    op = spec.operation

    async def call(arg: BaseModel | None) -> BaseModel:
        client: workflow.NexusClient[Any] = workflow.create_nexus_client(
            service=spec.service, endpoint=endpoint
        )
        return await client.execute_operation(
            op,
            arg,
            # Without a schedule-to-close timeout a failing operation is retried forever.
            schedule_to_close_timeout=timedelta(seconds=config.nexus_timeout_s),
            # Cancellation (an interrupted turn) waits for the handler to finish
            # cancelling: with TRY_CANCEL, temporalio 1.35 fails the workflow task
            # when an operation's start resolves after its cancellation.
            cancellation_type=workflow.NexusOperationCancellationType.WAIT_COMPLETED,
            summary=f"{spec.team}: {op.name}",
        )

    return _function_tool(
        op.name, spec.team, op.input_type, op.output_type, call, spec.policy, config, host
    )


def _function_tool(
    name: str,
    location: str,
    input_type: type[BaseModel] | None,
    output_type: type[BaseModel] | None,
    call: Callable[[BaseModel | None], Awaitable[BaseModel]],
    policy: ApprovalPolicy | None,
    config: SessionConfig,
    host: ToolHost,
) -> FunctionTool:
    described = input_type if input_type is not None and _is_model(input_type) else output_type
    description = " ".join((described.__doc__ or name).split()) if described else name
    if input_type is not None and _is_model(input_type):
        schema = copy.deepcopy(_strict_schema(input_type))
    else:
        schema = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}

    async def invoke(ctx: RunContextWrapper[Any], arguments: str) -> str:
        started = workflow.time()
        call_id = getattr(ctx, "tool_call_id", None) or str(workflow.uuid4())
        record = ToolCall(
            name=name,
            location=location,
            call_id=call_id,
            arguments=arguments[:500],
            state="running",
        )
        host.tool_started(record)
        output: str | None = None
        try:
            arg = _parse(input_type, arguments)
            if policy is not None and policy.requires_approval(fields := _as_dict(arg)):
                record.state = "awaiting_approval"
                verdict, note = await host.await_approval(record, fields, policy)
                if verdict == "approved":
                    record.state = "running"
                else:
                    record.state, record.error = verdict, note
            if record.state == "running":
                result = await call(arg)
                output = truncate_output(result.model_dump_json(), config.max_tool_output_chars)
                record.state = "ok"
        except ToolInputError as err:
            record.state, record.error = "error", str(err)
        except (NexusOperationError, ActivityError, TemporalError) as err:
            record.state, record.error = "error", root_message(err)
        finally:
            # Also on cancellation (an interrupted turn): the call is reported as ended.
            if record.state in ("running", "awaiting_approval"):
                record.state, record.error = "error", "interrupted"
            record.ok = record.state == "ok"
            record.duration_ms = round((workflow.time() - started) * 1000, 1)
            host.tool_finished(record)
        if output is None:
            return json.dumps({"error": record.error})
        return output

    return FunctionTool(
        name=name,
        description=description,
        params_json_schema=schema,
        on_invoke_tool=invoke,
        strict_json_schema=True,
    )


@functools.cache
def _strict_schema(input_type: type[BaseModel]) -> dict[str, Any]:
    # Tools are built for every turn; generating a pydantic schema each time
    # was ~5% of the orchestrator's CPU per turn (scripts/bench, py-spy).
    return ensure_strict_json_schema(input_type.model_json_schema())


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _as_dict(arg: BaseModel | None) -> dict[str, Any]:
    return arg.model_dump() if arg is not None else {}


def _parse(input_type: type[BaseModel] | None, arguments: str) -> BaseModel | None:
    try:
        data = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        raise ToolInputError(f"arguments are not valid JSON: {arguments[:200]!r}") from None
    if input_type is None or not _is_model(input_type):
        return None
    try:
        return input_type.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in err.errors()
        )
        raise ToolInputError(f"invalid arguments: {problems}") from None
