"""Catalogs come from the teams' code, and every schema a model receives is strict.

No server is needed: catalogs are built from each team's registration the way
its worker serves them. Also here: the approval digest both sides compute,
the session's tool limit, and the check that the orchestrator names no team's
tool (the import graph is tests/test_import_graph.py).
"""

from __future__ import annotations

import enum
import importlib
import re
from pathlib import Path
from typing import Any, Literal

import pytest
from nexusrpc import get_service_definition
from pydantic import BaseModel, Field

from meshkit.mesh import DEFAULT_MESH_FILE, load_mesh
from meshkit.team_worker import load_registration, team_context
from meshkit.toolkit.catalog import (
    CATALOG_OPERATION,
    EMPTY_OBJECT,
    ToolCatalog,
    ToolEntry,
    build_catalog,
    strict_input_schema,
    strict_schema_problems,
)
from meshkit.toolkit.mcp_operations import with_imported_tools
from meshkit.toolkit.mcp_servers import TEXT_OUTPUT, ImportedTool, McpServer
from meshkit.toolkit.policy import ApprovalPolicy, ToolPolicy, arguments_digest
from orchestrator.tools import LOCAL_TOOLS, UnknownToolError, allowed_names, readable

ROOT = Path(__file__).resolve().parent.parent
MESH = load_mesh(DEFAULT_MESH_FILE)


def catalog_of(team: str, policies: dict[str, ToolPolicy] | None = None) -> ToolCatalog:
    registration = load_registration(MESH, team)
    assert registration.handler is not None
    handler = registration.handler(team_context(MESH, team, registration))
    return build_catalog(
        type(handler),
        team=team,
        namespace=MESH.team(team).namespace,
        policies=dict(registration.policies if policies is None else policies),
        # The tools of a team's MCP servers join when its worker lists them.
        imports_pending=bool(registration.mcp_servers),
    )


