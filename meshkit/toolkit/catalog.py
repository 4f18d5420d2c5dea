"""A team's tool catalog: what its Nexus service offers, generated from code.

Every team's service has a ``catalog`` operation that returns a
:class:`ToolCatalog`. Nobody writes it: :func:`build_catalog` reads the
contract (operation names, pydantic input and output models, their docstrings
and field descriptions), the handler (sync or workflow-backed), and the
team's :class:`~meshkit.toolkit.policy.ToolPolicy` declarations. The
orchestrator builds the agent's tools from these catalogs at run time, so a
team ships a new tool by deploying only its own worker.

Input schemas are made to pass OpenAI's strict function-schema rules here, on
the team's side, so no hosted model ever rejects a team's contract.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from nexusrpc._util import get_operation_factory, get_service_definition
from pydantic import BaseModel, Field
from temporalio.nexus._operation_handlers import WorkflowRunOperationHandler

from meshkit.toolkit.hints import HintError, ToolHints, check_hints
from meshkit.toolkit.policy import DEFAULT_POLICY, ApprovalPolicy, ToolPolicy

CATALOG_OPERATION = "catalog"
"""Name of the operation every team's service offers for its catalog."""

SESSION_HEADER = "mesh-session"
TURN_HEADER = "mesh-turn"
CALL_HEADER = "mesh-call-id"


def call_headers(
    session: str, turn: int | None = None, call_id: str | None = None
) -> dict[str, str]:
    """The Nexus headers that tell a team which session, turn and tool call a
    request belongs to, for its logs and traces; the team trusts them for
    nothing else."""
    headers = {SESSION_HEADER: session}
    if turn is not None:
        headers[TURN_HEADER] = str(turn)
    if call_id is not None:
        headers[CALL_HEADER] = call_id
    return headers


ToolKind = Literal["sync", "workflow"]


class ToolEntry(BaseModel):
    """One operation of a team's service, as a tool the agent may call."""

    name: str = Field(description="Operation name; the tool's name.")
    description: str = Field(description="What the tool does, from the contract's docstrings.")
    input_schema: dict[str, Any] = Field(
        description="JSON schema of the arguments, in OpenAI's strict form."
    )
    output_schema: dict[str, Any] = Field(description="JSON schema of the result.")
    kind: ToolKind = Field(description="sync: answered inline; workflow: backed by a workflow.")
    approval: ApprovalPolicy | None = Field(
        default=None, description="When a call needs a person's approval; None means never."
    )
    timeout_s: float = Field(description="How long a caller should wait for the operation.")
    takes_input: bool = Field(
        default=True, description="False for an operation without input: call it with none."
    )
    optional: list[str] = Field(
        default_factory=list,
        description="Arguments the tool fills in when left out; a caller drops them when null.",
    )
    hints: ToolHints | None = Field(
        default=None,
        description="Example requests and a reply template, for models that do not "
        "understand language; None when the team gives none.",
    )
    read_only: bool = Field(
        default=False,
        description="The tool only reads, as the team's policy (or its MCP server) says.",
    )
    version: str = Field(default="", description="Hash of this entry; changes with any field.")


class ToolCatalog(BaseModel):
    """Everything a team's service offers as tools."""

    team: str = Field(description="The team, as named in the mesh file.")
    service: str = Field(description="The Nexus service name.")
    namespace: str = Field(description="The namespace the team's worker runs in.")
    tools: list[ToolEntry]
    version: str = Field(default="", description="Hash of every entry; changes with any tool.")

    def entry(self, name: str) -> ToolEntry | None:
        return next((tool for tool in self.tools if tool.name == name), None)


