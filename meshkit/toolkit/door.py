"""The team's door: every Nexus call to a team's worker passes through it.

Installed by the team worker on every team, so no handler can forget it:

- **Callers.** The request's inbound links name the caller's namespace
  (Temporal attaches them when a workflow calls an operation). A call whose
  links name a namespace the team does not accept, or that carries no link
  at all, is refused. See README, "Who may call a team", for what this does
  and does not guarantee.
- **Approvals.** A call whose policy needs a person's approval must carry an
  :class:`~meshkit.toolkit.policy.ApprovalRecord` (Nexus header) for this
  operation and these exact arguments, or it is refused with a final error.
- **Audit.** A workflow started for an approved call keeps the record in its
  memo, in the team's namespace, where the Temporal UI shows it.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import unquote, urlparse

import nexusrpc
from pydantic import BaseModel, ValidationError
from temporalio import client as temporal_client
from temporalio import nexus as temporal_nexus
from temporalio import worker as temporal_worker
from temporalio.worker import (
    ExecuteNexusOperationCancelInput,
    ExecuteNexusOperationStartInput,
    NexusOperationInboundInterceptor,
)

from meshkit.observability import metrics
from meshkit.observability.logs import log_event
from meshkit.observability.tracing import current_span
from meshkit.toolkit.catalog import CALL_HEADER, CATALOG_OPERATION, SESSION_HEADER, TURN_HEADER
from meshkit.toolkit.policy import APPROVAL_HEADER, ApprovalRecord, ToolPolicy, arguments_digest

log = logging.getLogger("meshkit.door")

APPROVAL_MEMO = "approval"
"""Memo key under which a team's workflow keeps the approval of its call."""

_approval: contextvars.ContextVar[ApprovalRecord | None] = contextvars.ContextVar(
    "mesh_approval", default=None
)


WORKFLOW_EVENT_LINK = "temporal.api.common.v1.Link.WorkflowEvent"


def link_namespace(link: nexusrpc.Link) -> str | None:
    """The namespace a caller's workflow-event link names
    (``temporal:///namespaces/<ns>/workflows/...``), or None for any other link."""
    url = urlparse(link.url)
    parts = [unquote(p) for p in url.path.split("/") if p]
    if (
        link.type == WORKFLOW_EVENT_LINK
        and url.scheme == "temporal"
        and len(parts) >= 2
        and parts[0] == "namespaces"
    ):
        return parts[1]
    return None


def caller_workflow(links: Collection[nexusrpc.Link]) -> tuple[str, str] | None:
    """The namespace and workflow id of the one workflow a request's links name
    (``temporal:///namespaces/<ns>/workflows/<id>/...``), or None.

    The server sets this link when a workflow calls an operation, so it names
    the calling workflow itself, not an identity the caller chose (as long as
    the server refuses a ``Nexus-Link`` header, as the mesh's dev server does).
    A team keys state per caller on it: for a chat session that is the
    session's workflow id, which stays across its continue-as-new runs.
    """
    found = set()
    for link in links:
        url = urlparse(link.url)
        parts = [unquote(p) for p in url.path.split("/") if p]
        if link_namespace(link) is None or len(parts) < 4 or parts[2] != "workflows":
            return None
        found.add((parts[1], parts[3]))
    return found.pop() if len(found) == 1 else None


def callback_namespace(callback_url: str | None) -> str | None:
    """The namespace in a callback URL (``.../namespaces/<ns>/nexus/callback``), if any."""
    parts = [unquote(p) for p in urlparse(callback_url or "").path.split("/") if p]
    for i, part in enumerate(parts[:-1]):
        if part == "namespaces":
            return parts[i + 1]
    return None


def _refuse(message: str) -> nexusrpc.HandlerError:
    # UNAUTHORIZED is final: the caller's Nexus machinery does not retry it.
    return nexusrpc.HandlerError(message, type=nexusrpc.HandlerErrorType.UNAUTHORIZED)


