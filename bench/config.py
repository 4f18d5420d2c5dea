"""How big a benchmark run is: one preset per mode, each figure overridable."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Mode = Literal["tiny", "quick", "full"]


@dataclass(frozen=True)
class BenchConfig:
    mode: Mode
    warmup: int
    """Round trips run and discarded before each measured series: the first
    ones pay for sandbox imports, sticky-cache misses and connection set-up."""
    floor_samples: int
    """Measured round trips per floor primitive."""
    turn_samples: int
    """Measured turns per turn kind."""
    turns_per_session: int
    """Turns per session when measuring one kind: a new session after this
    many keeps conversation growth (measured separately) out of the figure."""
    levels: tuple[int, ...]
    """Concurrent sessions in the sweep."""
    sweep_turns: int
    """Turns each session of the sweep sends, one after the other."""
    long_turns: int
    """Turns of the long conversation."""
    tracing_samples: int
    """Measured turns per turn kind on each of the two meshes, tracing on and off."""
    mcp_samples: int
    """Measured MCP ``tools/call`` round trips per tool, and as many Nexus floor
    round trips of the same operation."""
    turn_timeout_s: float = 120.0
    server_config: tuple[str, ...] = ()
    """Extra ``KEY=VALUE`` dynamic config of the dev server, for what-if runs."""
    worker_env: tuple[str, ...] = ()
    """Extra ``KEY=VALUE`` environment of the workers, e.g. LLM_LOCAL_ACTIVITY=true."""


PRESETS: dict[Mode, BenchConfig] = {
    # Smallest run that still produces every figure: used by tests/test_bench.py.
    "tiny": BenchConfig(
        mode="tiny",
        warmup=1,
        floor_samples=5,
        turn_samples=3,
        turns_per_session=5,
        levels=(1, 4),
        sweep_turns=1,
        long_turns=16,
        tracing_samples=3,
        mcp_samples=5,
    ),
    "quick": BenchConfig(
        mode="quick",
        warmup=3,
        floor_samples=40,
        turn_samples=20,
        turns_per_session=10,
        levels=(1, 10, 50, 100),
        sweep_turns=3,
        long_turns=150,
        tracing_samples=15,
        mcp_samples=40,
    ),
    "full": BenchConfig(
        mode="full",
        warmup=5,
        floor_samples=200,
        turn_samples=100,
        turns_per_session=10,
        levels=(1, 10, 50, 100),
        sweep_turns=5,
        long_turns=1000,
        tracing_samples=40,
        mcp_samples=200,
    ),
}


def make_config(
    mode: Mode,
    *,
    levels: tuple[int, ...] | None = None,
    long_turns: int | None = None,
    samples: int | None = None,
    server_config: tuple[str, ...] = (),
    worker_env: tuple[str, ...] = (),
) -> BenchConfig:
    config = PRESETS[mode]
    if levels:
        config = replace(config, levels=tuple(sorted(set(levels))))
    if long_turns is not None:
        config = replace(config, long_turns=long_turns)
    if samples is not None:
        config = replace(config, floor_samples=samples, turn_samples=samples, mcp_samples=samples)
    if server_config:
        if not all("=" in setting for setting in server_config):
            raise ValueError("server settings are KEY=VALUE")
        config = replace(config, server_config=server_config)
    if worker_env:
        if not all("=" in setting for setting in worker_env):
            raise ValueError("worker environment settings are KEY=VALUE")
        config = replace(config, worker_env=worker_env)
    if config.long_turns < 12:
        # Turn 10's window (turns 9-12) must exist for the long-conversation figure.
        raise ValueError("the long conversation needs at least 12 turns")
    return config
