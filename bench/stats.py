"""Latency summaries: percentiles of a series of millisecond samples."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100), interpolating between the nearest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    samples: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples: list[float]) -> Summary:
        return cls(
            samples=len(samples),
            p50_ms=round(percentile(samples, 50), 2),
            p95_ms=round(percentile(samples, 95), 2),
            p99_ms=round(percentile(samples, 99), 2),
            mean_ms=round(sum(samples) / len(samples), 2) if samples else math.nan,
            max_ms=round(max(samples), 2) if samples else math.nan,
        )


async def timed(call: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    """Await ``call()`` and return its result and how long it took, in ms."""
    started = time.perf_counter()
    result = await call()
    return result, (time.perf_counter() - started) * 1000


def cpu_ms_per(cpu_s: dict[str, float], count: int) -> dict[str, float]:
    """CPU milliseconds per round trip of each process, from its seconds over ``count``."""
    return {name: round(used * 1000 / count, 1) for name, used in cpu_s.items()} if count else {}


def ratio_text(value: float | None) -> str:
    """A ratio for a table, to two decimals: "-" when there is none."""
    return "-" if value is None or value != value else f"{value:.2f}"


def ms_text(value: float | None) -> str:
    """A figure for a table: "-" when there is none (None, or NaN for no samples)."""
    return "-" if value is None or value != value else f"{value:,.1f}"
