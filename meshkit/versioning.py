"""Worker Versioning: every worker runs as one version of its component's
Temporal Worker Deployment.

A version is ``(deployment name, build id)``. The deployment name comes from
the mesh file (``deployment``, default: the component's task queue), the build
id from ``MESH_BUILD_ID`` or, in a git checkout, the commit. Temporal routes
new workflows, and every Nexus request, to the deployment's *current* version;
a pinned workflow keeps running on the version that started it until it ends,
so its worker must keep polling until the version has drained
(:mod:`meshkit.rollout`).

``MESH_VERSION_PROMOTION`` says when a starting worker makes its version
current: ``first`` (default) only when no version is current yet, leaving
later builds to a rollout; ``on-start`` always, as soon as it polls, for
platforms that replace workers themselves (a Kubernetes rolling update, where
the old pod's ``preStop`` hook then waits for its build to drain).

``MESH_WORKER_VERSIONING=false`` runs a worker unversioned, as before
versioning, for a server without Worker Deployments.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from temporalio.api.deployment.v1 import WorkerDeploymentVersion as DeploymentVersion
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

from meshkit.mesh import MeshError, NamespaceConfig
from meshkit.polling import poll_until

log = logging.getLogger("meshkit.versioning")
T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
BUILD_ID_ENV = "MESH_BUILD_ID"
VERSIONING_ENV = "MESH_WORKER_VERSIONING"
PROMOTION_ENV = "MESH_VERSION_PROMOTION"
PROMOTIONS = ("first", "on-start")


def promotion(env: dict[str, str] | None = None) -> str:
    value = (env if env is not None else os.environ).get(PROMOTION_ENV, "first").strip()
    if value not in PROMOTIONS:
        raise MeshError(f"{PROMOTION_ENV} must be one of {', '.join(PROMOTIONS)}, got {value!r}")
    return value


def versioning_enabled(env: dict[str, str] | None = None) -> bool:
    value = (env if env is not None else os.environ).get(VERSIONING_ENV, "true")
    return value.strip().lower() not in {"0", "false", "no", "off"}


def build_id(env: dict[str, str] | None = None) -> str:
    """This code's build id: ``MESH_BUILD_ID``, else the git commit of this checkout
    (with a digest of uncommitted changes, so an edited tree is a new build),
    else ``dev``."""
    env = env if env is not None else dict(os.environ)
    explicit = env.get(BUILD_ID_ENV, "").strip()
    if explicit:
        return explicit
    return git_build_id(ROOT) or "dev"


def git_build_id(root: Path) -> str | None:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10
        )
        return done.stdout

    try:
        commit = git("rev-parse", "--short=12", "HEAD").strip()
        # Tracked files only: logs and state under .run/ never change the build.
        diff = git("diff", "HEAD", "--", ".", ":(exclude)*.md")
    except (OSError, subprocess.SubprocessError):
        return None
    if not diff:
        return commit
    return f"{commit}-dirty-{hashlib.sha256(diff.encode()).hexdigest()[:8]}"


def worker_version(config: NamespaceConfig, build: str | None = None) -> WorkerDeploymentVersion:
    return WorkerDeploymentVersion(
        deployment_name=config.deployment_name, build_id=build or build_id()
    )


def deployment_config(
    config: NamespaceConfig, default_behavior: VersioningBehavior
) -> WorkerDeploymentConfig | None:
    """The worker's deployment options, or None when versioning is switched off.

    ``default_behavior`` covers workflow types that do not declare their own;
    the mesh's workflows each declare theirs beside their definition.
    """
    if not versioning_enabled():
        return None
    return WorkerDeploymentConfig(
        version=worker_version(config),
        use_worker_versioning=True,
        default_versioning_behavior=default_behavior,
    )


async def deployment_rpc(
    method: Callable[[Any], Awaitable[T]], request: Any, *, read: bool = False
) -> T:
    """Call a Worker Deployment RPC, retried while the server is busy with it.

    The server keeps each deployment and version in a system workflow and
    answers describes with queries to it; while that workflow runs a task,
    queries queue in a small buffer and the rest are refused ("consistent
    query buffer is full", RESOURCE_EXHAUSTED). Such refusals pass in
    milliseconds. A server too busy to answer at all (UNAVAILABLE, or a
    dropped connection: "transport error") is asked again the same way. A
    ``read`` is also asked again after the call's own deadline passed ("Timeout
    expired": a dev server starting many workers at once can be that slow);
    a change is not, since it may have been made.
    """
    delay = 0.05
    for _ in range(30):
        try:
            return await method(request)
        except RPCError as err:
            if not (_busy(err) or (read and _timed_out(err))):
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
    return await method(request)


def _busy(err: RPCError) -> bool:
    if err.status in (RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE):
        return True
    return err.status == RPCStatusCode.UNKNOWN and "transport error" in err.message


def _timed_out(err: RPCError) -> bool:
    if err.status == RPCStatusCode.DEADLINE_EXCEEDED:
        return True
    return err.status == RPCStatusCode.CANCELLED and "Timeout expired" in err.message


@dataclass(frozen=True)
class Routing:
    """Which versions of a deployment receive new work."""

    current: str | None
    ramping: str | None
    ramp_percentage: float


async def describe_deployment(client: Client, deployment: str) -> Any | None:
    """The deployment's description, or None when no version of it has ever polled."""
    try:
        return await deployment_rpc(
            client.workflow_service.describe_worker_deployment,
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment),
            read=True,
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def routing(client: Client, deployment: str) -> Routing | None:
    """The deployment's routing, or None when no version of it has ever polled."""
    described = await describe_deployment(client, deployment)
    if described is None:
        return None
    config = described.worker_deployment_info.routing_config
    return Routing(
        current=config.current_deployment_version.build_id or None,
        ramping=config.ramping_deployment_version.build_id or None,
        ramp_percentage=config.ramping_version_percentage,
    )


async def registered_builds(client: Client, deployment: str) -> set[str]:
    """Build ids of the deployment's versions the server knows (their workers have polled)."""
    described = await describe_deployment(client, deployment)
    if described is None:
        return set()
    return {
        summary.deployment_version.build_id
        for summary in described.worker_deployment_info.version_summaries
    }


async def task_queues(client: Client, version: WorkerDeploymentVersion) -> set[tuple[str, int]]:
    """The (task queue, task type) pairs the version's workers have polled."""
    try:
        described = await deployment_rpc(
            client.workflow_service.describe_worker_deployment_version,
            DescribeWorkerDeploymentVersionRequest(
                namespace=client.namespace,
                deployment_version=DeploymentVersion(
                    deployment_name=version.deployment_name, build_id=version.build_id
                ),
            ),
            read=True,
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return set()
        raise
    return {(q.name, q.type) for q in described.worker_deployment_version_info.task_queue_infos}


async def wait_registered(
    client: Client,
    version: WorkerDeploymentVersion,
    timeout_s: float = 30,
    like: str | None = None,
    types: set[int] = frozenset(),  # type: ignore[assignment]
) -> None:
    """Wait until the server has seen ``version``'s workers poll, and, with
    ``like``, poll every task queue and task type that build ``like`` polls,
    and with ``types``, poll those task types.

    A version exists only once one of its workers has polled; until then it
    cannot be made current or ramping. A worker's workflow, activity and Nexus
    pollers register one by one, and the server refuses to make a version
    current while it lacks a task queue type the current one serves (those
    tasks would have no versioned worker).
    """
    needed = await task_queues(client, replace(version, build_id=like)) if like else set()
    seen: set[tuple[str, int]] = set()

    async def registered() -> bool:
        nonlocal seen
        seen = await task_queues(client, version)
        return bool(seen) and needed <= seen and types <= {kind for _, kind in seen}

    def missing() -> str:
        lacking = ", ".join(f"{name} ({kind})" for name, kind in sorted(needed - seen))
        return f"on {lacking}, which build {like} serves" if lacking and seen else ""

    await poll_until(
        registered,
        timeout_s=timeout_s,
        interval_s=0.1,
        what=f"no worker of {version.deployment_name} build {version.build_id} polled",
        explain=missing,
    )


async def set_current(client: Client, version: WorkerDeploymentVersion, identity: str) -> None:
    await deployment_rpc(
        client.workflow_service.set_worker_deployment_current_version,
        SetWorkerDeploymentCurrentVersionRequest(
            namespace=client.namespace,
            deployment_name=version.deployment_name,
            build_id=version.build_id,
            identity=identity,
        ),
    )


async def wait_routed(
    client: Client, version: WorkerDeploymentVersion, timeout_s: float = 30
) -> None:
    """Wait until every task queue of ``version`` routes to it as current.

    Setting the current version returns before the deployment has written the
    new routing to its task queues, and each queue's partitions learn it from
    the root partition a moment later. Until a partition has it, its tasks
    still go where the old routing sent them; for a first version that is to
    unversioned workers, where nobody polls, so a Nexus request would wait out
    its timeout. The partitions checked are those of the server's default
    (``matching.numTaskqueueReadPartitions``, 4).
    """
    pending = {
        (partition_name(name, n), kind)
        for name, kind in await task_queues(client, version)
        for n in range(PARTITIONS)
    }

    async def routed() -> bool:
        for name, kind in sorted(pending):
            described = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=name),
                    task_queue_type=TaskQueueType.ValueType(kind),
                )
            )
            if described.versioning_info.current_deployment_version.build_id == version.build_id:
                pending.discard((name, kind))
        return not pending

    await poll_until(
        routed,
        timeout_s=timeout_s,
        what=f"task queues did not route to {version.deployment_name} build {version.build_id}",
        explain=lambda: f"still waiting: {sorted(pending)}",
    )


