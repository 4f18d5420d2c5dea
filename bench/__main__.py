"""Command line of the benchmark: ``scripts/bench [--quick] [--json PATH] [--plot PATH]``."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from bench.config import BenchConfig, Mode, make_config
from bench.report import render
from bench.runner import run_bench
from meshkit.runtime import exit_now

out = Console(highlight=False)
if not out.is_terminal:
    # Piped or redirected output gets rich's 80 columns, too narrow for the tables.
    out = Console(highlight=False, width=140)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _progress(message: str) -> None:
    err.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(message)}")


async def _main(config: BenchConfig, keep_logs: bool) -> dict[str, Any]:
    # SIGTERM ends the run like Ctrl-C: cancelled, so every cleanup runs.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await run_bench(config, _progress, keep_logs)


def _json_safe(value: Any) -> Any:
    """NaN (a figure with no samples) as null: NaN is not valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def main(
    quick: Annotated[
        bool, typer.Option("--quick", help="A short run (about 5 minutes on 2 cores).")
    ] = False,
    tiny: Annotated[
        bool, typer.Option("--tiny", help="The smallest run that yields every figure (tests).")
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the figures as JSON here.")
    ] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Write the latency-vs-concurrency PNG here.")
    ] = None,
    levels: Annotated[
        str | None, typer.Option(help="Concurrent sessions to sweep, e.g. 1,10,50,100.")
    ] = None,
    long_turns: Annotated[int | None, typer.Option(help="Turns of the long conversation.")] = None,
    samples: Annotated[
        int | None, typer.Option(help="Measured round trips per floor, turn kind and MCP tool.")
    ] = None,
    server_config: Annotated[
        list[str] | None,
        typer.Option(
            "--server-config",
            help="Dev server dynamic config KEY=VALUE (repeatable), e.g. "
            "history.transferProcessorMaxPollRPS=1000.",
        ),
    ] = None,
    worker_env: Annotated[
        list[str] | None,
        typer.Option(
            "--worker-env",
            help="Workers' environment KEY=VALUE (repeatable), e.g. LLM_LOCAL_ACTIVITY=true.",
        ),
    ] = None,
    keep_logs: Annotated[
        bool, typer.Option("--keep-logs", help="Keep the server's and workers' logs.")
    ] = False,
) -> None:
    """Measure what the mesh costs per turn, per tool and per session.

    Starts its own Temporal dev server and the three workers as processes,
    measures the floor (bare Temporal primitives), the agent floor (the same
    turns through the Agents SDK with a scripted model and none of the mesh's
    code), agent turns with the offline model, concurrent sessions, one long
    conversation, and the same turns on a second mesh with tracing on, MCP
    tool calls through the API's gateway beside the Nexus floor of the same
    operations, and prints the figures. Exit status 1 when any turn failed or gave a wrong answer.
    """
    if quick and tiny:
        raise typer.BadParameter("--quick and --tiny are exclusive")
    mode: Mode = "tiny" if tiny else "quick" if quick else "full"
    try:
        config = make_config(
            mode,
            levels=tuple(int(x) for x in levels.split(",")) if levels else None,
            long_turns=long_turns,
            samples=samples,
            server_config=tuple(server_config or ()),
            worker_env=tuple(worker_env or ()),
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    plot: Callable[[dict[str, Any], Path], None] | None = None
    if plot_path is not None:
        # Imported now, not after minutes of measuring: a missing matplotlib is
        # reported at once, and one removed from the virtualenv meanwhile (a
        # `uv sync --no-dev` elsewhere) no longer matters.
        try:
            from bench.plot import plot_concurrency
        except ImportError as error:
            raise typer.BadParameter(
                f"--plot needs matplotlib, a dev dependency ({error}): run scripts/bench, "
                "which syncs the dev group, or `uv sync`"
            ) from None
        plot = plot_concurrency
    try:
        data = asyncio.run(_main(config, keep_logs))
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print("[red]interrupted[/]")
        exit_now(130)
    except Exception as error:
        err.print(f"[red]benchmark failed: {escape(str(error))}[/]")
        exit_now(1)
    render(data, out)
    if json_path is not None:
        json_path.write_text(json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")
        _progress(f"figures written to {json_path}")
    if plot is not None and plot_path is not None:
        plot(data, plot_path)
        _progress(f"chart written to {plot_path}")
    exit_now(0 if data["errors"]["count"] == 0 else 1)


if __name__ == "__main__":
    typer.run(main)
