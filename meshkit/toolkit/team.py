"""How a team plugs into the mesh: its registration, and the base of its handler.

A team's package ``services/<team>/`` has a module ``team`` with a function
``register() -> TeamRegistration``. The generic team worker
(``python -m workers.team <team>``) imports it, builds the handler, and runs
it with the team's workflows and activities behind the team's door.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nexusrpc.handler import StartOperationContext, sync_operation

from meshkit.toolkit.catalog import ToolCatalog, ToolEntry, build_catalog
from meshkit.toolkit.hints import ToolHints
from meshkit.toolkit.policy import ToolPolicy

if TYPE_CHECKING:
    # Only a team worker with MCP servers loads the MCP client.
    from meshkit.toolkit.mcp_servers import McpServer


@dataclass(frozen=True)
class TeamContext:
    """Where a team's worker runs, as the mesh file says."""

    name: str
    namespace: str
    task_queue: str
    policies: Mapping[str, ToolPolicy] = field(default_factory=dict)
    hints: Mapping[str, ToolHints] = field(default_factory=dict)
    imported: Mapping[str, ToolEntry] = field(default_factory=dict)
    """The tools of the team's MCP servers, by name, as its worker found them."""


@dataclass(frozen=True)
class TeamRegistration:
    """Everything the team worker needs to run one team."""

    handler: Callable[[TeamContext], Any] | None
    """Builds the team's ``@service_handler`` instance (a :class:`TeamServiceHandler`);
    None for a team whose tools all come from its MCP servers."""
    policies: Mapping[str, ToolPolicy]
    """The team's rules per operation (or imported tool), declared beside its contract."""
    hints: Mapping[str, ToolHints] = field(default_factory=dict)
    """Example requests and reply templates per operation, declared beside its contract."""
    workflows: Sequence[type] = ()
    activities: Sequence[Callable[..., Any]] = ()
    mcp_servers: Sequence[McpServer] = ()
    """MCP servers whose tools the team publishes as its own, beside its operations."""

    def __post_init__(self) -> None:
        if self.handler is None and not self.mcp_servers:
            raise ValueError("a team needs a handler, MCP servers, or both")


class TeamServiceHandler:
    """Base of every team's service handler: it serves the team's catalog.

    The contract declares ``catalog: nexusrpc.Operation[None, ToolCatalog]``;
    this class implements it from the handler's own operations and the
    team's policies, so the catalog never drifts from the code.
    """

    def __init__(self, team: TeamContext) -> None:
        self.team = team
        self._catalog: ToolCatalog | None = None

    @sync_operation
    async def catalog(self, ctx: StartOperationContext, input: None) -> ToolCatalog:
        """The tools this team offers: names, schemas, kinds, approval policies,
        timeouts and hints."""
        return self.served_catalog()

    def served_catalog(self) -> ToolCatalog:
        """The catalog this handler serves, built once (the worker builds it at start,
        so a policy or hint that fits no tool stops the worker there)."""
        if self._catalog is None:
            self._catalog = build_catalog(
                type(self),
                team=self.team.name,
                namespace=self.team.namespace,
                policies=dict(self.team.policies),
                hints=dict(self.team.hints),
                imported=self.team.imported,
            )
        return self._catalog
