"""The demo's and the tests' harness: worker processes, pidfiles, git worktrees
and the Temporal dev server, on this machine.

Nothing deployed imports it: a worker in a container runs from ``meshkit``
alone, and the wheel leaves this package out. It may import ``meshkit``;
``meshkit`` never imports it.
"""
