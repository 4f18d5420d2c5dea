"""What goes in and out of a chat session workflow."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

DEFAULT_MODEL = "default"
"""Model name the session asks for when none is chosen: the orchestrator
worker maps it to its ``LLM_MODEL``, so provider choice and keys stay in the
worker's environment and out of workflow history."""

ToolState = Literal["running", "awaiting_approval", "ok", "error", "denied", "expired"]
SessionActivity = Literal["idle", "thinking", "running_tools", "awaiting_approval", "ended"]


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
    approval_timeout_s: float = Field(
        default=300.0, gt=0, description="How long a tool call waits for the user's approval."
    )
    context_budget_tokens: int = Field(
        default=12_000,
        ge=500,
        description="Estimated tokens of conversation sent to the model; older turns beyond "
        "it are dropped, whole, before each turn.",
    )
    max_tool_output_chars: int = Field(
        default=4_000,
        ge=200,
        description="Longer tool outputs are cut, with a note, for the model.",
    )
    max_run_history_bytes: int = Field(
        default=2_000_000,
        ge=50_000,
        description="A run whose history grows past this continues as new between turns "
        "(Temporal's own suggestion also triggers it).",
    )
    kept_turns: int = Field(
        default=100, ge=1, description="Turns kept for the history query and usage figures."
    )


class TokenUsage(BaseModel):
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def plus(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class ToolCall(BaseModel):
    """One tool call made while answering a message."""

    name: str
    location: str = Field(description="'local', or the team whose namespace runs it.")
    call_id: str = ""
    arguments: str = Field(default="", description="The model's arguments, cut to 500 characters.")
    state: ToolState = "ok"
    ok: bool = True
    duration_ms: float = 0.0
    error: str | None = None


class PendingApproval(BaseModel):
    """A tool call waiting for the user's decision."""

    call_id: str
    tool: str
    location: str
    arguments: dict[str, Any]
    reason: str
    expires_at: datetime


class ApprovalDecision(BaseModel):
    call_id: str = Field(default="", description="Which call; empty means the only pending one.")
    approve: bool
    note: str = Field(default="", description="Why, passed to the model on a denial.")


class ChatRequest(BaseModel):
    text: str


class ChatReply(BaseModel):
    turn: int = Field(description="1 for the first message of the session.")
    text: str
    ok: bool = Field(description="False when the agent could not finish the turn.")
    interrupted: bool = False
    tools: list[ToolCall] = Field(default_factory=list)
    usage: TokenUsage = Field(default_factory=TokenUsage)


class Turn(BaseModel):
    turn: int
    user: str
    reply: str
    ok: bool
    interrupted: bool = False
    tools: list[ToolCall] = Field(default_factory=list)
    usage: TokenUsage = Field(default_factory=TokenUsage)


class SessionState(BaseModel):
    """Everything a session carries, including across continue-as-new."""

    config: SessionConfig
    items: list[dict[str, Any]] = Field(
        default_factory=list, description="The conversation as model input items."
    )
    turns: list[Turn] = Field(default_factory=list, description="The most recent turns.")
    turn_count: int = 0
    usage_total: TokenUsage = Field(default_factory=TokenUsage)
    tools_by_location: dict[str, int] = Field(default_factory=dict)
    compacted_turns: int = Field(default=0, description="Turns dropped from the model's view.")
    runs: int = Field(default=1, description="Runs of this session so far (continue-as-new).")


class SessionStatus(BaseModel):
    """The session as the status query reports it."""

    state: SessionActivity
    turn: int = Field(description="The turn in progress, or the last one.")
    tools: list[ToolCall] = Field(description="Tool calls of that turn so far.")
    pending_approvals: list[PendingApproval]
    usage_last_turn: TokenUsage
    usage_total: TokenUsage
    usage_by_turn: dict[int, TokenUsage]
    tools_by_location: dict[str, int]
    compacted_turns: int
    runs: int
    history_events: int
    history_bytes: int


class SessionSummary(BaseModel):
    turns: int
    status: Literal["ended"] = "ended"
