"""What a session workflow carries: its state across runs, and how its model is called.

Internal to the orchestrator (the workflow and its worker); every door into a
session speaks :mod:`orchestrator.contract` instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio.contrib.workflow_streams import WorkflowStreamState

from meshkit.toolkit.catalog import ToolCatalog
from orchestrator.contract import SessionConfig, TokenUsage, Turn

ANSWERED_MESSAGES_KEPT = 200
"""Messages whose turn a repeat of them is answered from, across runs."""


class CatalogState(BaseModel):
    """What the session knows of one team's catalog."""

    catalog: ToolCatalog | None = None
    fetched_at: datetime | None = Field(default=None, description="Last successful fetch.")
    failed_at: datetime | None = Field(default=None, description="Last failed fetch.")
    error: str | None = Field(default=None, description="Why the last fetch failed.")
    stale: bool = Field(
        default=False, description="A call found the catalog out of date: fetch it again."
    )
    misses: int = Field(default=0, description="Failed fetches since the last success.")
    serving_cached: bool = Field(
        default=False,
        description="The last fetches timed out, fewer times in a row than the session's "
        "catalog_misses: the cached catalog is still offered.",
    )

    @property
    def available(self) -> bool:
        """Whether the team's tools are offered: it answered the last time it was
        asked, or it was only slow and its cached catalog is still served."""
        if self.failed_at is None:
            return self.catalog is not None
        if self.fetched_at is not None and self.fetched_at > self.failed_at:
            return True
        return self.serving_cached and self.catalog is not None


def team_status(known: CatalogState | None) -> str:
    """A team as a session's status reports it."""
    if known is None:
        return "not fetched"
    if known.available and known.serving_cached:
        return f"available from its cached catalog: {known.error}"
    if known.available:
        return "available"
    return f"unavailable: {known.error}"


class ModelPlan(BaseModel):
    """How the session's model calls run, as the orchestrator worker decided."""

    stream: bool = Field(description="Streamed: a regular activity publishing stream events.")
    local_activity: bool = Field(
        description="Not streamed, as a local activity (False: as a regular activity)."
    )
    hints: bool = Field(
        default=True,
        description="The model reads the tools' hints and the unavailable teams as data "
        "(the offline model does); plans made before this field send them.",
    )
    asked_at: datetime | None = None


class ModelPlanRequest(BaseModel):
    model: str
    stream: bool | None = None


class AnsweredMessage(BaseModel):
    """Which turn answered a message, and where that turn's events begin in the stream."""

    turn: int
    offset: int


class SessionState(BaseModel):
    """Everything a session carries, including across continue-as-new."""

    config: SessionConfig
    owner: str = Field(default="", description="Who the session belongs to (API user).")
    stream: WorkflowStreamState | None = Field(
        default=None, description="The session's event stream, carried across runs."
    )
    items: list[dict[str, Any]] = Field(
        default_factory=list, description="The conversation as model input items."
    )
    turns: list[Turn] = Field(default_factory=list, description="The most recent turns.")
    turn_count: int = 0
    usage_total: TokenUsage = Field(default_factory=TokenUsage)
    tools_by_location: dict[str, int] = Field(default_factory=dict)
    compacted_turns: int = Field(default=0, description="Turns dropped from the model's view.")
    runs: int = Field(default=1, description="Runs of this session so far (continue-as-new).")
    catalogs: dict[str, CatalogState] = Field(
        default_factory=dict, description="Each team's catalog as last fetched."
    )
    model_plan: ModelPlan | None = Field(
        default=None, description="How model calls run, as last asked of the worker."
    )
    answered: dict[str, AnsweredMessage] = Field(
        default_factory=dict,
        description="The latest messages' Update ids and the turns that answered them, "
        f"oldest first (at most {ANSWERED_MESSAGES_KEPT}).",
    )
    done: dict[str, str] = Field(
        default_factory=dict,
        description="The latest decisions, interrupts, undos and compactions: their Update "
        f"ids and what they answered, oldest first (at most {ANSWERED_MESSAGES_KEPT}).",
    )
