"""Rolling out a new version of one component: beside the old one, then current,
then the old one drains and stops.

The steps, each reported as it happens:

1. start the new build's worker next to the running one, and wait until
   Temporal has seen it poll (a version exists only once it has polled);
2. optionally ramp: send a share of new workflows to it, step by step;
3. make it current: from now on new workflows and every Nexus request go to
   it, and auto-upgrade workflows (chat sessions) move at their next task;
4. wait until the old version has drained: Temporal reports DRAINED once no
   open pinned workflow needs it; then stop the old worker.

A hot-fix (``move_pinned``) also moves the old version's open pinned
workflows onto the new build, so that a call stuck retrying a buggy activity
finishes on the fixed code. That is safe only for a build whose workflow code
replays the old one's histories, such as a fix inside an activity.

Rolling back is a rollout to the previous build, which the new version records
in its metadata (``mesh.previous_build``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionProto
from temporalio.api.enums.v1 import VersionDrainageStatus
from temporalio.api.workflow.v1 import WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
    UpdateWorkerDeploymentVersionMetadataRequest,
    UpdateWorkflowExecutionOptionsRequest,
)
from temporalio.client import Client
from temporalio.common import PinnedVersioningOverride, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode

from meshkit.polling import poll_until
from meshkit.versioning import deployment_rpc, routing, set_current, wait_registered, wait_routed

IDENTITY = "meshkit rollout"
PREVIOUS_KEY = "mesh.previous_build"


class RolloutError(Exception):
    """A rollout step could not be taken; the message says which and why."""


@dataclass
class RolloutReport:
    """What a rollout did, step by step, with the time each step took."""

    component: str
    deployment: str
    old_build: str | None
    new_build: str
    steps: list[tuple[str, float]] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    drained: bool = False


Report = Callable[[str], None]
StopOld = Callable[[], Awaitable[None]]


def _version(deployment: str, build: str) -> VersionProto:
    return VersionProto(deployment_name=deployment, build_id=build)


async def describe_version(client: Client, deployment: str, build: str) -> object:
    return (
        await deployment_rpc(
            client.workflow_service.describe_worker_deployment_version,
            DescribeWorkerDeploymentVersionRequest(
                namespace=client.namespace, deployment_version=_version(deployment, build)
            ),
        )
    ).worker_deployment_version_info


async def drainage(client: Client, deployment: str, build: str) -> str:
    """The version's drainage status: ``DRAINING``, ``DRAINED`` or ``UNSPECIFIED``."""
    info = await describe_version(client, deployment, build)
    status = info.drainage_info.status  # type: ignore[attr-defined]
    return VersionDrainageStatus.Name(status).removeprefix("VERSION_DRAINAGE_STATUS_")


async def pinned_workflows(client: Client, deployment: str, build: str) -> list[str]:
    """Ids of the open workflows pinned to one version."""
    query = (
        f"TemporalWorkerDeploymentVersion = '{deployment}:{build}' "
        "AND ExecutionStatus = 'Running' AND TemporalWorkflowVersioningBehavior = 'Pinned'"
    )
    return [execution.id async for execution in client.list_workflows(query)]


async def move_pinned(client: Client, workflow_ids: list[str], to: WorkerDeploymentVersion) -> None:
    """Pin open workflows to another version (their next tasks run there)."""
    override = PinnedVersioningOverride(to)._to_proto()
    for workflow_id in workflow_ids:
        await deployment_rpc(
            client.workflow_service.update_workflow_execution_options,
            UpdateWorkflowExecutionOptionsRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=workflow_id),
                workflow_execution_options=WorkflowExecutionOptions(versioning_override=override),
                update_mask=FieldMask(paths=["versioning_override"]),
            ),
        )


async def record_previous(client: Client, version: WorkerDeploymentVersion, previous: str) -> None:
    await deployment_rpc(
        client.workflow_service.update_worker_deployment_version_metadata,
        UpdateWorkerDeploymentVersionMetadataRequest(
            namespace=client.namespace,
            deployment_version=_version(version.deployment_name, version.build_id),
            upsert_entries={
                PREVIOUS_KEY: Payload(
                    metadata={"encoding": b"binary/plain"}, data=previous.encode()
                )
            },
            identity=IDENTITY,
        ),
    )


