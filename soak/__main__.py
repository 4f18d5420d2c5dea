"""The chaos soak: N sessions for M minutes while faults land, then the invariants.

\b
    scripts/soak --minutes 2 --sessions 4
    scripts/soak --minutes 20 --sessions 50 --fault-gap 12 --json soak.json

It starts its own dev server (persisted to SQLite, on free ports), mesh file,
fake backends and worker replicas, so it never touches a running scripts/demo.
It ends with one line, "soak: sessions N, turns T, faults F, lost L,
duplicated D, stuck S", and exits 1 when L, D or S is not 0 (or a history
does not replay). See docs/soak.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from soak.config import SoakConfig
from soak.report import failed, lines
from soak.run import run_soak

cli = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)


@cli.command(help=__doc__)
def main(
    minutes: Annotated[
        float, typer.Option(help="How long sessions send turns and faults land.")
    ] = 2.0,
    sessions: Annotated[int, typer.Option(help="Sessions sending turns at once.")] = 4,
    replicas: Annotated[int, typer.Option(help="Processes of each worker.")] = 2,
    seed: Annotated[
        int, typer.Option(help="Seeds fault times, kinds, targets and the turn mix.")
    ] = 1,
    fault_gap: Annotated[
        float, typer.Option(help="Mean seconds between one fault's repair and the next fault.")
    ] = 10.0,
    fault_min: Annotated[float, typer.Option(help="Shortest outage, in seconds.")] = 4.0,
    fault_max: Annotated[float, typer.Option(help="Longest outage, in seconds.")] = 10.0,
    grace: Annotated[
        float, typer.Option(help="Seconds the sessions have to finish after the faults stop.")
    ] = 120.0,
    turns_per_session: Annotated[
        int, typer.Option(help="Turns before a session ends and a new one takes its place.")
    ] = 40,
    approve_share: Annotated[
        float, typer.Option(help="Share of approval requests approved (the rest denied).")
    ] = 0.6,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the figures to this JSON file.")
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="Where the database and logs go (default: a temp dir).")
    ] = None,
) -> None:
    """Run the soak and print its figures; exit 1 when anything was lost,
    duplicated or stuck, 2 on bad options."""
    try:
        if not 0 < fault_min <= fault_max:
            raise ValueError("--fault-min must be above 0 and at most --fault-max")
        config = SoakConfig(
            minutes=minutes,
            sessions=sessions,
            replicas=replicas,
            seed=seed,
            fault_gap_s=fault_gap,
            fault_s=(fault_min, fault_max),
            grace_s=grace,
            turns_per_session=turns_per_session,
            approve_share=approve_share,
            workdir=str(workdir) if workdir else None,
        )
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None

    def progress(text: str) -> None:
        print(f"soak: {text}", file=sys.stderr, flush=True)

    try:
        data = asyncio.run(run_soak(config, progress))
    except KeyboardInterrupt:
        progress("interrupted")
        _exit(130)
    except Exception as err:
        progress(f"failed: {type(err).__name__}: {err}")
        _exit(3)
    if json_path is not None:
        json_path.write_text(json.dumps(data, indent=2) + "\n")
    print("\n".join(lines(data)), flush=True)
    _exit(1 if failed(data) else 0)


def _exit(code: int) -> None:
    # A CLI holding a Temporal client can abort at interpreter exit: flush and leave.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
