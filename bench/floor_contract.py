"""The floor's Nexus service: the smallest sync and workflow-backed operations.

Like a team's contract, it holds only the service definition, so the floor's
caller workflow can import it without the handler.
"""

from __future__ import annotations

import nexusrpc


@nexusrpc.service(name="BenchService")
class BenchService:
    echo: nexusrpc.Operation[str, str]
    """Sync operation: returns its input at once."""
    echo_workflow: nexusrpc.Operation[str, str]
    """Workflow-backed operation: starts BenchEcho, which returns its input from one activity."""
