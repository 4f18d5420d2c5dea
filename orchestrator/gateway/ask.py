"""The mesh's agent as one MCP tool, ``ask``: a whole question, one turn of a
chat session.

Each MCP connection (an HTTP session, or a stdio process) talks to one chat
session, which belongs to the MCP user, so the conversation carries on from
call to call and shows in the web chat, where the user approves the calls
that need it. A request without a connection (the current protocol's
stateless HTTP) gets a session of its own, ended after its turn. Everything goes through the one
:class:`~orchestrator.session_client.SessionClient`.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.contract import MAX_MESSAGE_CHARS, SessionError
from orchestrator.session_client import SessionClient

NAME = "ask"
TURN_TIMEOUT_S = 600.0


class AskInput(BaseModel):
    """Ask the mesh's agent a question in plain words. It answers from every team's
    tools, remembers the earlier questions of this connection, and says which tools it
    used. Calls that need a person's approval wait for it in the web chat."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        min_length=1, max_length=MAX_MESSAGE_CHARS, description="The question or request."
    )


class AskOutput(BaseModel):
    reply: str = Field(description="The agent's answer.")
    ok: bool = Field(description="False when the agent could not finish.")
    session: str = Field(description="The chat session the question went to.")
    turn: int = Field(description="The turn of that session.")
    tools: list[str] = Field(description="The tools the agent called, in order.")


def tool() -> types.Tool:
    schema = AskInput.model_json_schema()
    schema.pop("title", None)
    return types.Tool(
        name=NAME,
        title="Ask the mesh's agent",
        description=" ".join((AskInput.__doc__ or "").split()),
        input_schema=schema,
        output_schema=AskOutput.model_json_schema(),
        annotations=types.ToolAnnotations(
            title="Ask the mesh's agent", read_only_hint=False, open_world_hint=True
        ),
    )


async def ask(
    sessions: SessionClient,
    user: str,
    connection: str | None,
    arguments: dict[str, Any],
    key: str,
) -> AskOutput | str:
    """The agent's answer, or why there is none (bad input, a refused message).

    Without a ``connection`` the question gets a session of its own, ended
    after its turn: nothing would ever continue it."""
    try:
        question = AskInput.model_validate(arguments).question
    except ValueError as err:
        return f"invalid arguments: {err}"
    try:
        session = await sessions.open(owner=user, key=f"mcp-{connection or key}")
        try:
            reply = await session.send(question, TURN_TIMEOUT_S, key=key)
        finally:
            if connection is None:
                await session.end(key=f"{key}-end")
    except SessionError as err:
        return str(err)
    return AskOutput(
        reply=reply.text,
        ok=reply.ok,
        session=session.id,
        turn=reply.turn,
        tools=[call.name for call in reply.tools],
    )
