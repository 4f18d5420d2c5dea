"""Terminal chat with the mesh's agent.

Each message is a ``send_message`` Update of a ChatSession workflow in the
orchestrator's namespace. While a turn runs the chat shows each tool call as
it starts and ends, asks you to approve calls that their team's policy
guards, and Ctrl-C interrupts the turn.

    python -m orchestrator.chat                       # interactive
    python -m orchestrator.chat --message "What is 15 * 23?"
    python -m orchestrator.chat --session my-chat     # start or resume a named session
    python -m orchestrator.chat --list                # open sessions
    python -m orchestrator.chat --end my-chat         # end one
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from temporalio.client import Plugin
from temporalio.service import RPCError

from meshkit import observability
from meshkit.mesh import MeshError, load_mesh, mesh_path
from meshkit.runtime import exit_now
from orchestrator.contract import (
    DEFAULT_MODEL,
    ApprovalDecision,
    ChatReply,
    PendingApproval,
    SessionError,
    SessionStatus,
    ToolCall,
)
from orchestrator.session import Session
from orchestrator.session_client import SessionClient
from orchestrator.session_watch import Approver

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

_MARKS = {
    "running": "→",
    "awaiting_approval": "?",
    "ok": "✓",
    "error": "✗",
    "denied": "✗",
    "expired": "✗",
}


def show_tool(call: ToolCall) -> None:
    mark = _MARKS.get(call.state, "·")
    where = f"[{call.location}]"
    if call.state == "running":
        line = f"{mark} {call.name} {where} {call.arguments}"
    elif call.state == "awaiting_approval":
        line = f"{mark} {call.name} {where} waiting for approval"
    else:
        detail = f": {call.error}" if call.error else ""
        line = f"{mark} {call.name} {where} {call.state}, {call.duration_ms:.0f} ms{detail}"
    console.print(f"[dim]  {escape(line)}[/]")


def render(reply: ChatReply, streamed: bool = False) -> None:
    """The reply (unless its text was already streamed), its tools and usage."""
    if streamed and reply.ok:
        console.print()  # ends the streamed line
    else:
        if streamed:
            console.print()
        body = escape(reply.text)
        console.print(
            f"[bold cyan]agent[/]: {body}"
            if reply.ok
            else f"[bold cyan]agent[/]: [yellow]{body}[/]"
        )
    if reply.tools:
        parts = [
            f"{call.name} [{call.location}, {call.duration_ms:.0f} ms, {call.state}]"
            for call in reply.tools
        ]
        console.print(f"[dim]tools: {escape(' · '.join(parts))}[/]")
    for team, why in reply.unavailable.items():
        console.print(f"[yellow]team {escape(team)} is unavailable: {escape(why)}[/]")
    if reply.usage.requests:
        u = reply.usage
        console.print(
            f"[dim]model: {u.requests} call(s), {u.input_tokens} tokens in, "
            f"{u.output_tokens} out[/]"
        )


def status_table(state: SessionStatus) -> Table:
    """The session's status as people read it."""
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("state", state.state)
    table.add_row("turn", str(state.turn))
    for call in state.tools:
        outcome = call.error or call.state
        table.add_row(
            "  tool", f"{call.name} [{call.location}] {outcome}, {call.duration_ms:.0f} ms"
        )
    for pending in state.pending_approvals:
        table.add_row("  waiting", escape(f"{pending.tool} [{pending.location}] for approval"))
    for team, availability in state.teams.items():
        table.add_row(f"team {team}", escape(availability))
    if state.tool_limit is not None:
        table.add_row("tool limit", ", ".join(state.tool_limit))
    u = state.usage_total
    table.add_row(
        "usage", f"{u.requests} model calls, {u.input_tokens} tokens in, {u.output_tokens} out"
    )
    calls = ", ".join(f"{where} {n}" for where, n in sorted(state.tools_by_location.items()))
    table.add_row("tool calls", calls or "none")
    table.add_row("compacted turns", str(state.compacted_turns))
    table.add_row(
        "runs",
        f"{state.runs} (this one: {state.history_events} events, {state.history_bytes / 1e3:.0f} KB)",
    )
    return table