def build_catalog(
    handler_cls: type,
    *,
    team: str,
    namespace: str,
    policies: dict[str, ToolPolicy] | None = None,
    hints: dict[str, ToolHints] | None = None,
    imported: Mapping[str, ToolEntry] | None = None,
    imports_pending: bool = False,
) -> ToolCatalog:
    """The catalog of a ``@service_handler`` class, the team's policies and its
    tools' hints; raises ``ValueError`` when either names an operation the
    service does not have, or a hint does not fit its operation.

    ``imported`` describes operations that have no contract of their own (the
    tools of an MCP server the team publishes): their schemas and kinds come
    from these entries, their approvals, timeouts and hints from the team.
    ``imports_pending`` builds the catalog of a team's operations without the
    tools of its MCP servers (which its worker lists at start): policies and
    hints naming no operation are taken to be theirs."""
    policies = policies or {}
    hints = hints or {}
    imported = imported or {}
    definition = get_service_definition(handler_cls)
    if definition is None:
        raise TypeError(f"{handler_cls.__name__} is not a Nexus service handler")
    if imports_pending:
        policies = {k: v for k, v in policies.items() if k in definition.operation_definitions}
        hints = {k: v for k, v in hints.items() if k in definition.operation_definitions}
    for what, named in (("policies", policies), ("hints", hints)):
        unknown = set(named) - set(definition.operation_definitions)
        if unknown:
            raise ValueError(
                f"{what} name operations that {definition.name} does not have: "
                f"{', '.join(sorted(unknown))}"
            )
    tools = []
    for name, op in sorted(definition.operation_definitions.items()):
        if name == CATALOG_OPERATION:
            continue
        policy = policies.get(name, DEFAULT_POLICY)
        hint = hints.get(name)
        outside = imported.get(name)
        if outside is not None:
            schema, optional = outside.input_schema, outside.optional
            output_schema = outside.output_schema
        else:
            input_type, output_type = op.input_type, op.output_type
            described = input_type if _is_model(input_type) else output_type
            doc = (described.__doc__ or "") if _is_model(described) else ""
            schema, optional = strict_input_schema(input_type)
            output_schema = output_type.model_json_schema() if _is_model(output_type) else {}
        if hint is not None:
            try:
                check_hints(
                    name,
                    hint,
                    schema.get("properties", {}),
                    optional,
                    output_schema.get("properties") if output_schema else None,
                )
            except HintError as err:
                raise ValueError(f"{definition.name}: {err}") from None
        if outside is not None:
            entry = outside.model_copy(
                update={
                    "approval": policy.approval,
                    "timeout_s": policy.timeout_s,
                    "hints": hint,
                    # The team's word first; else what the tool's server says of it,
                    # unless the team wants a person to approve its calls.
                    "read_only": policy.read_only
                    if policy.read_only is not None
                    else outside.read_only and policy.approval is None,
                }
            )
        else:
            entry = ToolEntry(
                name=name,
                description=" ".join(doc.split()) or name,
                input_schema=schema,
                output_schema=output_schema,
                kind=_kind(handler_cls, op),
                approval=policy.approval,
                timeout_s=policy.timeout_s,
                takes_input=_is_model(input_type),
                optional=optional,
                hints=hint,
                read_only=bool(policy.read_only),
            )
        tools.append(entry.model_copy(update={"version": _digest(entry)}))
    catalog = ToolCatalog(team=team, service=definition.name, namespace=namespace, tools=tools)
    return catalog.model_copy(update={"version": _digest(catalog)})


def _kind(handler_cls: type, op: Any) -> ToolKind:
    method = getattr(handler_cls, op.method_name or op.name, None)
    factory = get_operation_factory(method)
    if factory is None:
        raise TypeError(f"{handler_cls.__name__} does not implement operation {op.name!r}")
    # The factory only wraps the start method; building one does not start anything.
    handler = factory(object.__new__(handler_cls))
    return "workflow" if isinstance(handler, WorkflowRunOperationHandler) else "sync"


