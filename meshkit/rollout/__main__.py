"""``python -m meshkit.rollout``: see :mod:`meshkit.rollout.cli`."""

from meshkit.rollout.cli import cli

if __name__ == "__main__":
    cli()
