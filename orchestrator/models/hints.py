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


def dumped_tools(tools: dict[str, ToolHints]) -> dict[str, Any]:
    """The tools' hints as :func:`with_hints` carries them: a session dumps them
    once per set of tools, not at every turn."""
    return {
        name: hints.model_dump(mode="json", exclude_defaults=True) for name, hints in tools.items()
    }


def with_hints(settings: ModelSettings, hints: ModelHints) -> ModelSettings:
    """``settings`` carrying ``hints``."""
    return with_dumped_hints(settings, dumped_tools(hints.tools), hints.unavailable)


def with_dumped_hints(
    settings: ModelSettings, tools: dict[str, Any], unavailable: dict[str, str]
) -> ModelSettings:
    """``settings`` carrying the hints: the tools' (from :func:`dumped_tools`) and
    the unavailable teams, as ``ModelHints`` reads them back."""
    data: dict[str, Any] = {}
    if tools:
        data["tools"] = tools
    if unavailable:
        data["unavailable"] = dict(unavailable)
    if not data:
        return settings
    return dataclasses.replace(settings, extra_args={**(settings.extra_args or {}), KEY: data})


def split_hints(settings: ModelSettings | Any) -> tuple[Any, ModelHints]:
    """``settings`` without the hints, and the hints (empty when there are none)."""
    extra = getattr(settings, "extra_args", None)
    if not isinstance(settings, ModelSettings) or not extra or KEY not in extra:
        return settings, ModelHints()
    rest = {k: v for k, v in extra.items() if k != KEY}
    return (
        dataclasses.replace(settings, extra_args=rest or None),
        ModelHints.model_validate(extra[KEY]),
    )
