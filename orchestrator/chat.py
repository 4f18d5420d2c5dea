"""Terminal chat with the mesh's agent.

Each message is a ``send_message`` Update of a ChatSession workflow in the
orchestrator's namespace; the reply shows which tools ran and where.

    python -m orchestrator.chat                       # interactive
    python -m orchestrator.chat --message "What is 15 * 23?"
    python -m orchestrator.chat --session my-chat     # resume a session

The model is the orchestrator worker's ``LLM_MODEL``: ``offline`` (default) is
a deterministic keyword router over the tools, not a language model; set a
LiteLLM model string and its provider key on that worker for a real model.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from orchestrator.session_types import (
    DEFAULT_MODEL,
    ChatReply,
    ChatRequest,
    SessionConfig,
    SessionState,
)
from workers._run import exit_now
from workers.mesh import Mesh, MeshError, connect, load_mesh

WORKFLOW_TYPE = "ChatSession"
SESSION_PREFIX = "chat-"

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


class ChatError(Exception):
    """Something the user should read, then the command exits non-zero."""


def session_workflow_id(session: str) -> str:
    return session if session.startswith(SESSION_PREFIX) else f"{SESSION_PREFIX}{session}"


async def open_session(
    client: Client, mesh: Mesh, session: str, model: str = DEFAULT_MODEL
) -> WorkflowHandle:
    """Start the session's workflow, or attach to it when it is already running."""
    state = SessionState(config=SessionConfig(endpoints=mesh.endpoints(), model=model))
    workflow_id = session_workflow_id(session)
    try:
        return await client.start_workflow(
            WORKFLOW_TYPE,
            state,
            id=workflow_id,
            task_queue=mesh.orchestrator.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # An ended session's id is never silently reused for a new, empty one.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        raise ChatError(f"session {workflow_id} has ended; start a new one") from None


async def send(handle: WorkflowHandle, text: str, timeout_s: float) -> ChatReply:
    try:
        return await asyncio.wait_for(
            handle.execute_update("send_message", ChatRequest(text=text), result_type=ChatReply),
            timeout_s,
        )
    except TimeoutError:
        raise ChatError(
            f"no reply within {timeout_s:.0f} s: is the orchestrator worker running? "
            "(scripts/demo starts it)"
        ) from None
    except WorkflowUpdateFailedError as err:
        raise ChatError(f"message rejected: {_failure_message(err)}") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ChatError(f"session {handle.id} has ended or does not exist") from None
        raise


def render(reply: ChatReply) -> None:
    style = "" if reply.ok else "yellow"
    console.print(
        f"[bold cyan]agent[/]: [{style}]{escape(reply.text)}[/]"
        if style
        else f"[bold cyan]agent[/]: {escape(reply.text)}"
    )
    if reply.tools:
        parts = []
        for call in reply.tools:
            mark = "ok" if call.ok else "error"
            parts.append(f"{call.name} [{call.location}, {call.duration_ms:.0f} ms, {mark}]")
        console.print(f"[dim]tools: {escape(' · '.join(parts))}[/]")


async def run_chat(
    mesh: Mesh, message: str | None, session: str | None, model: str, timeout_s: float
) -> int:
    client = await connect(mesh, mesh.orchestrator, data_converter=pydantic_data_converter)
    one_shot = message is not None
    session_id = session or uuid.uuid4().hex[:12]
    handle = await open_session(client, mesh, session_id, model)
    if one_shot:
        assert message is not None
        try:
            reply = await send(handle, message, timeout_s)
        finally:
            if session is None:
                # A one-shot session has nothing to resume: close it.
                await handle.execute_update("end_chat", result_type=str)
        render(reply)
        return 0 if reply.ok else 1
    console.print(
        f"[dim]session {escape(handle.id)} in namespace {escape(mesh.orchestrator.namespace)} · "
        "/history, /end to close the session, Ctrl-D to leave it open[/]"
    )
    while True:
        try:
            text = await asyncio.to_thread(console.input, "[bold green]you[/]: ")
        except (EOFError, KeyboardInterrupt):
            console.print(f"\n[dim]left session open: resume with --session {escape(handle.id)}[/]")
            return 0
        command = text.strip()
        if not command:
            continue
        if command in ("/end", "/quit", "/exit"):
            farewell = await handle.execute_update("end_chat", result_type=str)
            console.print(f"[dim]{escape(farewell)}[/]")
            return 0
        if command == "/history":
            turns = await handle.query("history", result_type=list)
            for turn in turns:
                console.print(
                    f"[dim]{turn['turn']}. you: {escape(turn['user'])}\n   agent: {escape(turn['reply'])}[/]"
                )
            continue
        try:
            render(await send(handle, text, timeout_s))
        except ChatError as err:
            errors.print(f"[red]{escape(str(err))}[/]")


def _failure_message(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    return getattr(cause, "message", None) or str(cause) or str(err)


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Send one message, print the reply, exit.")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Session id to start or resume.")
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            help="Model for a new session: 'default' (the worker's LLM_MODEL), 'offline' "
            "(deterministic keyword router, no key) or a LiteLLM model string."
        ),
    ] = DEFAULT_MODEL,
    mesh_file: Annotated[
        Path | None, typer.Option("--mesh", help="Mesh file (default: MESH_FILE or ./mesh.toml).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for one reply.")] = 180.0,
) -> None:
    """Chat with the mesh's agent, interactively or one message at a time.

    The model is the orchestrator worker's LLM_MODEL. The default, 'offline',
    is a deterministic keyword router over the tools, not a language model: it
    answers arithmetic, weather in a city, this host's IP, Jira metrics for a
    project, a stock price and ROI from principal/rate/years (several in one
    message), and lists what it can do otherwise. Set LLM_MODEL to a LiteLLM
    model string (and the provider's key) on the orchestrator worker for a
    real model.
    """
    code = 1
    try:
        mesh = load_mesh(mesh_file)
        code = asyncio.run(run_chat(mesh, message, session, model, timeout))
    except (ChatError, MeshError) as err:
        errors.print(f"[red]error: {escape(str(err))}[/]")
    except RPCError as err:
        errors.print(f"[red]error: Temporal refused the request: {escape(err.message)}[/]")
    exit_now(code)


if __name__ == "__main__":
    app()