def _digest(model: BaseModel) -> str:
    data = _without_absent_hints(model.model_dump(mode="json", exclude={"version"}))
    text = json.dumps(data, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _without_absent_hints(data: dict[str, Any]) -> dict[str, Any]:
    # A tool without hints, or not read-only, hashes as it did before catalogs
    # carried those fields.
    if "tools" in data:
        return {**data, "tools": [_without_absent_hints(tool) for tool in data["tools"]]}
    absent = {"hints": None, "read_only": False}
    return {k: v for k, v in data.items() if not (k in absent and v is absent[k])}


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


# --- strict schemas -------------------------------------------------------------------

EMPTY_OBJECT: dict[str, Any] = {
    "type": "object",
    "properties": {},
    "required": [],
    "additionalProperties": False,
}

# Keywords OpenAI's strict mode accepts on every model that supports it. Others
# (default, title, format, minimum, pattern, ...) are refused by some models or
# silently ignored by others, so they are moved into the description or dropped.
SUPPORTED_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "description",
        "$ref",
        "$defs",
    }
)


def strict_input_schema(input_type: Any) -> tuple[dict[str, Any], list[str]]:
    """The strict JSON schema of an input model, and its optional fields.

    Strict mode wants every property required: a field with a default becomes
    required but nullable, and the caller drops it when the model sends null.
    """
    if not _is_model(input_type):
        return copy.deepcopy(EMPTY_OBJECT), []
    return strict_json_schema(input_type.model_json_schema())


def strict_json_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A JSON schema of arguments in strict form, and its optional properties.

    Keywords strict mode refuses are dropped or moved into the description;
    check the result with :func:`strict_schema_problems` when the schema was
    not generated by pydantic.
    """
    optional = [
        name for name in schema.get("properties", {}) if name not in schema.get("required", [])
    ]
    return _strict(schema), optional


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in node.items():
        if key in ("properties", "$defs"):
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key in SUPPORTED_KEYWORDS:
            out[key] = _strict(value)
        elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                     "minLength", "maxLength", "minItems", "maxItems", "pattern",
                     "format"):  # fmt: skip
            notes.append(f"{key} {value}")
    if "allOf" in node and len(node["allOf"]) == 1:
        out.update(_strict(node["allOf"][0]))
    if notes:
        out["description"] = "; ".join(filter(None, [out.get("description", ""), *notes]))
    if out.get("type") == "object" or "properties" in out:
        props = out.setdefault("properties", {})
        required = set(node.get("required", []))
        for name, sub in props.items():
            if name not in required:
                props[name] = _nullable(sub)
        out["required"] = list(props)
        out["additionalProperties"] = False
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    variants = schema.get("anyOf")
    if variants is not None:
        if not any(v.get("type") == "null" for v in variants):
            variants.append({"type": "null"})
        return schema
    description = schema.get("description")
    inner = {k: v for k, v in schema.items() if k != "description"}
    wrapped: dict[str, Any] = {"anyOf": [inner, {"type": "null"}]}
    if description:
        wrapped["description"] = description
    return wrapped


def strict_schema_problems(schema: Any, path: str = "$") -> list[str]:
    """Where ``schema`` breaks OpenAI's strict function-schema rules; empty if nowhere."""
    problems: list[str] = []
    if not isinstance(schema, dict):
        return [f"{path}: not an object"]
    for key in schema:
        if key not in SUPPORTED_KEYWORDS:
            problems.append(f"{path}: unsupported keyword {key!r}")
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            problems.append(f"{path}: additionalProperties must be false")
        if sorted(schema.get("required", [])) != sorted(props):
            problems.append(f"{path}: every property must be required")
        for name, sub in props.items():
            problems += strict_schema_problems(sub, f"{path}.{name}")
    for name, sub in schema.get("$defs", {}).items():
        problems += strict_schema_problems(sub, f"{path}.$defs.{name}")
    if "items" in schema:
        problems += strict_schema_problems(schema["items"], f"{path}[]")
    for n, sub in enumerate(schema.get("anyOf", [])):
        problems += strict_schema_problems(sub, f"{path}.anyOf[{n}]")
    if path == "$" and schema.get("type") != "object":
        problems.append("$: a tool's arguments must be an object")
    return problems
