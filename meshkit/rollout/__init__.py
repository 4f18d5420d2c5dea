"""Rolling out one component's new build: the steps (:mod:`.steps`), and the
demo's command that runs them with worker processes (``python -m meshkit.rollout``)."""

from meshkit.rollout.steps import (
    RolloutError,
    RolloutReport,
    drainage,
    move_pinned,
    pinned_workflows,
    previous_build,
    rollout,
)

__all__ = [
    "RolloutError",
    "RolloutReport",
    "drainage",
    "move_pinned",
    "pinned_workflows",
    "previous_build",
    "rollout",
]
