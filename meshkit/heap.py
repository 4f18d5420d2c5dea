"""The garbage collector of a worker process, set for a long-lived process.

A worker holds, from start to stop, most of what it ever allocates: the SDKs'
modules, pydantic's validators, every cached workflow with its state. By
default CPython's collector looks at young objects after every 700 net
allocations and, every hundred or so young collections, walks the whole heap.
In the orchestrator at 100 busy sessions that cost 5-10% of its CPU
(``gc.callbacks`` timing: full collections of 0.1-0.2 s each, every few
seconds), spent finding no garbage in objects that live as long as the
process. So, once the worker is built and before it polls:

- ``gc.collect()`` then ``gc.freeze()``: what exists then (modules, settings,
  validators) moves to the permanent generation, which no collection walks;
- young collections every ``thresholds[0]`` allocations instead of 700, the
  older generations as often as CPython's defaults relative to them.

Measured on 100 sessions sending at once (one run each way, the benchmark's
sweep level on its own): orchestrator CPU per turn 22.0 ms with CPython's
defaults, 20.4 with the freeze alone, 19.5 with both. The price, over
``scripts/bench --quick`` runs: the orchestrator's peak RSS 231-234 MB
against 220-225, and 0.1-0.2 s more from spawn to first poll (the collection
before the freeze: 30-110 ms). ``MESH_GC_FREEZE=false`` and
``MESH_GC_THRESHOLDS`` (a JSON list of three ints) change it; ``[700, 10, 10]``
is CPython's default.
"""

from __future__ import annotations

import gc
import logging
import time

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("workers")


class HeapSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MESH_GC_", extra="ignore")

    freeze: bool = Field(
        default=True,
        description="Move what the worker holds once it is built into the collector's "
        "permanent generation, which no collection walks.",
    )
    thresholds: tuple[int, int, int] = Field(
        default=(10_000, 20, 20),
        description="gc.set_threshold's three values: allocations between young "
        "collections, then young collections per middle one, middle ones per full one.",
    )

    @field_validator("thresholds")
    @classmethod
    def _positive(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(n < 1 for n in value):
            raise ValueError("every threshold must be at least 1")
        return value


def settle(name: str, settings: HeapSettings | None = None) -> None:
    """Set the collector for a long-lived worker process (see the module's docstring)."""
    settings = settings or HeapSettings()
    gc.set_threshold(*settings.thresholds)
    if settings.freeze:
        began = time.perf_counter()
        gc.collect()
        gc.freeze()
        log.info(
            "%s worker: %d objects frozen in %.0f ms",
            name, gc.get_freeze_count(), (time.perf_counter() - began) * 1000,
        )  # fmt: skip
