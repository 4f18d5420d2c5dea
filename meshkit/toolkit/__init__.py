"""What every team builds on: catalog, policies, the door, errors and stores."""

from meshkit.toolkit.catalog import (
    CATALOG_OPERATION,
    ToolCatalog,
    ToolEntry,
    build_catalog,
    strict_schema_problems,
)
from meshkit.toolkit.door import APPROVAL_MEMO, TeamDoor
from meshkit.toolkit.errors import backend_retry, bad_request, normalize_text, require
from meshkit.toolkit.hints import ToolHints
from meshkit.toolkit.policy import ApprovalPolicy, ApprovalRecord, ToolPolicy
from meshkit.toolkit.store import IdempotentStore, state_dir
from meshkit.toolkit.team import TeamContext, TeamRegistration, TeamServiceHandler

__all__ = [
    "APPROVAL_MEMO",
    "CATALOG_OPERATION",
    "ApprovalPolicy",
    "ApprovalRecord",
    "IdempotentStore",
    "TeamContext",
    "TeamDoor",
    "TeamRegistration",
    "TeamServiceHandler",
    "ToolCatalog",
    "ToolEntry",
    "ToolHints",
    "ToolPolicy",
    "backend_retry",
    "bad_request",
    "build_catalog",
    "normalize_text",
    "require",
    "state_dir",
    "strict_schema_problems",
]
