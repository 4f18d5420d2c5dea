"""What a turn leaves in Temporal: history bytes and actions, counted from histories.

Temporal Cloud bills per action and stores every byte of history, so these
are what a turn costs a team at scale whatever its latency. A turn's share of
a session's history runs from its ``send_message`` Update being accepted to
that Update's completion (session start and end are left out). Actions are
counted the way they show in history: workflow tasks, activities, local
activities (one marker each), Nexus operations, Updates, signals and timers.
A workflow-backed Nexus operation also runs a workflow in the team's
namespace; the operation's link leads to its history, whose tasks and
activities are counted too, as the team's part of the turn.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle

from meshkit.mesh import Mesh, NamespaceConfig, connect
from orchestrator.contract import SEND_MESSAGE

LOCAL_ACTIVITY_MARKER = "core_local_activity"

ACTION_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow_tasks",
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activities",
    EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED: "nexus_operations",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "updates",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signals",
    EventType.EVENT_TYPE_TIMER_STARTED: "timers",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "workflows",
}
"""History events that are one action each, by the name they are reported under."""


@dataclass
class HistoryCost:
    """The history and actions of some turns, summed."""

    turns: int = 0
    bytes: int = 0
    events: int = 0
    sessions: int = 0
    first_turn_bytes: int = 0
    """Of ``bytes``, those of each session's first turn, which also fetches the
    teams' catalogs and asks the model plan: the session's own set-up."""
    actions: Counter[str] = field(default_factory=Counter)
    """Orchestrator-side actions by kind."""
    team_actions: Counter[str] = field(default_factory=Counter)
    """Actions of the teams' handler workflows started by the turns' Nexus operations."""
    team_bytes: int = 0

    def add(self, other: HistoryCost) -> None:
        self.turns += other.turns
        self.bytes += other.bytes
        self.sessions += other.sessions
        self.first_turn_bytes += other.first_turn_bytes
        self.events += other.events
        self.actions.update(other.actions)
        self.team_actions.update(other.team_actions)
        self.team_bytes += other.team_bytes

    def per_turn(self) -> dict[str, object]:
        n = self.turns or 1
        return {
            "turns": self.turns,
            "bytes_per_turn": round(self.bytes / n),
            "bytes_per_later_turn": self.later_turn_bytes(),
            "first_turn_bytes": round(self.first_turn_bytes / (self.sessions or 1)),
            "events_per_turn": round(self.events / n, 1),
            "actions_per_turn": round(sum(self.actions.values()) / n, 2),
            "actions": {k: round(v / n, 2) for k, v in sorted(self.actions.items())},
            "team_actions_per_turn": round(sum(self.team_actions.values()) / n, 2),
            "team_actions": {k: round(v / n, 2) for k, v in sorted(self.team_actions.items())},
            "team_bytes_per_turn": round(self.team_bytes / n),
        }

    def later_turn_bytes(self) -> int:
        """Bytes per turn after each session's first (0 with no such turn)."""
        later = self.turns - self.sessions
        return round((self.bytes - self.first_turn_bytes) / later) if later > 0 else 0


def count_actions(events: list[HistoryEvent]) -> Counter[str]:
    actions: Counter[str] = Counter()
    for event in events:
        kind = ACTION_EVENTS.get(event.event_type)
        if kind:
            actions[kind] += 1
        elif (
            event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        ):
            actions["local_activities"] += 1
    return actions


def turn_slice(
    events: list[HistoryEvent], update: str = SEND_MESSAGE
) -> tuple[list[HistoryEvent], int]:
    """The events from the first ``update`` accepted to the last one completed, and how many."""
    ids: set[str] = set()
    first = last = None
    for index, event in enumerate(events):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attributes = event.workflow_execution_update_accepted_event_attributes
            if attributes.accepted_request.input.name == update:
                ids.add(attributes.accepted_request.meta.update_id)
                first = index if first is None else first
        elif (
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
            and event.workflow_execution_update_completed_event_attributes.meta.update_id in ids
        ):
            last = index
    if first is None or last is None:
        return [], 0
    return events[first : last + 1], len(ids)


def first_turn(events: list[HistoryEvent]) -> list[HistoryEvent]:
    """The events of the first turn of ``events`` (a :func:`turn_slice`), up to its
    Update's completion."""
    if not events:
        return []
    meta = events[0].workflow_execution_update_accepted_event_attributes.accepted_request.meta
    for index, event in enumerate(events):
        completed = event.workflow_execution_update_completed_event_attributes
        if (
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
            and completed.meta.update_id == meta.update_id
        ):
            return events[: index + 1]
    return events


class HistoryMeter:
    """Reads sessions' histories, and the teams' handler workflows they started."""

    def __init__(self, client: Client, mesh: Mesh) -> None:
        self._mesh = mesh
        self._clients: dict[str, Client] = {client.namespace: client}

    async def _namespace(self, namespace: str) -> Client:
        if namespace not in self._clients:
            self._clients[namespace] = await connect(
                self._mesh, NamespaceConfig(namespace=namespace, task_queue="unused")
            )
        return self._clients[namespace]

    async def session(self, handle: WorkflowHandle) -> HistoryCost:
        """The turns of one session's current run."""
        history = await handle.fetch_history()
        events, turns = turn_slice(list(history.events))
        first = first_turn(events)
        cost = HistoryCost(
            turns=turns,
            bytes=sum(event.ByteSize() for event in events),
            events=len(events),
            actions=count_actions(events),
            sessions=1 if turns else 0,
            first_turn_bytes=sum(event.ByteSize() for event in first),
        )
        for event in events:
            if event.event_type != EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED:
                continue
            for link in event.links:
                target = link.workflow_event
                if not target.workflow_id:
                    continue
                client = await self._namespace(target.namespace)
                started = client.get_workflow_handle(target.workflow_id, run_id=target.run_id)
                handler = (await started.fetch_history()).events
                cost.team_actions.update(count_actions(list(handler)))
                cost.team_bytes += sum(e.ByteSize() for e in handler)
        return cost
