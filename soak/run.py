"""One soak run: start the rig, drive the sessions while faults land, stop the
faults, give the sessions a grace period, check the invariants."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter

from meshkit.mesh import connect
from meshkit.setup import setup_mesh
from soak.checks import Findings, check_messages, check_replay, check_side_effects, check_stuck
from soak.config import SoakConfig
from soak.faults import Injector
from soak.report import figures
from soak.rig import Rig
from soak.sessions import Driver

log = logging.getLogger("soak")
Progress = Callable[[str], None]


async def run_soak(config: SoakConfig, progress: Progress) -> dict[str, Any]:
    workdir = Path(config.workdir or tempfile.mkdtemp(prefix="mesh-soak-"))
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    logging.basicConfig(
        filename=workdir / "soak.log",
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    began = time.monotonic()
    rig = Rig(workdir, config.replicas)
    # This process connects with the same settings as the workers do.
    for key in set(os.environ) - set(rig.env):
        del os.environ[key]
    os.environ.update(rig.env)
    try:
        progress(f"dev server on {rig.address} (SQLite); logs in {workdir}")
        rig.start_server()
        await rig.wait_for_server()
        await setup_mesh(rig.mesh)
        await rig.start_relays()
        progress(f"starting {config.replicas} replicas of every worker, one at a time")
        await rig.start_workers()
        client = await connect(
            rig.mesh, rig.mesh.orchestrator, data_converter=pydantic_data_converter
        )
        rng = random.Random(config.seed)
        stop = asyncio.Event()
        run_id = uuid.uuid4().hex[:6]
        drivers = [
            Driver(client, rig.mesh, config, slot, run_id, random.Random(rng.random()), stop)
            for slot in range(config.sessions)
        ]
        injector = Injector(rig, config, random.Random(rng.random()))
        end_at = time.monotonic() + config.minutes * 60
        progress(
            f"{config.sessions} sessions for {config.minutes} min, faults every ~{config.fault_gap_s} s"
        )
        tasks = [asyncio.create_task(d.run_forever()) for d in drivers]
        await injector.run(until=lambda: time.monotonic() >= end_at)
        await asyncio.sleep(max(0.0, end_at - time.monotonic()))
        stop.set()
        progress(f"{len(injector.faults)} faults; sessions finishing (grace {config.grace_s} s)")
        _, pending = await asyncio.wait(tasks, timeout=config.grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and (error := task.exception()) is not None:
                log.error("a session driver crashed", exc_info=error)
                raise RuntimeError(f"a session driver crashed: {error!r}; see soak.log")

        logs = [s for d in drivers for s in d.sessions]
        messages = [m for s in logs for m in s.messages]
        findings = Findings()
        progress("checking: sessions settled, every message once, side effects")
        await check_stuck(client, rig.mesh, logs, findings)
        await check_messages(client, rig.mesh, logs, findings)
        effects = check_side_effects(rig, messages, findings)
        progress("checking: every history of every namespace replays")
        await check_replay(rig.mesh, findings)
        return figures(
            config,
            rig,
            messages,
            injector.faults,
            findings,
            effects,
            len(logs),
            time.monotonic() - began,
        )
    finally:
        for relay in rig.relays.values():
            await relay.close()
        await asyncio.to_thread(rig.stop)
