"""Entry point of the mesh's setup: ``python -m workers.setup [--mesh PATH]``."""

import typer

from meshkit.setup import cli

if __name__ == "__main__":
    typer.run(cli)
