"""The session's contract: what every door into a chat session speaks.

The orchestrator's counterpart of a team's ``services/<team>/contract.py``:
the ChatSession workflow's type name, its Update, Query and stream names, the
types that go in and out, the rules a message must follow, and the typed
errors a refusal becomes. The workflow and every client (the terminal chat,
the HTTP API, the benchmark, the tests) use these names; nothing else spells
them out. It imports no workflow, worker or client code.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, field_validator
from temporalio.exceptions import ApplicationError

if TYPE_CHECKING:
    from meshkit.mesh import Mesh

# --- names ------------------------------------------------------------------------------

WORKFLOW_TYPE = "ChatSession"
SESSION_PREFIX = "chat-"
"""Every session's workflow id starts with it."""

# Updates
SEND_MESSAGE = "send_message"
DECIDE = "decide"
INTERRUPT = "interrupt"
LIMIT_TOOLS = "limit_tools"
UNDO = "undo"
COMPACT = "compact_now"
END = "end_chat"
# Queries
STATUS = "status"
HISTORY = "history"
MESSAGE_PROGRESS = "message_progress"
STREAM_OFFSET_QUERY = "__temporal_workflow_stream_offset"
"""The session's event stream's next offset (a query of temporalio.contrib.workflow_streams)."""

DEFAULT_MODEL = "default"
"""Model name the session asks for when none is chosen: the orchestrator
worker maps it to its ``LLM_MODEL``, so provider choice and keys stay in the
worker's environment and out of workflow history."""

ToolState = Literal["running", "awaiting_approval", "ok", "error", "denied", "expired"]
EventKind = Literal[
    "turn_started",
    "tool_started",
    "tool_finished",
    "approval_requested",
    "approval_decided",
    "text_delta",
    "reply",
]
EVENTS_TOPIC = "events"
"""Topic of the session's workflow stream that carries :class:`SessionEvent`."""
MODEL_TOPIC = "model"
"""Topic the model activity publishes the model's raw stream events to."""
SessionActivity = Literal["idle", "thinking", "running_tools", "awaiting_approval", "ended"]


class TeamRoute(BaseModel):
    """How the session reaches one team: its Nexus endpoint and service."""

    endpoint: str
    service: str


