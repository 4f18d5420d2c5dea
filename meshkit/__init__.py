"""Shared infrastructure of the mesh: the mesh file, connections, setup,
versioning and rollouts, observability, running a worker, and the toolkit teams
build their services on. What a deployed worker imports; the demo's harness
(processes, pidfiles, worktrees, the dev server) is ``meshdev``."""