class TeamDoor(temporal_client.Interceptor, temporal_worker.Interceptor):
    """Caller and approval checks for one team's worker; see the module docstring.

    Give it to the team's client (``Client.connect(interceptors=[door])``):
    the worker picks up the Nexus side from there, and the client side adds
    the approval memo to workflows the handler starts.
    """

    def __init__(
        self, team: str, policies: Mapping[str, ToolPolicy], callers: Collection[str]
    ) -> None:
        self.team = team
        self.policies = dict(policies)
        self.callers = frozenset(callers)

    def intercept_nexus_operation(
        self, next: NexusOperationInboundInterceptor
    ) -> NexusOperationInboundInterceptor:
        return _DoorInbound(next, self)

    def intercept_client(
        self, next: temporal_client.OutboundInterceptor
    ) -> temporal_client.OutboundInterceptor:
        return _MemoOutbound(next)

    def check_caller(self, ctx: nexusrpc.handler.StartOperationContext) -> str:
        """The caller's namespace, if the team accepts it; raises otherwise.

        When a workflow calls an operation, the server links the request to
        the caller's workflow event (naming its namespace) and gives the
        callback URL of the caller's namespace. A workflow can override the
        link with a ``Nexus-Link`` header (unless the server disallows that
        header, as the mesh's dev server does), but not the callback URL, so
        both must name one accepted namespace.
        """
        accepted = ", ".join(sorted(self.callers))
        if not ctx.inbound_links:
            raise _refuse(
                f"team {self.team} accepts calls from workflows of namespaces {accepted} only; "
                "this request names no calling workflow"
            )
        named = {link_namespace(link) for link in ctx.inbound_links}
        if None in named or len(named) != 1:
            raise _refuse(
                f"team {self.team} accepts calls from one workflow of namespaces {accepted}; "
                "this request's links name something else"
            )
        (caller,) = named
        assert caller is not None
        callback = callback_namespace(ctx.callback_url)
        if not ctx.callback_url or (callback is not None and callback != caller):
            raise _refuse(
                f"team {self.team} refused a request whose caller link ({caller}) and callback "
                f"({callback or 'none'}) disagree"
            )
        if caller not in self.callers:
            raise _refuse(
                f"namespace {caller} may not call team {self.team} (accepted: {accepted})"
            )
        return caller

    def check_approval(
        self, ctx: nexusrpc.handler.StartOperationContext, input: Any
    ) -> ApprovalRecord | None:
        policy = self.policies.get(ctx.operation)
        approval = policy.approval if policy else None
        arguments = _arguments(input, exclude_unset=False)
        if approval is None or not approval.requires_approval(arguments):
            return None
        why = f" ({approval.reason})" if approval.reason else ""
        raw = _header(ctx.headers, APPROVAL_HEADER)
        if raw is None:
            raise _refuse(
                f"{ctx.operation} needs a person's approval{why}, and this call carries no "
                "approval record; nothing was done"
            )
        try:
            record = ApprovalRecord.model_validate_json(raw)
        except ValidationError as err:
            raise _refuse(f"the approval record of this call is malformed: {err}") from None
        if record.tool != ctx.operation:
            raise _refuse(
                f"the approval record is for {record.tool!r}, not {ctx.operation!r}; "
                "nothing was done"
            )
        if record.arguments_sha256 != _digest_of(input):
            raise _refuse(
                f"the arguments of this {ctx.operation} call differ from the ones "
                f"{record.approved_by} approved; nothing was done"
            )
        return record


class _DoorInbound(NexusOperationInboundInterceptor):
    def __init__(self, next: NexusOperationInboundInterceptor, door: TeamDoor) -> None:
        super().__init__(next)
        self._door = door

    async def execute_nexus_operation_start(self, input: ExecuteNexusOperationStartInput) -> Any:
        ctx = input.ctx
        door = self._door
        started = time.monotonic()
        fields = {
            "session": _header(ctx.headers, SESSION_HEADER),
            "turn": _number(_header(ctx.headers, TURN_HEADER)),
            "call_id": _header(ctx.headers, CALL_HEADER),
            "namespace": nexus_namespace(),
            "team": door.team,
            "operation": ctx.operation,
        }
        current_span().set_attributes(
            {_SPAN_ATTRIBUTES[key]: value for key, value in fields.items() if value is not None}
        )
        outcome = "error"
        try:
            try:
                caller = door.check_caller(ctx)
                record = (
                    None
                    if ctx.operation == CATALOG_OPERATION
                    else door.check_approval(ctx, input.input)
                )
            except nexusrpc.HandlerError as err:
                outcome = "refused"
                log.warning(
                    "refused %s.%s: %s", ctx.service, ctx.operation, err,
                    extra={"team": door.team, "operation": ctx.operation},
                )  # fmt: skip
                raise
            if record is not None:
                log.info(
                    "%s approved by %s at %s (call %s, caller %s)",
                    ctx.operation, record.approved_by, record.approved_at.isoformat(),
                    record.call_id, caller,
                )  # fmt: skip
            token = _approval.set(record)
            try:
                result = await self.next.execute_nexus_operation_start(input)
            finally:
                _approval.reset(token)
            outcome = "ok"
            return result
        finally:
            metrics.operation(door.team, ctx.operation, outcome)
            log_event(
                log,
                f"operation {ctx.operation} {outcome}",
                **fields,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
            )

    async def execute_nexus_operation_cancel(self, input: ExecuteNexusOperationCancelInput) -> None:
        # Cancelling what a caller started is allowed to whoever holds the token:
        # the token is only ever handed to the caller that started it.
        await self.next.execute_nexus_operation_cancel(input)


class _MemoOutbound(temporal_client.OutboundInterceptor):
    async def start_workflow(self, input: temporal_client.StartWorkflowInput) -> Any:
        record = _approval.get()
        if record is not None:
            input.memo = {**(input.memo or {}), APPROVAL_MEMO: record.model_dump(mode="json")}
        return await self.next.start_workflow(input)


def nexus_namespace() -> str | None:
    """The namespace of the worker handling the current Nexus operation."""
    try:
        return temporal_nexus.client().namespace
    except RuntimeError:
        return None


# The operation's log fields, as span attributes (the names the orchestrator's spans use).
_SPAN_ATTRIBUTES = {
    "session": "mesh.session.id",
    "turn": "mesh.turn",
    "call_id": "mesh.tool.call_id",
    "namespace": "temporal.namespace",
    "team": "mesh.team",
    "operation": "mesh.operation",
}


def _number(value: str | None) -> int | str | None:
    return int(value) if value and value.isdigit() else value


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _arguments(input: Any, *, exclude_unset: bool) -> dict[str, Any]:
    """A call's arguments: a contract's input model, or the JSON object a tool
    imported from an MCP server takes as it was sent."""
    if isinstance(input, BaseModel):
        return input.model_dump(mode="json", exclude_unset=exclude_unset)
    if isinstance(input, dict):
        return input
    return {}


def _digest_of(input: Any) -> str:
    # exclude_unset: the fields the caller sent, as the caller hashed them.
    return arguments_digest(_arguments(input, exclude_unset=True))
