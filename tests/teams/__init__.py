"""Test-only team packages, written into a temporary directory by the tests
that add a team or a tool (see tests/teams/fx.py)."""
