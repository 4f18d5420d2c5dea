"""What goes in and out of a chat session workflow."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

DEFAULT_MODEL = "default"
"""Model name the session asks for when none is chosen: the orchestrator
worker maps it to its ``LLM_MODEL``, so provider choice and keys stay in the
worker's environment and out of workflow history."""


class SessionConfig(BaseModel):
    """How one chat session runs; fixed when the session starts."""

    endpoints: dict[str, str] = Field(
        description="Nexus endpoint per team, as declared in the mesh file."
    )
    model: str = Field(
        default=DEFAULT_MODEL,
        description="Model name handed to the worker's model provider; 'default' means the "
        "worker's LLM_MODEL.",
    )
    max_agent_turns: int = Field(
        default=8, ge=1, le=50, description="Model calls allowed for one user message."
    )
    max_message_chars: int = Field(
        default=8_000, ge=1, description="Longest user message accepted."
    )
    nexus_timeout_s: float = Field(
        default=120.0, gt=0, description="Schedule-to-close timeout of every Nexus tool call."
    )
    activity_timeout_s: float = Field(
        default=60.0, gt=0, description="Schedule-to-close timeout of every local tool call."
    )


class ToolCall(BaseModel):
    """One tool call made while answering a message."""

    name: str
    location: str = Field(description="'local', or the team whose namespace ran it.")
    ok: bool
    duration_ms: float
    error: str | None = None


class ChatRequest(BaseModel):
    text: str


class ChatReply(BaseModel):
    turn: int = Field(description="1 for the first message of the session.")
    text: str
    ok: bool = Field(description="False when the agent could not finish the turn.")
    tools: list[ToolCall] = Field(default_factory=list)


class Turn(BaseModel):
    turn: int
    user: str
    reply: str
    ok: bool
    tools: list[ToolCall] = Field(default_factory=list)


class SessionState(BaseModel):
    """Everything a session carries, including across continue-as-new."""

    config: SessionConfig
    items: list[dict[str, Any]] = Field(
        default_factory=list, description="The conversation as model input items."
    )
    turns: list[Turn] = Field(default_factory=list)


class SessionSummary(BaseModel):
    turns: int
    status: Literal["ended"] = "ended"