PARTITIONS = 4


async def wait_current(
    client: Client, version: WorkerDeploymentVersion, timeout_s: float = 60
) -> None:
    """Wait until ``version`` is current and routed: its worker is ready for work."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s

    async def current() -> bool:
        state = await routing(client, version.deployment_name)
        return state is not None and state.current == version.build_id

    await poll_until(
        current,
        timeout_s=timeout_s,
        what=f"{version.deployment_name} build {version.build_id} did not become current",
    )
    await wait_routed(client, version, max(1.0, deadline - loop.time()))


def partition_name(task_queue: str, partition: int) -> str:
    """The name the server gives a task queue's partition (0 is the queue itself)."""
    return task_queue if partition == 0 else f"/_sys/{task_queue}/{partition}"


async def become_current_if_first(
    client: Client, version: WorkerDeploymentVersion, types: set[int], *, always: bool = False
) -> bool:
    """Make ``version`` current, once it polls every task type in ``types``,
    when its deployment has no current version yet (or, with ``always``,
    whatever is current).

    The first worker of a component has nobody to take over from: until some
    version is current, Temporal routes the deployment's new workflows and
    Nexus requests to unversioned workers only, which would leave them
    waiting. Any later version becomes current only through a rollout, unless
    ``always``. Until a task type's poller has registered with the version,
    making it current would leave that type's tasks (say, Nexus requests)
    routed to unversioned workers, where none poll.
    """
    state = await routing(client, version.deployment_name)
    current = state.current if state else None
    await wait_registered(client, version, types=types, like=current if always else None)
    state = await routing(client, version.deployment_name)
    current = state.current if state else None
    if current == version.build_id:
        return False
    if current is not None and not always:
        log.info(
            "%s build %s is ready; build %s stays current until a rollout promotes this one",
            version.deployment_name,
            version.build_id,
            current,
        )
        return False
    try:
        await set_current(client, version, identity=f"meshkit worker {version.build_id}")
    except RPCError as err:
        # Another worker of the deployment changed the routing first.
        if err.status not in (RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.ABORTED):
            raise
        return False
    await wait_routed(client, version)
    log.info(
        "%s build %s is now current (was: %s)",
        version.deployment_name,
        version.build_id,
        current or "none",
    )
    return True
