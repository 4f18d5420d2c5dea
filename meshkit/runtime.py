"""Running a worker process: logging, until it is told to stop, and leaving cleanly."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import ValidationError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Worker

from meshkit import heap
from meshkit.health import serve_health
from meshkit.mesh import MeshError
from meshkit.observability.logs import configure_logging as configure
from meshkit.observability.settings import ObservabilitySettings
from meshkit.polling import poll_until
from meshkit.settings import setting_problems
from meshkit.versioning import become_current_if_first, promotion

log = logging.getLogger("workers")


def configure_logging() -> None:
    """The process's log format and level, from ``MESH_LOG_FORMAT`` and ``LOG_LEVEL``."""
    try:
        settings = ObservabilitySettings()
    except ValueError:
        # Text at INFO; observability.setup reports the bad setting by name.
        settings = ObservabilitySettings.model_construct()
    configure(settings.log_format, settings.log_level)


async def run_worker(
    worker: Worker,
    name: str,
    stop: asyncio.Event | None = None,
    *,
    version: WorkerDeploymentVersion | None = None,
    health_port: int | None = None,
    warm_up: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Run ``worker`` until ``stop`` is set, or SIGINT/SIGTERM when ``stop`` is None.

    A versioned worker (``version``) makes itself its deployment's current
    version when there is none yet (the first deploy); later versions wait for
    a rollout. With ``health_port`` or ``MESH_HEALTH_PORT`` it answers health
    checks (:mod:`meshkit.health`). ``warm_up`` runs once the worker polls,
    beside it (slow imports a first task would otherwise wait for); a failure
    there is logged, and the worker runs on. Before it polls, the process's
    garbage collector is set for a long-lived process (:mod:`meshkit.heap`). Shutdown is graceful: polling stops, and
    running tasks get the worker's graceful-shutdown timeout to finish before
    they are cancelled.
    """
    own_stop = stop is None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if own_stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    heap.settle(name)
    async with worker:
        # The worker checks its namespace, then opens its pollers: the moment
        # a restarted replica (its version already current) starts serving.
        await poll_until(
            lambda: worker.is_running,
            timeout_s=60,
            interval_s=0.005,
            what=f"the {name} worker did not start polling",
        )
        log.info("%s worker opened its pollers", name)
        if version is not None:
            await become_current_if_first(
                worker.client,
                version,
                polled_task_types(worker),
                always=promotion() == "on-start",
            )
        health = serve_health(worker, name, version.build_id if version else None, health_port)
        log.info(
            "%s worker polling task queue %r in namespace %r%s",
            name,
            worker.task_queue,
            worker.client.namespace,
            f" as {version.deployment_name} build {version.build_id}" if version else "",
        )
        warming = asyncio.create_task(_warm(name, warm_up)) if warm_up else None
        try:
            await stop.wait()
            log.info("%s worker shutting down", name)
        finally:
            if warming is not None:
                warming.cancel()
            if health is not None:
                health.stop()
    log.info("%s worker stopped", name)


async def _warm(name: str, warm_up: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        await warm_up()
    except Exception:
        log.warning(
            "%s worker: warming up failed; its first task will try again", name, exc_info=True
        )


def polled_task_types(worker: Worker) -> set[int]:
    """The task types (``TaskQueueType`` values) ``worker`` polls."""
    config = worker.config()
    kinds = {
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW: config.get("workflows"),
        TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY: config.get("activities"),
        TaskQueueType.TASK_QUEUE_TYPE_NEXUS: config.get("nexus_service_handlers"),
    }
    return {int(kind) for kind, registered in kinds.items() if registered}


def exit_now(code: int) -> None:
    """Exit a command-line tool without interpreter finalisation.

    The Temporal client's Rust runtime threads can still be releasing the GIL
    while CPython finalises, which aborts the process (exit 134) at random
    after all the work is done. Nothing is left to clean up at this point, so
    flush the output and leave at once.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cli_main(name: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Entry point of a worker process: run ``main()``; a start-up failure the
    user can fix (bad mesh file, unreachable server, missing namespace, a team
    that is not in the mesh file) is one clear log line and exit status 1, not
    a traceback."""
    code = 0
    try:
        asyncio.run(main())
    except MeshError as err:
        log.error("%s worker cannot start: %s", name, err)
        code = 1
    except ValidationError as err:
        if not err.title.endswith("Settings"):
            log.exception("%s worker failed", name)
        else:  # a bad value in the environment
            log.error("%s worker cannot start: bad setting: %s", name, setting_problems(err))
        code = 1
    except Exception:
        log.exception("%s worker failed", name)
        code = 1
    exit_now(code)
