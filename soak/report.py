"""A soak run's figures: turns, faults, the invariants' counts, recovery times.

Recovery time of a fault (docs/soak.md): from the fault's repair (for a
single replica's kill, the kill itself) to the first reply of a successful
turn that touches the fault's component, among turns sent since the fault
started. A turn touches the orchestrator always, a team when one of its tools
answered the turn, a backend when one of the tools it serves did.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.stats import percentile
from meshdev.processes import ORCHESTRATOR
from orchestrator.contract import SessionConfig
from soak.checks import Findings
from soak.config import FAULT_KINDS, SoakConfig
from soak.faults import Fault
from soak.rig import Rig
from soak.sessions import EXPECTED_TOOL, Message, tools_ok, touched

UNAVAILABLE_SLACK_S = (
    SessionConfig.model_fields["catalog_retry_s"].default
    + SessionConfig.model_fields["catalog_timeout_s"].default
)
"""After a failed catalog fetch a session leaves the team out, without asking
again, for ``catalog_retry_s``: a turn that far after an outage (plus one
fetch's timeout) may still be told the team is unavailable."""


def _touches(message: Message, fault: Fault) -> bool:
    if fault.tools:
        return bool(tools_ok(message) & set(fault.tools))
    if fault.target == ORCHESTRATOR or fault.kind == "server_restart":
        return True
    return bool(touched(message) & set(fault.components))


def recovery_s(fault: Fault, messages: list[Message]) -> float | None:
    """Seconds from the fault's repair to the next successful turn touching it."""
    replies = [
        m.replied
        for m in messages
        if m.replied is not None
        and m.reply is not None
        and m.reply.ok
        and m.sent >= fault.started
        and m.replied >= fault.repaired
        and _touches(m, fault)
    ]
    return min(replies) - fault.repaired if replies else None


def unavailable_while_alive(rig: Rig, messages: list[Message]) -> tuple[int, int, list[str]]:
    """Replies that left out a team while it was reachable, and those excused
    by an outage (every replica dead, the team cut off, the server restarting)."""
    wrong = excused = 0
    examples = []
    for m in messages:
        if m.reply is None or not m.reply.unavailable or m.replied is None:
            continue
        for team, why in m.reply.unavailable.items():
            windows = rig.all_down(team) if team in rig.replicas else []
            if any(
                start <= m.replied and end + UNAVAILABLE_SLACK_S >= m.sent for start, end in windows
            ):
                excused += 1
            else:
                wrong += 1
                examples.append(f"{m.key}: {team} unavailable ({why})")
    return wrong, excused, examples


def missed_tools(messages: list[Message]) -> tuple[int, int, list[str]]:
    """Replies that did not call the tool their message asked for: (without a team
    reported unavailable, with one)."""
    silent = explained = 0
    examples = []
    for m in messages:
        reply = m.reply
        if reply is None or reply.interrupted:
            continue
        if EXPECTED_TOOL[m.kind] in {call.name for call in reply.tools}:
            continue
        if reply.unavailable:
            explained += 1
        else:
            silent += 1
            examples.append(f"{m.key}: {m.text!r} called {[c.name for c in reply.tools]}")
    return silent, explained, examples


def _stats(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_s": round(percentile(values, 50), 2),
        "p95_s": round(percentile(values, 95), 2),
        "max_s": round(max(values), 2),
    }


def figures(
    config: SoakConfig,
    rig: Rig,
    messages: list[Message],
    faults: list[Fault],
    findings: Findings,
    effects: dict[str, int],
    sessions_opened: int,
    wall_s: float,
) -> dict[str, Any]:
    replied = [m for m in messages if m.reply is not None and m.replied is not None]
    latencies = [m.replied - m.sent for m in replied if m.replied is not None]
    recovery: dict[str, dict[str, Any]] = {}
    for kind in FAULT_KINDS:
        of_kind = [f for f in faults if f.kind == kind]
        times = [t for f in of_kind if (t := recovery_s(f, messages)) is not None]
        recovery[kind] = {**_stats(times), "no_turn_after": len(of_kind) - len(times)}
    wrong, excused, examples = unavailable_while_alive(rig, messages)
    silent, explained, missed = missed_tools(messages)
    lost = findings.lost + findings.missing_effects
    duplicated = findings.duplicated + findings.unwanted
    return {
        "seed": config.seed,
        "minutes": config.minutes,
        "sessions": config.sessions,
        "sessions_opened": sessions_opened,
        "replicas": config.replicas,
        "messages": len(messages),
        "turns": len(replied),
        "turns_ok": sum(1 for m in replied if m.reply and m.reply.ok),
        "turns_interrupted": sum(1 for m in replied if m.reply and m.reply.interrupted),
        "turns_by_kind": dict(Counter(m.kind for m in messages)),
        "messages_retried": sum(1 for m in messages if m.attempts > 1),
        "decisions": dict(Counter(m.decision for m in messages if m.decision)),
        "undone": sum(1 for m in messages if m.undone),
        "turn_latency": _stats(latencies),
        "faults": len(faults),
        "faults_by_kind": {kind: sum(1 for f in faults if f.kind == kind) for kind in FAULT_KINDS},
        "recovery": recovery,
        "lost": lost,
        "duplicated": duplicated,
        "stuck": findings.stuck,
        "unverified": findings.unverified,
        "side_effects_missing": findings.missing_effects,
        "side_effects_unwanted": findings.unwanted,
        **effects,
        "unavailable_while_alive": wrong,
        "unavailable_during_outage": excused,
        "unavailable_examples": examples[:10],
        "tool_missed": silent,
        "tool_missed_team_unavailable": explained,
        "tool_missed_examples": missed[:10],
        "histories_replayed": findings.replayed,
        "replay_failures": findings.replay_failures,
        "histories_open_not_replayed": findings.not_replayed,
        "problems": findings.problems[:50],
        "wall_s": round(wall_s, 1),
        "workdir": str(rig.workdir),
    }


def lines(data: dict[str, Any]) -> list[str]:
    """The figures as text, ending with the one final line."""
    out = [
        f"seed {data['seed']}, {data['minutes']} min, {data['sessions']} sessions at once "
        f"({data['sessions_opened']} opened), {data['replicas']} replicas per worker",
        f"turns {data['turns']} of {data['messages']} messages ({data['turns_ok']} ok, "
        f"{data['turns_interrupted']} interrupted), {data['messages_retried']} retried "
        f"with the same id; decisions {data['decisions']}, undone {data['undone']}",
        f"turn latency: {_fmt(data['turn_latency'])}",
        "faults by kind: " + ", ".join(f"{k} {v}" for k, v in data["faults_by_kind"].items()),
    ]
    for kind, stats in data["recovery"].items():
        extra = f", {stats['no_turn_after']} with no turn after" if stats["no_turn_after"] else ""
        out.append(f"recovery {kind}: {_fmt(stats)}{extra}")
    out += [
        f"side effects: {data['side_effects_expected']} expected, {data['jira_issues']} Jira "
        f"issues, {data['expense_records']} expense records; missing "
        f"{data['side_effects_missing']}, done although denied {data['side_effects_unwanted']}",
        f"team reported unavailable while its worker was alive: "
        f"{data['unavailable_while_alive']} (during an outage: "
        f"{data['unavailable_during_outage']})",
        f"turns without their tool: {data['tool_missed']} (with a team reported "
        f"unavailable: {data['tool_missed_team_unavailable']})",
        f"replied messages in sessions whose history could not be read: {data['unverified']}",
        f"histories replayed {data['histories_replayed']}, failures {data['replay_failures']}, "
        f"open (not replayed) {data['histories_open_not_replayed']}",
        *(f"problem: {p}" for p in data["problems"][:20]),
        *(f"unavailable: {e}" for e in data["unavailable_examples"]),
        *(f"without its tool: {e}" for e in data["tool_missed_examples"]),
        f"logs and database: {data['workdir']}",
        f"soak: sessions {data['sessions']}, turns {data['turns']}, faults {data['faults']}, "
        f"lost {data['lost']}, duplicated {data['duplicated']}, stuck {data['stuck']}",
    ]
    return out


def _fmt(stats: dict[str, Any]) -> str:
    if not stats.get("n"):
        return "no samples"
    return (
        f"p50 {stats['p50_s']} s, p95 {stats['p95_s']} s, max {stats['max_s']} s (n={stats['n']})"
    )


def failed(data: dict[str, Any]) -> bool:
    return bool(
        data["lost"]
        or data["duplicated"]
        or data["stuck"]
        or data["unverified"]
        or data["replay_failures"]
    )
