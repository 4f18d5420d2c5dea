"""The HTTP API and web chat of the mesh: ``python -m orchestrator.api``."""