class SessionConfig(BaseModel):
    """How one chat session runs; fixed when the session starts (except ``tools``,
    which the ``limit_tools`` Update may change)."""

    teams: dict[str, TeamRoute] = Field(
        description="The teams whose tools the session may use, as the mesh file declares "
        "them when the session starts."
    )
    tools: list[str] | None = Field(
        default=None,
        description="Limit the session to these teams and tools (team names, tool names, or "
        "'local' for the orchestrator's own tools); None means every tool. Checked against "
        "the catalogs at the first turn.",
    )
    catalog_ttl_s: float = Field(
        default=30.0,
        ge=0,
        description="A team's catalog is fetched again at a turn's start when older than this.",
    )
    catalog_timeout_s: float = Field(
        default=3.0,
        gt=0,
        description="How long a catalog fetch may take. A team that does not answer in time "
        "is unavailable for that turn when no catalog of it is cached; otherwise its cached "
        "catalog is still offered (see catalog_misses). A team the session has never heard "
        "from is asked up to catalog_misses times in a row.",
    )
    catalog_wait_s: float = Field(
        default=0.5,
        ge=0,
        description="How long a turn waits for the refresh of a team whose cached catalog "
        "is offered before it goes on with the cache (the answer is used from the next "
        "turn on). 0: never waits.",
    )
    catalog_refresh_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a refresh of a team whose cached catalog is offered may take; "
        "it runs beside the turns, which do not wait for it.",
    )
    catalog_misses: int = Field(
        default=2,
        ge=1,
        description="A team whose catalog fetches time out this many times in a row is "
        "unavailable; until then its cached catalog is offered. 1: left out at the first "
        "timeout.",
    )
    catalog_retry_s: float = Field(
        default=10.0,
        ge=0,
        description="After a failed fetch, the team stays unavailable (without asking again) "
        "for this long.",
    )
    model: str = Field(
        default=DEFAULT_MODEL,
        description="Model name handed to the worker's model provider; 'default' means the "
        "worker's LLM_MODEL.",
    )
    stream: bool | None = Field(
        default=None,
        description="Stream the model's text to the session's clients as it is written. None "
        "lets the orchestrator worker decide (LLM_STREAM: by default, models that stream "
        "natively do and models that answer in one piece do not); True streams even a "
        "one-piece answer, in pieces; False never streams, which makes turns cheapest.",
    )
    model_plan_ttl_s: float = Field(
        default=300.0,
        ge=0,
        description="How the worker calls the model (streamed or not, local activity or not) "
        "is asked again at a turn's start when older than this.",
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
    retained_events: int = Field(
        default=1_000,
        ge=10,
        description="Events of the session's stream carried into its next run; a client "
        "resuming from an older offset starts at the oldest one kept.",
    )

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_tool_names(value)

    @classmethod
    def for_mesh(cls, mesh: Mesh, **settings: Any) -> SessionConfig:
        """A session of every team in ``mesh``."""
        teams = {
            name: TeamRoute(endpoint=team.endpoint, service=team.service)
            for name, team in mesh.teams.items()
        }
        return cls(teams=teams, **settings)


def check_tool_names(names: list[str]) -> list[str]:
    """Clean a tool limit: names stripped, duplicates dropped; empty or odd names refused."""
    cleaned: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name or not all(c.isalnum() or c in "_-" for c in name) or len(name) > 64:
            raise ValueError(f"invalid tool or team name {raw!r}")
        if name not in cleaned:
            cleaned.append(name)
    if not cleaned:
        raise ValueError("name at least one team or tool")
    return cleaned


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
    started_at: datetime | None = Field(default=None, description="When the call started.")


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
    by: str = Field(
        default="user",
        max_length=200,
        description="Who decided; the owning team keeps it with the call for audit.",
    )


class ChatRequest(BaseModel):
    text: str


class ChatReply(BaseModel):
    turn: int = Field(description="1 for the first message of the session.")
    text: str
    ok: bool = Field(description="False when the agent could not finish the turn.")
    interrupted: bool = False
    tools: list[ToolCall] = Field(default_factory=list)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    unavailable: dict[str, str] = Field(
        default_factory=dict,
        description="Teams left out of this turn because they did not answer, with the reason.",
    )


class Turn(BaseModel):
    turn: int
    user: str
    reply: str
    ok: bool
    interrupted: bool = False
    tools: list[ToolCall] = Field(default_factory=list)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    unavailable: dict[str, str] = Field(default_factory=dict)

    def as_reply(self) -> ChatReply:
        """The reply this turn gave."""
        return ChatReply(
            turn=self.turn,
            text=self.reply,
            ok=self.ok,
            interrupted=self.interrupted,
            tools=self.tools,
            usage=self.usage,
            unavailable=self.unavailable,
        )


class SessionEvent(BaseModel):
    """One thing that happened in a turn, pushed to clients as it happens.

    Flat, so that a client in any language reads it without a schema; which
    fields are set depends on ``kind``.
    """

    kind: EventKind
    turn: int
    offset: int = Field(default=-1, description="Position in the session's stream.")
    at: datetime | None = Field(
        default=None, description="When it happened in the workflow (its task's time)."
    )
    text: str | None = Field(
        default=None, description="turn_started: the message; reply: the reply."
    )
    delta: str | None = Field(default=None, description="text_delta: the next piece of text.")
    call_id: str | None = None
    name: str | None = Field(default=None, description="The tool's name.")
    location: str | None = Field(default=None, description="'local', or the team.")
    arguments: Any = Field(default=None, description="The tool call's arguments.")
    state: str | None = None
    ok: bool | None = None
    interrupted: bool | None = None
    duration_ms: float | None = None
    error: str | None = None
    reason: str | None = Field(default=None, description="approval_requested: why.")
    expires_at: datetime | None = None
    approve: bool | None = None
    by: str | None = Field(default=None, description="approval_decided: who decided.")
    usage: TokenUsage | None = None
    unavailable: dict[str, str] | None = None


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
    teams: dict[str, str] = Field(
        default_factory=dict,
        description="Each team's state: 'available', 'available from its cached catalog: "
        "<why the last fetch failed>', 'unavailable: <reason>' or 'not fetched'.",
    )
    tool_limit: list[str] | None = None
    compacted_turns: int
    runs: int
    history_events: int
    history_bytes: int


class SessionResult(BaseModel):
    """What the workflow returns when the session ends."""

    turns: int
    status: Literal["ended"] = "ended"


class SessionSummary(BaseModel):
    """One open session, as a listing shows it."""

    id: str
    started: str = Field(description="When the session started (ISO 8601, UTC).")


class MessageProgress(BaseModel):
    """Where the turn of one message is: the answer of the message-progress query."""

    turn: int | None = Field(default=None, description="Its turn; None while it waits its turn.")
    offset: int | None = Field(
        default=None,
        description="Offset of its turn_started event in the session's stream; None while "
        "it waits its turn.",
    )
    done: bool = Field(default=False, description="The turn has replied.")


# --- the message rules -------------------------------------------------------------------

# C0/C1 controls other than line breaks and tabs, and Unicode bidirectional
# overrides, which can make text read differently than sent.
CONTROL_CHARACTERS = "".join(
    chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0),
                     *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)  # fmt: skip
