"""Print a turn's trace: ``python -m meshkit.observability trace [--session S]``.

Reads the trace file the mesh writes with ``MESH_TRACE_FILE`` (the demo's is
``.run/traces.jsonl``, with ``scripts/demo --trace``), finds the session's
last turn (or ``--turn N``) and prints its spans, across every namespace, as
an indented timeline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from meshkit.observability.spans import TraceFileError, find_turn, read_spans, timeline, tree

app = typer.Typer(add_completion=False, no_args_is_help=True)


@app.callback()
def _main() -> None:
    """Read the mesh's traces."""


@app.command()
def trace(
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Session id (default: the latest turn's).")
    ] = None,
    turn: Annotated[
        int | None, typer.Option("--turn", "-t", help="Turn number (default: the last).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Trace file (default: MESH_TRACE_FILE)."),
    ] = None,
) -> None:
    """Print the span tree of a session's last turn as a timeline."""
    path = file or Path(os.environ.get("MESH_TRACE_FILE", ".run/traces.jsonl"))
    try:
        spans = read_spans(path)
        trace_id, span = find_turn(spans, session, turn)
    except TraceFileError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    roots = tree(spans, trace_id)
    count = sum(1 for s in spans if s.trace_id == trace_id)
    namespaces = sorted({s.namespace for s in spans if s.trace_id == trace_id})
    typer.echo(
        f"session {span.attributes['mesh.session.id']} turn {span.attributes.get('mesh.turn')}"
        f" · trace {trace_id} · {count} spans · namespaces: {', '.join(namespaces)}"
    )
    typer.echo(f"{'start':>12} {'duration':>12}  {'namespace':<14} {'component':<13} span")
    for line in timeline(roots):
        typer.echo(line)


if __name__ == "__main__":
    app()