def test_each_teams_catalog_lists_its_operations_as_its_code_declares_them() -> None:
    kinds = {
        "it": {
            "get_ip": "sync",
            "jira_metrics": "workflow",
            "create_ticket": "workflow",
            "set_project": "sync",
        },
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


def contract_of(team: str) -> Any:
    return importlib.import_module(f"{MESH.team_package(team)}.contract")


@pytest.mark.parametrize("team", sorted(MESH.teams))
def test_a_catalog_offers_exactly_the_contracts_operations_but_itself(team: str) -> None:
    contract = contract_of(team)
    service = get_service_definition(getattr(contract, MESH.team(team).service))
    assert service is not None and CATALOG_OPERATION in service.operation_definitions
    offered = [tool.name for tool in catalog_of(team).tools]
    assert sorted(offered) == sorted(set(service.operation_definitions) - {CATALOG_OPERATION})


@pytest.mark.parametrize("team", sorted(MESH.teams))
def test_every_entrys_approval_and_timeout_are_the_teams_declared_policy(team: str) -> None:
    contract = contract_of(team)
    policies = contract.POLICIES
    assert load_registration(MESH, team).policies is policies
    catalog = catalog_of(team)
    # Policies of tools a team imports from MCP servers join with those tools
    # (tests/test_mcp_servers.py); the rest are the contract's operations'.
    service = get_service_definition(getattr(contract, MESH.team(team).service))
    assert service is not None
    assert {t.name: (t.approval, t.timeout_s) for t in catalog.tools} == {
        name: (policy.approval, policy.timeout_s)
        for name, policy in policies.items()
        if name in service.operation_definitions
    }


@pytest.mark.parametrize("team", sorted(MESH.teams))
def test_every_entry_is_described_by_a_docstring_not_just_its_name(team: str) -> None:
    for tool in catalog_of(team).tools:
        assert tool.description != tool.name, f"{team}.{tool.name} has no docstring"
        assert "\n" not in tool.description and tool.description == tool.description.strip()


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


@pytest.mark.parametrize(
    ("tool", "policy"),
    [
        ("get_ip", ToolPolicy(timeout_s=5)),
        ("create_ticket", ToolPolicy(timeout_s=300)),  # no approval any more
        ("jira_metrics", ToolPolicy(timeout_s=120, approval=ApprovalPolicy(always=True))),
        ("get_ip", ToolPolicy(timeout_s=20)),  # no longer read-only
    ],
)
def test_an_entrys_version_changes_with_its_policy_and_only_then(
    tool: str, policy: ToolPolicy
) -> None:
    before = catalog_of("it")
    assert catalog_of("it") == before  # built twice from the same code: the same versions
    policies = dict(load_registration(MESH, "it").policies)
    assert policies[tool] != policy
    changed = catalog_of("it", {**policies, tool: policy})
    versions = {t.name: t.version for t in before.tools}
    after = {t.name: t.version for t in changed.tools}
    assert after[tool] != versions[tool]
    assert {n: v for n, v in after.items() if n != tool} == {
        n: v for n, v in versions.items() if n != tool
    }
    assert changed.version != before.version


def test_the_tools_that_only_read_are_those_the_teams_policies_say() -> None:
    expected = {
        "it": {"get_ip": True, "jira_metrics": True, "create_ticket": False},
        "finance": {"calculate_roi": True, "stock_price": True, "submit_expense": False},
    }
    for team, reads in expected.items():
        catalog = catalog_of(team)
        assert {name: getattr(catalog.entry(name), "read_only", None) for name in reads} == reads


def test_the_read_only_flag_round_trips_and_a_catalog_without_it_still_parses() -> None:
    catalog = catalog_of("finance")
    assert ToolCatalog.model_validate_json(catalog.model_dump_json()) == catalog
    # A catalog served by a build from before the flag existed.
    old = catalog.model_dump(mode="json")
    for tool in old["tools"]:
        del tool["read_only"]
    parsed = ToolCatalog.model_validate(old)
    assert [t.name for t in parsed.tools] == [t.name for t in catalog.tools]
    assert not any(t.read_only for t in parsed.tools)
    # A tool that is not read-only keeps the version it had before the flag.
    expense = catalog.entry("submit_expense")
    assert expense is not None and parsed.entry("submit_expense") == expense


def test_an_imported_tool_takes_its_servers_read_only_hint_unless_the_team_decides() -> None:
    server = McpServer(name="fake", stdio=["fake-mcp-server"])  # declared, never started

    def imported(name: str, server_says_read_only: bool) -> ImportedTool:
        entry = ToolEntry(
            name=name,
            description=f"Tool {name}.",
            input_schema=dict(EMPTY_OBJECT),
            output_schema=TEXT_OUTPUT,
            kind="workflow",
            timeout_s=60,
            read_only=server_says_read_only,
        )
        return ImportedTool(server, entry)

    tools = {
        "server_reads": imported("server_reads", True),
        "server_says_nothing": imported("server_says_nothing", False),
        "team_says_it_writes": imported("team_says_it_writes", True),
        "team_says_it_reads": imported("team_says_it_reads", False),
        "team_wants_approval": imported("team_wants_approval", True),
    }
    policies = {
        "team_says_it_writes": ToolPolicy(read_only=False),
        "team_says_it_reads": ToolPolicy(read_only=True),
        "team_wants_approval": ToolPolicy(approval=ApprovalPolicy(always=True)),
    }
    registration = load_registration(MESH, "finance")
    assert registration.handler is not None
    handler = registration.handler(team_context(MESH, "finance", registration))
    served = with_imported_tools(handler, MESH.team("finance").service, tools)
    catalog = build_catalog(
        type(served),
        team="finance",
        namespace="finance",
        policies={**registration.policies, **policies},
        imported={name: tool.entry for name, tool in tools.items()},
    )
    assert {name: getattr(catalog.entry(name), "read_only", None) for name in tools} == {
        "server_reads": True,
        "server_says_nothing": False,
        "team_says_it_writes": False,
        "team_says_it_reads": True,
        "team_wants_approval": False,
    }


def test_a_read_only_tool_that_needs_approval_is_refused_when_declared() -> None:
    with pytest.raises(ValueError, match="read-only tool cannot need approval"):
        ToolPolicy(read_only=True, approval=ApprovalPolicy(always=True))


def test_policies_for_an_operation_the_service_lacks_are_refused() -> None:
    # Finance publishes no MCP server: every policy must name one of its operations.
    # (For a team that does, its worker checks the names once it has listed the tools.)
    with pytest.raises(ValueError, match="teleport"):
        catalog_of("finance", {"teleport": ToolPolicy()})


class Nested(BaseModel):
    """A nested part."""

    label: str = Field(description="A label.")
    weight: float | None = Field(default=None, description="Optional weight.")


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Awkward(BaseModel):
    """Everything a team might write in a contract."""

    name: str = Field(min_length=1, max_length=20, description="A name.")
    count: int = Field(default=3, ge=1, le=10, description="How many.")
    ratio: float = Field(gt=0, lt=1, description="A share.")
    mode: Literal["fast", "safe"] = "safe"
    colour: Colour = Colour.RED
    flag: bool = False
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
    props = schema["properties"]
    assert set(optional) == {"count", "mode", "colour", "flag", "tags", "parts", "note"}
    assert schema["required"] == list(props) == list(Awkward.model_fields)
    for name in optional:
        assert {"type": "null"} in props[name]["anyOf"], name
    for name in set(props) - set(optional):
        assert "anyOf" not in props[name], f"{name} is required, so it is not nullable"
    count = props["count"]
    assert "minimum 1" in count["description"] and "maximum 10" in count["description"]
    assert "maxLength 20" in props["name"]["description"]
    assert "exclusiveMinimum 0" in props["ratio"]["description"]
    assert {"enum": ["fast", "safe"], "type": "string"} in props["mode"]["anyOf"]
    assert schema["$defs"]["Colour"]["enum"] == ["red", "blue"]
    nested = schema["$defs"]["Nested"]
    assert nested["required"] == ["label", "weight"] and nested["additionalProperties"] is False
    assert {"type": "null"} in nested["properties"]["weight"]["anyOf"]
    assert not keywords(schema) & {"default", "title", "minimum", "maxLength", "exclusiveMinimum"}


def keywords(schema: Any) -> set[str]:
    """Every keyword used anywhere in ``schema`` (property and definition names aside)."""
    if isinstance(schema, list):
        return set().union(*map(keywords, schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for key, value in schema.items():
        named = key in ("properties", "$defs")
        found |= keywords(list(value.values())) if named else keywords(value)
    return found


def test_a_lists_length_limit_reaches_the_model_in_its_description() -> None:
    class Batch(BaseModel):
        items: list[str] = Field(min_length=1, max_length=5, description="Items.")

    schema, _ = strict_input_schema(Batch)
    description = schema["properties"]["items"]["description"]
    assert "maxItems 5" in description and "minItems 1" in description


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
        "set_project",
    }
    assert allowed_names(["local", "stock_price"], catalogs, MESH.teams) == {
        "calculator", "weather", "stock_price",
    }  # fmt: skip
    assert allowed_names(["weather"], catalogs, MESH.teams) == {"weather"}
    # A team that is in the session but unavailable is known; it just offers nothing now.
    only_finance = {"finance": catalogs["finance"]}
    assert allowed_names(["it", "calculate_roi"], only_finance, MESH.teams) == {"calculate_roi"}
    with pytest.raises(UnknownToolError, match="no team or tool is called 'fx_rate'"):
        allowed_names(["finance", "fx_rate"], catalogs, MESH.teams)
    # A tool is known only from a fetched catalog.
    with pytest.raises(UnknownToolError, match="'get_ip'"):
        allowed_names(["get_ip"], only_finance, MESH.teams)


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


# --- the orchestrator names no team's tool ----------------------------------------------


def every_teams_tool_names() -> set[str]:
    """The tools of every team in the mesh file, from their catalogs, and of the
    test teams written by the tests."""
    from tests.teams.fx import OPERATIONS

    names = {tool.name for team in MESH.teams for tool in catalog_of(team).tools}
    return names | set(OPERATIONS)


def mentions(names: set[str], root: Path) -> list[str]:
    """Where a file under ``root`` names one of ``names`` (code, comments, docstrings)."""
    pattern = re.compile(rf"\b(?:{'|'.join(sorted(map(re.escape, names)))})\b")
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".py", ".js", ".html", ".css", ".md") or "__pycache__" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in pattern.finditer(line):
                found.append(f"{path.relative_to(root.parent)}:{number} names {match.group()}")
    return found


def test_the_orchestrator_names_no_teams_tool() -> None:
    names = every_teams_tool_names()
    assert {"get_ip", "stock_price", "fx_rate"} <= names, "the teams' tools were not found"

    assert not mentions(names, ROOT / "orchestrator"), "\n".join(
        mentions(names, ROOT / "orchestrator")
    )


def test_the_name_check_finds_a_tool_named_in_a_comment(tmp_path: Path) -> None:
    (tmp_path / "orchestrator").mkdir()
    (tmp_path / "orchestrator" / "router.py").write_text(
        "x = 1\n# route prices to stock_price first\nnot_stock_price = 2\n"
    )

    assert mentions({"stock_price"}, tmp_path / "orchestrator") == [
        "orchestrator/router.py:2 names stock_price"
    ]
