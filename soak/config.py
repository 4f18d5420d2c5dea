"""What one soak run does: how long, how many sessions, how often faults land."""

from __future__ import annotations

from dataclasses import dataclass

FAULT_KINDS = (
    "replica_kill",
    "component_kill",
    "server_restart",
    "team_cut",
    "backend_5xx",
    "backend_hang",
)
"""Every fault the soak injects; see docs/soak.md."""


@dataclass(frozen=True)
class SoakConfig:
    minutes: float = 2.0
    """How long sessions send turns and faults land."""
    sessions: int = 4
    """Sessions sending turns at once."""
    replicas: int = 2
    """Processes of each worker (orchestrator and every team)."""
    seed: int = 1
    """Seeds every random choice: fault times, kinds, targets, the turn mix."""
    fault_gap_s: float = 10.0
    """Mean pause between the end of one fault and the start of the next."""
    fault_s: tuple[float, float] = (4.0, 10.0)
    """How long an outage lasts (cut, backend fault, dead replicas), at random between."""
    think_s: tuple[float, float] = (0.5, 2.0)
    """A session's pause between two turns, at random between."""
    turns_per_session: int = 40
    """Turns before a session is ended and its slot opens a new one."""
    grace_s: float = 60.0
    """After the faults stop: how long every session has to finish its last turn."""
    turn_deadline_s: float = 300.0
    """How long a client keeps retrying one message (same id) before it gives up."""
    approve_share: float = 0.6
    """Share of approval requests approved; the rest are denied."""
    workdir: str | None = None
    """Where the server's database and every log go (default: a new temp dir)."""

    def __post_init__(self) -> None:
        problems = []
        if not self.minutes > 0:
            problems.append("--minutes must be above 0")
        if self.sessions < 1:
            problems.append("--sessions must be at least 1")
        if self.replicas < 1:
            problems.append("--replicas must be at least 1")
        if not self.fault_gap_s >= 0:
            problems.append("--fault-gap must be 0 or more")
        if not 0 <= self.approve_share <= 1:
            problems.append("--approve-share must be between 0 and 1")
        if not self.grace_s >= 0:
            problems.append("--grace must be 0 or more")
        if self.turns_per_session < 1:
            problems.append("--turns-per-session must be at least 1")
        if problems:
            raise ValueError("; ".join(problems))