async def previous_build(client: Client, deployment: str, build: str) -> str | None:
    """The build that was current before ``build``, as its rollout recorded."""
    info = await describe_version(client, deployment, build)
    entry = info.metadata.entries.get(PREVIOUS_KEY)  # type: ignore[attr-defined]
    return entry.data.decode() if entry is not None and entry.data else None


async def set_ramping(client: Client, version: WorkerDeploymentVersion, percentage: float) -> None:
    await deployment_rpc(
        client.workflow_service.set_worker_deployment_ramping_version,
        SetWorkerDeploymentRampingVersionRequest(
            namespace=client.namespace,
            deployment_name=version.deployment_name,
            build_id=version.build_id,
            percentage=percentage,
            identity=IDENTITY,
        ),
    )


async def rollout(
    client: Client,
    component: str,
    new: WorkerDeploymentVersion,
    *,
    stop_old: StopOld | None = None,
    ramp: tuple[float, ...] = (),
    ramp_wait_s: float = 10.0,
    move_pinned_calls: bool = False,
    drain_timeout_s: float = 600.0,
    report: Report = print,
) -> RolloutReport:
    """Make ``new`` (whose worker must already be running) its deployment's
    current version, then wait for the old one to drain and call ``stop_old``.

    Raises :class:`RolloutError` when a step cannot be taken; the deployment's
    routing is then as the last reported step left it.
    """
    deployment = new.deployment_name
    state = await routing(client, deployment)
    old = state.current if state else None
    result = RolloutReport(component, deployment, old, new.build_id)
    started = time.perf_counter()

    def step(text: str) -> None:
        result.steps.append((text, time.perf_counter() - started))
        report(f"[{time.perf_counter() - started:6.1f}s] {component}: {text}")

    if old == new.build_id:
        raise RolloutError(
            f"{component}: build {new.build_id} is already current in deployment {deployment}"
        )
    try:
        await wait_registered(client, new, timeout_s=60, like=old)
    except TimeoutError as err:
        raise RolloutError(f"{component}: {err}") from None
    step(f"build {new.build_id} polls (deployment {deployment}, current: {old or 'none'})")
    if old:
        await record_previous(client, new, old)
    for percentage in ramp:
        await set_ramping(client, new, percentage)
        step(f"ramping {percentage:g}% of new workflows to build {new.build_id}")
        await asyncio.sleep(ramp_wait_s)
    await set_current(client, new, IDENTITY)
    await wait_routed(client, new)
    step(f"build {new.build_id} is current: its task queues route new work to it")
    if not old:
        result.drained = True
        return result
    if move_pinned_calls:
        ids = await pinned_workflows(client, deployment, old)
        await move_pinned(client, ids, new)
        result.moved = ids
        step(f"moved {len(ids)} open pinned workflow(s) from build {old} to {new.build_id}")
    result.drained = await wait_drained(client, deployment, old, drain_timeout_s, step)
    if result.drained and stop_old is not None:
        await stop_old()
        step(f"stopped the worker of build {old}")
    elif not result.drained:
        step(
            f"build {old} still has pinned workflows after {drain_timeout_s:.0f} s; "
            "its worker keeps running (run the rollout again to wait longer)"
        )
    return result


async def wait_drained(
    client: Client, deployment: str, build: str, timeout_s: float, step: Report
) -> bool:
    """Wait until Temporal reports ``build`` drained: no open pinned workflow on it.

    The server refreshes drainage on its own schedule
    (``matching.wv.VersionDrainageStatusRefreshInterval``, after a grace period
    ``matching.wv.VersionDrainageStatusVisibilityGracePeriod``); both default
    to 3 minutes, and the dev server settings shorten them.
    """
    said = ""

    async def drained() -> bool:
        nonlocal said
        try:
            status = await drainage(client, deployment, build)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            step(f"build {build} is gone from the deployment: nothing needs it")
            return True
        if status == "DRAINED":
            step(f"build {build} drained: no open workflow is pinned to it")
            return True
        if status != said:
            pinned = await pinned_workflows(client, deployment, build)
            step(
                f"build {build} is {status.lower() or 'waiting'}: {len(pinned)} pinned workflow(s) open"
            )
            said = status
        return False

    try:
        return await poll_until(
            drained, timeout_s=timeout_s, interval_s=0.5, what=f"build {build} did not drain"
        )
    except TimeoutError:
        return False
