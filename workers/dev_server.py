"""Settings for the Temporal dev server that scripts/demo, the tests and the
benchmark start (`temporal server start-dev`).

Print them as command-line flags: ``python -m workers.dev_server``.
"""

from __future__ import annotations

DYNAMIC_CONFIG = (
    # New Nexus endpoints are visible at once instead of after a refresh.
    'system.refreshNexusEndpointsMinWait="0s"',
    # The dev server has one history shard, and each shard reads its task
    # queues at most 20 times a second by default: past a small burst every
    # activity, Nexus call and workflow task waits for the next 50 ms tick, and
    # a tool turn takes ~300 ms instead of ~70 ms (measured by scripts/bench).
    # A production cluster spreads this over many shards.
    "history.transferProcessorMaxPollRPS=1000",
    "history.outboundProcessorMaxPollRPS=1000",
)


def dynamic_config_args(extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    args: list[str] = []
    for setting in (*DYNAMIC_CONFIG, *extra):
        args += ["--dynamic-config-value", setting]
    return args


if __name__ == "__main__":
    print(" ".join(f"'{arg}'" for arg in dynamic_config_args()))
