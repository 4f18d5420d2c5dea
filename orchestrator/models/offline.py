"""The offline model: a deterministic tool router that needs no API key.

It is not a language model, and it knows no tool. It reads the latest user
message and calls the tools it is given:

- by name: ``<tool> key=value ...`` or ``<tool> {"key": "value"}``; values are
  read as the tool's schema types them;
- by the example phrasings each team publishes with its tools
  (:mod:`orchestrator.models.phrasing`), one call per clause, so one message
  can ask for several; an arithmetic expression goes to a tool that takes just
  an ``expression``.

Once the tools have answered it writes the reply from their JSON outputs, with
each tool's reply template, or as readable key/value text for a tool without
one. Hints and the teams that are unavailable reach it as data in the model
settings (:mod:`orchestrator.models.hints`), not from the prompt, which it
does not read. Anything else gets a list of the tools it was given. It
produces real tool calls through the same agent loop a hosted model would, so
the whole mesh runs and is tested without a provider.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from agents import ModelResponse, Tool, TResponseInputItem, Usage
from agents.items import TResponseStreamEvent
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from meshkit.toolkit.hints import ToolHints, render
from orchestrator.models.hints import split_hints
from orchestrator.models.phrasing import Call, route, typed

NAME = "offline"

_FUNCS = r"sqrt|abs|round|min|max|log10|log|exp|sin|cos|tan|floor|ceil|pi"
_EXPR_CHUNK = re.compile(rf"(?:{_FUNCS}|[0-9().\s+\-*/^×÷%])+")
_HAS_OPERATION = re.compile(
    rf"\d\s*\)?\s*[-+*/^×÷%]\s*\(?\s*[-+]?\s*(?:\d|{_FUNCS})|(?:{_FUNCS})\s*\("
)


class OfflineModel(Model):
    """Deterministic keyword router; see the module docstring."""

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: Any,
        tools: list[Tool],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        items: list[Any] = [{"role": "user", "content": input}] if isinstance(input, str) else input
        # Only the latest user message and what followed it are read (earlier
        # user messages only when asked about): copy just those.
        last_user = next(
            (i for i in range(len(items) - 1, -1, -1) if _role(items[i]) == "user"), -1
        )
        since = plain(items[last_user + 1 :])
        outputs = [item for item in since if _type(item) == "function_call_output"]
        _, hints = split_hints(model_settings)
        notes = _unavailable_notes(hints.unavailable)
        if outputs:
            calls = {item["call_id"]: item for item in since if _type(item) == "function_call"}
            text = "\n".join(_describe(calls.get(o["call_id"]), o, hints.tools) for o in outputs)
            return _response([_message(_with_notes(text, notes))], items)
        user_text = _text(plain(items[last_user])) if last_user >= 0 else ""
        named = named_call(user_text, tools)
        if isinstance(named, str):
            return _response([_message(named)], items)
        planned = [named] if named else plan(user_text, tools, hints.tools)
        if planned:
            return _response(
                [
                    ResponseFunctionToolCall(
                        type="function_call",
                        id=f"fc_{n}",
                        call_id=f"call_{len(items)}_{n}",
                        name=name,
                        arguments=json.dumps(args),
                        status="completed",
                    )
                    for n, (name, args) in enumerate(planned)
                ],
                items,
            )
        if _asks_about_history(user_text):
            earlier = [_text(plain(item)) for item in items[:last_user] if _role(item) == "user"]
            if earlier:
                listed = "\n".join(f"{n}. {q}" for n, q in enumerate(earlier, 1))
                return _response([_message(f"So far you asked:\n{listed}")], items)
            return _response([_message("This is your first message in this session.")], items)
        return _response([_message(_with_notes(_help(tools, hints.tools), notes))], items)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("the offline model does not stream")


def _unavailable_notes(unavailable: Mapping[str, str]) -> str:
    if not unavailable:
        return ""
    teams = "; ".join(f"team {team} ({why})" for team, why in unavailable.items())
    return f"Unavailable right now, so I could not use their tools: {teams}. Try again later."


def _with_notes(text: str, notes: str) -> str:
    return f"{text}\n{notes}" if notes else text


_KEY_VALUE = re.compile(r"""([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S+)""")


def named_call(text: str, tools: list[Tool]) -> tuple[str, dict[str, Any]] | str | None:
    """A call of a tool named at the start of ``text``, with its arguments.

    Returns the call, or a message saying what is wrong with the arguments,
    or None when the text does not start with a tool's name.
    """
    words = text.strip().split(None, 1)
    if not words:
        return None
    by_name = {getattr(tool, "name", ""): tool for tool in tools}
    tool = by_name.get(words[0])
    if tool is None:
        return None
    rest = words[1].strip() if len(words) > 1 else ""
    schema = getattr(tool, "params_json_schema", {}) or {}
    properties: dict[str, Any] = schema.get("properties", {})
    if rest.startswith("{"):
        try:
            args = json.loads(rest)
        except json.JSONDecodeError as err:
            return f"The arguments of {words[0]} are not valid JSON ({err.msg}). {_usage(words[0], properties)}"
        if not isinstance(args, dict):
            return (
                f"The arguments of {words[0]} must be a JSON object. {_usage(words[0], properties)}"
            )
        return words[0], args
    pairs = list(_KEY_VALUE.finditer(rest))
    leftover = _KEY_VALUE.sub("", rest).strip()
    if leftover:
        if not pairs:
            return None  # a tool's name followed by words is a question, not a call
        return f"I did not understand {leftover!r}. {_usage(words[0], properties)}"
    args = {}
    for pair in pairs:
        key, raw = pair.group(1), pair.group(2)
        args[key] = typed(raw, properties.get(key, {}))
    return words[0], args


def _usage(name: str, properties: dict[str, Any]) -> str:
    example = " ".join(f"{key}=..." for key in properties)
    return f"Call it as: {name} {example}".rstrip() + " (or with a JSON object)."


def plan(text: str, tools: list[Tool], hints: Mapping[str, ToolHints]) -> list[Call]:
    """Tool calls for a message: at most one per clause, in the order asked."""
    schemas = {getattr(t, "name", ""): getattr(t, "params_json_schema", {}) or {} for t in tools}
    arithmetic = next((name for name, schema in schemas.items() if _takes_expression(schema)), None)
    calls: list[Call] = []
    for clause in _clauses(text):
        call = route(clause, schemas, hints)
        if call is None and arithmetic is not None:
            expression = _expression(clause)
            call = (arithmetic, {"expression": expression}) if expression else None
        if call and call not in calls:
            calls.append(call)
    return calls


def _clauses(text: str) -> list[str]:
    parts = re.split(r"[?;!\n]|\.\s|\band\b(?!\s+\d)|\balso\b|\bthen\b", text, flags=re.IGNORECASE)
    return [p.strip() for p in parts if p and p.strip()]


def _takes_expression(schema: dict[str, Any]) -> bool:
    return list(schema.get("properties", {})) == ["expression"]


def _expression(clause: str) -> str | None:
    text = re.sub(r"(?<=\d)\s*[xX]\s*(?=\d)", " * ", clause)
    candidates = [m.group().strip() for m in _EXPR_CHUNK.finditer(text)]
    candidates = [c.strip(" .") for c in candidates if _HAS_OPERATION.search(c)]
    return max(candidates, key=len) if candidates else None


def _asks_about_history(text: str) -> bool:
    return bool(
        re.search(
            r"what (?:did|have) i (?:just )?(?:ask|said|say)|my (?:previous|last|earlier) "
            r"(?:question|message)s?|what have we (?:talked|discussed)",
            text,
            re.IGNORECASE,
        )
    )


def _describe(
    call: dict[str, Any] | None, output_item: dict[str, Any], hints: Mapping[str, ToolHints]
) -> str:
    name = call.get("name", "tool") if call else "tool"
    raw = output_item.get("output")
    try:
        out = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return f"{name}: {raw}"
    if isinstance(out, dict) and "error" in out and len(out) == 1:
        return f"I could not run {name}: {out['error']}"
    if not isinstance(out, dict):
        return f"{name}: {raw}"
    hint = hints.get(name)
    reply = render(hint.reply, out) if hint and hint.reply else None
    return reply or key_values(name, out)


def key_values(name: str, out: dict[str, Any]) -> str:
    """A result the model has no format for, as readable ``key: value`` lines."""
    lines = [f"{name}:"]
    for key, value in out.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"- {key.replace('_', ' ')}: {shown}")
    return "\n".join(lines)


def _help(tools: list[Tool], hints: Mapping[str, ToolHints]) -> str:
    lines = ["I am the offline model: I route questions to tools by their teams' examples. I can:"]
    for tool in tools:
        name = getattr(tool, "name", "?")
        description = getattr(tool, "description", "") or ""
        line = f"- {name}: {description.split('. ')[0].rstrip('.')}"
        hint = hints.get(name)
        if hint and hint.examples:
            line += f' (say "{hint.examples[0]}")'
        lines.append(line)
    lines.append(
        "Call any tool by name with its arguments, as name key=value ... or with a JSON "
        "object after its name. Set LLM_MODEL to use a real model."
    )
    return "\n".join(lines)


def _message(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg_offline",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def _json_default(value: Any) -> Any:
    copied = plain(value)
    return copied if copied is not value else str(value)


_JSON_TEXT = json.JSONEncoder(default=_json_default)
"""JSON text of input items as :func:`plain` copies them, with one encoder for
every call (``json.dumps`` with options builds one per call)."""


def _items_chars(items: list[Any]) -> int:
    """The characters of each item's JSON text, summed: the list's text, one
    call, less its brackets and the ", " between items."""
    if not items:
        return 0
    return len(_JSON_TEXT.encode(items)) - 2 - 2 * (len(items) - 1)


def _response(output: list[Any], items: list[Any]) -> ModelResponse:
    # Rough token counts (4 characters a token) so usage figures are meaningful.
    seen = _items_chars(items) // 4 + 1
    produced = sum(len(o.model_dump_json()) for o in output) // 4 + 1
    return ModelResponse(
        output=output,
        usage=Usage(
            requests=1, input_tokens=seen, output_tokens=produced, total_tokens=seen + produced
        ),
        response_id=None,
    )


def plain(value: Any) -> Any:
    """A JSON-like copy of model input items.

    Items arrive in the model activity validated against the SDK's TypedDicts,
    where ``Iterable`` fields are one-shot iterators: copy them into lists
    before reading them more than once.
    """
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return value
    if hasattr(value, "model_dump"):
        return plain(value.model_dump())
    try:
        return [plain(v) for v in value]
    except TypeError:
        return value


def _role(item: Any) -> str | None:
    return item.get("role") if isinstance(item, dict) else getattr(item, "role", None)


def _type(item: Any) -> str | None:
    return item.get("type") if isinstance(item, dict) else getattr(item, "type", None)


def _text(item: Any) -> str:
    content = item.get("content") if isinstance(item, dict) else getattr(item, "content", "")
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        text = part.get("text") if isinstance(part, dict) else getattr(part, "text", None)
        if text:
            parts.append(text)
    return " ".join(parts)