class _Stdin:
    """Line input that the event loop can wait on and cancel.

    ``input()`` in a thread cannot be cancelled: an approval prompt left open
    by an interrupted turn would swallow the next line. This reads the file
    descriptor when the loop says it is readable, keeping partial lines.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._eof = False

    async def readline(self, prompt: str) -> str:
        console.print(prompt, end="")
        while b"\n" not in self._buffer and not self._eof:
            await self._readable()
        if b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            return line.decode(errors="replace")
        if self._buffer:
            line, self._buffer = self._buffer, b""
            return line.decode(errors="replace")
        raise EOFError

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        fd = sys.stdin.fileno()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, wake)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        chunk = os.read(fd, 65536)
        if chunk:
            self._buffer += chunk
        else:
            self._eof = True


stdin = _Stdin()


def approver_name() -> str:
    """Who answers approvals at this terminal: ``MESH_USER``, else the login name.

    The owning team keeps it with the approved call, for audit.
    """
    try:
        return os.environ.get("MESH_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "terminal user"


def approver_for(mode: str) -> Approver:
    """How pending approvals are answered: ask at the terminal, or a fixed answer."""
    who = approver_name()

    async def ask(pending: PendingApproval) -> ApprovalDecision:
        arguments = json.dumps(pending.arguments, ensure_ascii=False)
        console.print(
            f"[bold yellow]approval needed[/]: {escape(f'{pending.tool} [{pending.location}] {arguments}')}"
            f"\n  [dim]{escape(pending.reason.rstrip('.'))}; expires {pending.expires_at:%H:%M:%S} UTC[/]"
        )
        if mode == "approve":
            console.print("  [dim]approved (--approve)[/]")
            return ApprovalDecision(approve=True, by=f"{who} (--approve)")
        if mode == "deny" or not sys.stdin.isatty():
            console.print("  [dim]denied (no one at the terminal to approve; use --approve)[/]")
            return ApprovalDecision(approve=False, note="no approver was available", by=who)
        answer = await stdin.readline("  approve? [y/N] ")
        if answer.strip().lower() in ("y", "yes"):
            return ApprovalDecision(approve=True, by=who)
        note = await stdin.readline("  reason (optional): ")
        return ApprovalDecision(approve=False, note=note.strip(), by=who)

    return ask


async def send_interruptible(
    session: Session, text: str, timeout_s: float, approval: str
) -> ChatReply:
    """Send a message; Ctrl-C while it runs interrupts the turn, not the chat."""
    loop = asyncio.get_running_loop()
    interrupting: list[asyncio.Task[str]] = []

    def on_sigint() -> None:
        if not interrupting:
            console.print("[dim]  interrupting the turn...[/]")
            interrupting.append(asyncio.ensure_future(session.interrupt()))

    streamed: list[str] = []

    def on_text(piece: str) -> None:
        if not streamed:
            console.print("[bold cyan]agent[/]: ", end="")
        streamed.append(piece)
        console.print(escape(piece), end="", soft_wrap=True)

    def on_tool(call: ToolCall) -> None:
        if streamed:  # a tool call in the middle of text starts a new line
            console.print()
            streamed.clear()
        show_tool(call)

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        reply = await session.send(
            text,
            timeout_s,
            approver=approver_for(approval),
            on_tool=on_tool,
            on_text=on_text,
        )
        render(reply, streamed=bool(streamed) and "".join(streamed) == reply.text)
        return reply
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        for task in interrupting:
            with contextlib.suppress(SessionError):  # the turn had already finished
                await task


async def run_chat(
    sessions: SessionClient,
    message: str | None,
    name: str | None,
    model: str,
    timeout_s: float,
    approval: str,
    tools: list[str] | None = None,
) -> int:
    # A session given no name is this command's own; a refused tool limit ends it.
    session = await sessions.open(name, model=model, tools=tools)
    if session.allowed_tools is not None:
        console.print(f"[dim]tools of this session: {escape(', '.join(session.allowed_tools))}[/]")
    if message is not None:
        try:
            reply = await send_interruptible(session, message, timeout_s, approval)
        finally:
            if name is None:
                # A one-shot session has nothing to resume: close it.
                await session.end()
        return 0 if reply.ok else 1
    return await interactive(session, sessions.mesh.orchestrator.namespace, timeout_s, approval)


async def interactive(session: Session, namespace: str, timeout_s: float, approval: str) -> int:
    console.print(
        f"[dim]session {escape(session.id)} in namespace {escape(namespace)}. "
        "Commands: /history /status /undo /compact /end; Ctrl-C interrupts a turn; Ctrl-D leaves the "
        "session open.[/]"
    )
    loop = asyncio.get_running_loop()
    while True:
        prompt = asyncio.ensure_future(stdin.readline("[bold green]you[/]: "))
        # Ctrl-C at the prompt leaves the chat; during a turn it interrupts the turn.
        loop.add_signal_handler(signal.SIGINT, prompt.cancel)
        try:
            text = await prompt
        except (EOFError, asyncio.CancelledError):
            console.print(
                f"\n[dim]left session open: resume with --session {escape(session.id)}[/]"
            )
            return 0
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        command = text.strip()
        if not command:
            continue
        try:
            if command in ("/end", "/quit", "/exit"):
                console.print(f"[dim]{escape(await session.end())}[/]")
                return 0
            if command == "/history":
                for turn in await session.history():
                    console.print(
                        f"[dim]{turn.turn}. you: {escape(turn.user)}\n"
                        f"   agent: {escape(turn.reply)}[/]"
                    )
                continue
            if command == "/status":
                console.print(status_table(await session.status()))
                continue
            if command in ("/undo", "/compact"):
                done = await (session.undo() if command == "/undo" else session.compact())
                console.print(f"[dim]{escape(done)}[/]")
                continue
            await send_interruptible(session, text, timeout_s, approval)
        except SessionError as err:
            errors.print(f"[red]{escape(str(err))}[/]")


async def list_open(mesh_file: Path, tracing: Sequence[Plugin] = ()) -> int:
    sessions = await SessionClient.connect(mesh_file, tracing=tracing)
    rows = await sessions.list()
    for row in rows:
        console.print(f"{row.id}  started {row.started}")
    if not rows:
        console.print("[dim]no open sessions[/]")
    return 0


async def end_one(mesh_file: Path, name: str, tracing: Sequence[Plugin] = ()) -> int:
    sessions = await SessionClient.connect(mesh_file, tracing=tracing)
    session = await sessions.attach(name)
    console.print(await session.end())
    return 0


async def chat(
    mesh_file: Path,
    message: str | None,
    name: str | None,
    *args: Any,
    tracing: Sequence[Plugin] = (),
) -> int:
    sessions = await SessionClient.connect(mesh_file, tracing=tracing)
    return await run_chat(sessions, message, name, *args)


app = typer.Typer(add_completion=False)


@app.command()
def main(
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Send one message, print the reply, exit.")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Session id to start or resume.")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List open sessions and exit.")] = False,
    end_: Annotated[str | None, typer.Option("--end", help="End this session and exit.")] = None,
    approve: Annotated[
        bool, typer.Option("--approve", help="Approve every call that needs approval.")
    ] = False,
    deny: Annotated[
        bool, typer.Option("--deny", help="Deny every call that needs approval.")
    ] = False,
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
    timeout: Annotated[float, typer.Option(help="Seconds to wait for one reply.")] = 600.0,
    tools: Annotated[
        str | None,
        typer.Option(
            help="Limit the session to these teams and tools, comma-separated, e.g. "
            "'it,calculator' ('local' is the orchestrator's own tools)."
        ),
    ] = None,
) -> None:
    """Chat with the mesh's agent, interactively or one message at a time.

    The tools are the orchestrator's own and those the teams of the mesh file
    offer in their catalogs. The model is the orchestrator worker's LLM_MODEL.
    The default, 'offline', is a deterministic router, not a language model:
    it calls any tool named with its arguments ("<tool> key=value ..."),
    understands requests phrased like the examples each team publishes with
    its tools, and lists the tools otherwise. Set LLM_MODEL to a LiteLLM model string (and the
    provider's key) on the orchestrator worker for a real model.

    Calls that a team's policy guards wait for your approval: the chat asks,
    or --approve / --deny answer. The team records who approved (MESH_USER,
    else your login name).
    """
    code = 1
    approval = "approve" if approve else "deny" if deny else "ask"
    telemetry = None
    try:
        path = mesh_file or mesh_path()
        telemetry = observability.setup("chat", load_mesh(path).orchestrator.namespace)
        if list_:
            code = asyncio.run(list_open(path, telemetry.plugins))
        elif end_:
            code = asyncio.run(end_one(path, end_, telemetry.plugins))
        else:
            limit = [n for n in tools.split(",")] if tools is not None else None
            code = asyncio.run(
                chat(
                    path,
                    message,
                    session,
                    model,
                    timeout,
                    approval,
                    limit,
                    tracing=telemetry.plugins,
                )
            )
    except (SessionError, MeshError) as err:
        errors.print(f"[red]error: {escape(str(err))}[/]")
    except RPCError as err:
        errors.print(f"[red]error: Temporal refused the request: {escape(err.message)}[/]")
    if telemetry is not None:
        telemetry.shutdown()
    exit_now(code)


if __name__ == "__main__":
    app()
