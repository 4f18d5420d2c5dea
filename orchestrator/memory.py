"""Keeping the conversation the model sees within bounds.

Two rules, both deterministic (they run inside the workflow):

- a tool output longer than the session's limit is cut, with a note saying
  how much the model is not seeing;
- before each turn, the oldest turns are dropped, whole, until the estimated
  size fits the token budget. A turn starts at a user message and runs to the
  next, so every tool call keeps its output and no output loses its call. A
  note at the top tells the model how many turns it no longer sees.
"""

from __future__ import annotations

import json
from typing import Any

NOTE_PREFIX = "[conversation note]"
CHARS_PER_TOKEN = 4  # A rough, provider-independent estimate; only used for budgeting.


def truncate_output(output: str, limit: int) -> str:
    if len(output) <= limit:
        return output
    return (
        output[:limit]
        + f"\n[truncated: the tool returned {len(output)} characters; only the first {limit} "
        "are shown]"
    )


_JSON_TEXT = json.JSONEncoder(default=str)
"""``json.dumps(value, default=str)`` without building an encoder per call."""


def estimate_tokens(items: list[dict[str, Any]]) -> int:
    return sum(len(_JSON_TEXT.encode(item)) for item in items) // CHARS_PER_TOKEN


def compact(
    items: list[dict[str, Any]], budget_tokens: int, dropped_before: int
) -> tuple[list[dict[str, Any]], int]:
    """Items within ``budget_tokens``, and the total count of turns dropped so far.

    The most recent turn is always kept, even if alone it is over budget.
    """
    body = [item for item in items if not _is_note(item)]
    turns = _split_turns(body)
    # Each turn is measured once; dropping one subtracts its size.
    sizes = [estimate_tokens(turn) for turn in turns]
    total_tokens = sum(sizes)
    dropped = 0
    while len(turns) - dropped > 1 and total_tokens > budget_tokens:
        total_tokens -= sizes[dropped]
        dropped += 1
    turns = turns[dropped:]
    total = dropped_before + dropped
    kept = [item for turn in turns for item in turn]
    if total:
        kept.insert(
            0,
            {
                "role": "system",
                "content": f"{NOTE_PREFIX} {total} earlier turn(s) of this conversation were "
                "dropped to stay within the context budget; only later turns are shown.",
            },
        )
    return kept, total


def _is_note(item: dict[str, Any]) -> bool:
    content = item.get("content")
    return (
        item.get("role") == "system"
        and isinstance(content, str)
        and content.startswith(NOTE_PREFIX)
    )


def _split_turns(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    turns: list[list[dict[str, Any]]] = []
    for item in items:
        if item.get("role") == "user" or not turns:
            turns.append([item])
        else:
            turns[-1].append(item)
    return turns


def drop_last_turn(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """Items without the most recent turn (and its tool calls); whether there was one."""
    notes = [item for item in items if _is_note(item)]
    turns = _split_turns([item for item in items if not _is_note(item)])
    if not turns:
        return items, False
    return notes + [item for turn in turns[:-1] for item in turn], True
