"""What the session tells a model beside the prompt: the tools' hints and the
teams that are unavailable, as data.

The offline model does not understand language, so it cannot read the
instructions; the session passes the same facts in the Agent's model settings
(``extra_args``, which the Temporal plugin carries into the model activity,
streamed or local). Only the offline model reads them: the provider takes
them out before any other model is called, so no provider receives an
argument it does not know.

Imported by workflow code: no I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

from agents import ModelSettings
from pydantic import BaseModel, Field

from meshkit.toolkit.hints import ToolHints

KEY = "mesh_hints"
"""The key of :class:`ModelHints` in ``ModelSettings.extra_args``."""


class ModelHints(BaseModel):
    """The facts a model that cannot read the instructions needs for a turn."""

    tools: dict[str, ToolHints] = Field(
        default_factory=dict, description="Hints per tool, by the name the model sees."
    )
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="Teams left out of the turn, with the reason."
    )


def dumped_tools(tools: dict[str, ToolHints]) -> str:
    """The tools' hints as :func:`with_hints` carries them, JSON text: a session
    dumps them once per set of tools, not at every turn."""
    return json.dumps(
        {
            name: hints.model_dump(mode="json", exclude_defaults=True)
            for name, hints in tools.items()
        },
        separators=(",", ":"),
    )


def with_hints(settings: ModelSettings, hints: ModelHints) -> ModelSettings:
    """``settings`` carrying ``hints``."""
    return with_dumped_hints(settings, dumped_tools(hints.tools), hints.unavailable)


def with_dumped_hints(
    settings: ModelSettings, tools: str, unavailable: dict[str, str]
) -> ModelSettings:
    """``settings`` carrying the hints: the tools' (JSON text from
    :func:`dumped_tools`) and the unavailable teams, as ``ModelHints`` reads them.

    They ride as one JSON string, not as nested dicts: the Agents SDK walks and
    copies an agent's model settings at every run (its agent identity map)
    and the plugin converts them at every model call, and a string is the
    cheapest value for both (about 4% of the orchestrator's CPU at 100 sessions
    as dicts)."""
    parts = []
    if tools and tools != "{}":
        parts.append(f'"tools":{tools}')
    if unavailable:
        parts.append(f'"unavailable":{json.dumps(unavailable, separators=(",", ":"))}')
    if not parts:
        return settings
    data = "{" + ",".join(parts) + "}"
    return dataclasses.replace(settings, extra_args={**(settings.extra_args or {}), KEY: data})


def split_hints(settings: ModelSettings | Any) -> tuple[Any, ModelHints]:
    """``settings`` without the hints, and the hints (empty when there are none)."""
    extra = getattr(settings, "extra_args", None)
    if not isinstance(settings, ModelSettings) or not extra or KEY not in extra:
        return settings, ModelHints()
    rest = {k: v for k, v in extra.items() if k != KEY}
    carried = extra[KEY]
    hints = (
        _parsed(carried)
        if isinstance(carried, str | bytes)
        else ModelHints.model_validate(carried)  # a settings object made before they were text
    )
    return dataclasses.replace(settings, extra_args=rest or None), hints


@functools.lru_cache(maxsize=256)
def _parsed(carried: str | bytes) -> ModelHints:
    """Hints read from their text, once per text: a session's are the same
    at every model call until its tools or unavailable teams change. Callers
    only read them."""
    return ModelHints.model_validate_json(carried)
