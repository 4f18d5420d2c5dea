"""Rolling out one component's new build: the steps (:mod:`.steps`), and the
command that takes them for builds whose workers already run
(``python -m meshkit.rollout``, :mod:`.cli`)."""

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