_CONTROLS = frozenset(CONTROL_CHARACTERS)
MESSAGE_PATTERN = f"^[^{CONTROL_CHARACTERS}]*[^\\s{CONTROL_CHARACTERS}][^{CONTROL_CHARACTERS}]*$"
"""The rules below as a regular expression, for schemas (a client and a fuzzer read them)."""
MAX_MESSAGE_CHARS = SessionConfig.model_fields["max_message_chars"].default


def message_problem(text: str, limit: int = MAX_MESSAGE_CHARS) -> str | None:
    """Why a session refuses ``text``, or None when it accepts it."""
    stripped = text.strip()
    if not stripped:
        return "the message is empty"
    if len(stripped) > limit:
        return f"the message has {len(stripped)} characters; the limit is {limit}"
    controls = sorted({f"U+{ord(c):04X}" for c in stripped if c in _CONTROLS})
    if controls:
        return (
            f"the message contains control characters ({', '.join(controls[:5])}); send plain text"
        )
    return None


# --- errors ------------------------------------------------------------------------------


class SessionError(Exception):
    """A session refused a request, or cannot be reached; the message says why."""

    def failure(self) -> ApplicationError:
        """This refusal as the workflow raises it: final, typed by its class's name."""
        return ApplicationError(str(self), type=type(self).__name__, non_retryable=True)


class SessionNotFound(SessionError):
    """No such session, or not the caller's."""


class SessionEnded(SessionError):
    """The session has ended: start a new one."""


class NotAwaitingApproval(SessionError):
    """The call is not waiting for approval (decided, expired, or never asked)."""


class NoTurnInProgress(SessionError):
    """There is no turn to interrupt."""


class NothingToUndo(SessionError):
    """No turn is left to take back."""


class BadMessage(SessionError):
    """The message breaks the message rules."""


class BadDecision(SessionError):
    """The decision does not say which of several waiting calls it is for."""


class UnknownTool(SessionError):
    """A tool limit names a team or tool that does not exist, or an invalid name."""


class NoReply(SessionError):
    """No answer in time: the worker or the server is not reachable."""


ERRORS: dict[str, type[SessionError]] = {
    cls.__name__: cls
    for cls in (
        SessionNotFound,
        SessionEnded,
        NotAwaitingApproval,
        NoTurnInProgress,
        NothingToUndo,
        BadMessage,
        BadDecision,
        UnknownTool,
        NoReply,
    )
}
"""Each typed error by the ``ApplicationError.type`` the workflow gives it."""


def error_from(failure: BaseException | None) -> SessionError:
    """The typed error a workflow's refusal stands for (its ``ApplicationError.type``)."""
    message = getattr(failure, "message", None) or str(failure or "refused")
    kind = failure.type if isinstance(failure, ApplicationError) else None
    return ERRORS.get(kind or "", SessionError)(message)
