"""Catalogs come from the teams' code, and every schema a model receives is strict.

No server is needed: catalogs are built from each team's registration the way
its worker serves them. Also here: the approval digest both sides compute,
the session's tool limit, and the import graph that keeps every team's room
and the orchestrator's apart.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from meshkit.mesh import DEFAULT_MESH_FILE, load_mesh
from meshkit.team_worker import load_registration, team_context
from meshkit.toolkit.catalog import (
    ToolCatalog,
    build_catalog,
    strict_input_schema,
    strict_schema_problems,
)
from meshkit.toolkit.policy import ApprovalPolicy, ToolPolicy, arguments_digest
from orchestrator.tools import LOCAL_TOOLS, UnknownToolError, allowed_names, readable

ROOT = Path(__file__).resolve().parent.parent
MESH = load_mesh(DEFAULT_MESH_FILE)


def catalog_of(team: str, policies: dict[str, ToolPolicy] | None = None) -> ToolCatalog:
    registration = load_registration(MESH, team)
    handler = registration.handler(team_context(MESH, team, registration))
    return build_catalog(
        type(handler),
        team=team,
        namespace=MESH.team(team).namespace,
        policies=dict(registration.policies if policies is None else policies),
    )


def test_each_teams_catalog_lists_its_operations_as_its_code_declares_them() -> None:
    kinds = {
        "it": {"get_ip": "sync", "jira_metrics": "workflow", "create_ticket": "workflow"},
        "finance": {
            "calculate_roi": "sync",
            "stock_price": "workflow",
            "submit_expense": "workflow",
        },
    }
    for team, expected in kinds.items():
        catalog = catalog_of(team)
        assert catalog.service == MESH.team(team).service and catalog.team == team
        assert {tool.name: tool.kind for tool in catalog.tools} == expected


def test_policies_and_descriptions_come_from_the_contract() -> None:
    it = catalog_of("it")
    ticket = it.entry("create_ticket")
    assert ticket is not None and ticket.approval is not None and ticket.approval.always
    assert ticket.timeout_s == 300
    assert ticket.description.startswith("Create a Jira ticket")
    ip = it.entry("get_ip")
    assert ip is not None and not ip.takes_input and ip.approval is None
    assert ip.description.startswith("IP addresses and host name")  # the output's docstring
    expense = catalog_of("finance").entry("submit_expense")
    assert expense is not None and expense.approval == ApprovalPolicy(
        above=100, field="amount", reason="Finance approves claims above 100 before filing them."
    )
    props = expense.input_schema["properties"]
    assert props["amount"]["description"].startswith("Amount claimed")


def test_an_entrys_version_changes_with_its_policy_and_only_then() -> None:
    before = catalog_of("it")
    assert catalog_of("it") == before
    policies = dict(load_registration(MESH, "it").policies)
    changed = catalog_of("it", {**policies, "get_ip": ToolPolicy(timeout_s=5)})
    versions = {t.name: t.version for t in before.tools}
    after = {t.name: t.version for t in changed.tools}
    assert after["get_ip"] != versions["get_ip"]
    assert after["jira_metrics"] == versions["jira_metrics"]
    assert changed.version != before.version


def test_policies_for_an_operation_the_service_lacks_are_refused() -> None:
    with pytest.raises(ValueError, match="teleport"):
        catalog_of("it", {"teleport": ToolPolicy()})


class Nested(BaseModel):
    """A nested part."""

    label: str = Field(description="A label.")
    weight: float | None = Field(default=None, description="Optional weight.")


class Awkward(BaseModel):
    """Everything a team might write in a contract."""

    name: str = Field(min_length=1, max_length=20, description="A name.")
    count: int = Field(default=3, ge=1, le=10, description="How many.")
    mode: Literal["fast", "safe"] = "safe"
    tags: list[str] = Field(default_factory=list, description="Tags.")
    part: Nested
    parts: list[Nested] = Field(default_factory=list)
    note: str | None = None


def every_schema_a_model_receives() -> dict[str, dict[str, Any]]:
    schemas = {
        f"{team}.{tool.name}": tool.input_schema
        for team in MESH.teams
        for tool in catalog_of(team).tools
    }
    schemas |= {
        f"local.{spec.activity}": strict_input_schema(spec.input_type)[0] for spec in LOCAL_TOOLS
    }
    schemas["made-up.Awkward"] = strict_input_schema(Awkward)[0]
    return schemas


@pytest.mark.parametrize("name", sorted(every_schema_a_model_receives()))
def test_every_tool_schema_passes_openais_strict_rules(name: str) -> None:
    assert strict_schema_problems(every_schema_a_model_receives()[name]) == []


def test_optional_fields_become_required_and_nullable_and_constraints_move_to_descriptions() -> (
    None
):
    schema, optional = strict_input_schema(Awkward)
    assert set(optional) == {"count", "mode", "tags", "parts", "note"}
    assert schema["required"] == list(schema["properties"])
    count = schema["properties"]["count"]
    assert {"type": "null"} in count["anyOf"]
    assert "minimum 1" in count["description"] and "maximum 10" in count["description"]
    assert "default" not in str(schema) and "title" not in schema


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": [],
             "additionalProperties": False},
            "every property must be required",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            "additionalProperties must be false",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string", "default": "x"}},
             "required": ["a"], "additionalProperties": False},
            "unsupported keyword 'default'",
        ),
        (
            {"type": "object", "title": "T", "properties": {}, "required": [],
             "additionalProperties": False},
            "unsupported keyword 'title'",
        ),
        (
            {"type": "object", "required": ["n"], "additionalProperties": False,
             "properties": {"n": {"type": "object", "properties": {"b": {"type": "integer"}},
                                  "required": [], "additionalProperties": False}}},
            "$.n: every property must be required",
        ),
        ({"type": "string"}, "arguments must be an object"),
    ],
)  # fmt: skip
def test_the_strict_check_catches_each_broken_rule(schema: dict[str, Any], problem: str) -> None:
    assert any(problem in found for found in strict_schema_problems(schema)), (
        strict_schema_problems(schema)
    )


def test_both_sides_digest_approved_arguments_alike() -> None:
    assert arguments_digest({"amount": 150, "currency": "EUR"}) == arguments_digest(
        {"currency": "EUR", "amount": 150.0}
    )
    assert arguments_digest({"amount": 150}) != arguments_digest({"amount": 151})
    assert arguments_digest({"flag": True}) != arguments_digest({"flag": 1.0})


def test_a_tool_limit_names_teams_tools_or_local_and_refuses_unknown_names() -> None:
    catalogs = {team: catalog_of(team) for team in MESH.teams}
    assert allowed_names(None, catalogs, MESH.teams) is None
    assert allowed_names(["it"], catalogs, MESH.teams) == {
        "get_ip",
        "jira_metrics",
        "create_ticket",
    }
    assert allowed_names(["local", "stock_price"], catalogs, MESH.teams) == {
        "calculator", "weather", "stock_price",
    }  # fmt: skip
    with pytest.raises(UnknownToolError, match="no team or tool is called 'fx_rate'"):
        allowed_names(["finance", "fx_rate"], catalogs, MESH.teams)


def test_a_teams_validation_report_reaches_the_model_as_one_line() -> None:
    report = (
        "2 validation errors for RoiRequest\nprincipal\n  Field required [type=missing]\n"
        "    For further information visit https://errors.pydantic.dev\nyears\n"
        "  Input should be a valid number [type=float_parsing]"
    )
    assert readable(report) == (
        "invalid arguments: principal: Field required; years: Input should be a valid number"
    )
    assert readable("invalid ticker 'X1'") == "invalid ticker 'X1'"


# --- the import graph ---------------------------------------------------------------------

RULES = {
    # (importing package, imported top-level package): why it is forbidden
    ("orchestrator", "services"): "the orchestrator learns teams' tools from catalogs",
    ("services", "orchestrator"): "a team's room has no door into the orchestrator's",
    ("meshkit", "orchestrator"): "shared infrastructure depends on no product package",
    ("meshkit", "services"): "shared infrastructure loads teams by name, never by import",
    ("meshkit", "bench"): "the benchmark sits beside the product",
    ("orchestrator", "bench"): "the benchmark sits beside the product",
    ("services", "bench"): "the benchmark sits beside the product",
}
PACKAGES = ("meshkit", "orchestrator", "services", "workers", "bench", "tests")


def imports_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def test_the_import_graph_keeps_every_room_apart() -> None:
    broken = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, imported in imports_of(path):
                where = f"{path.relative_to(ROOT)}:{line} imports {imported}"
                if imported == "workers":
                    broken.append(f"{where}: workers holds entry points, nothing imports them")
                elif package in ("meshkit", "orchestrator", "services") and imported == "tests":
                    broken.append(f"{where}: product code never imports tests")
                elif (package, imported) in RULES:
                    broken.append(f"{where}: {RULES[(package, imported)]}")
    assert not broken, "\n".join(broken)
