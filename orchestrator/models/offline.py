"""The offline model: a deterministic tool router that needs no API key.

It is not a language model. It reads the latest user message and calls tools:

- by name, for any tool it is given: ``fx_rate base=USD quote=EUR`` or
  ``fx_rate {"base": "USD", "quote": "EUR"}``; values are read as the tool's
  schema types them, so a team's new tool is usable without a hosted model;
- by keyword, for the demo's questions (arithmetic, weather, IP address, Jira
  metrics, stock price, ROI, expenses, tickets; one call per clause, so one
  message can ask for several), when the tool is offered.

Once the tools have answered it writes the reply from their JSON outputs, as
readable key/value text for a tool it has no format for. It passes on what the
instructions say about teams that are unavailable. Anything else gets a list
of the tools it was given. It produces real tool calls through the same agent
loop a hosted model would, so the whole mesh runs and is tested without a
provider.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from agents import ModelResponse, Tool, TResponseInputItem, Usage
from agents.items import TResponseStreamEvent
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

NAME = "offline"

# Capitalised words that are never tickers or project keys.
_NOT_SYMBOLS = {
    "I", "A", "ROI", "IP", "USD", "EUR", "THE", "WHAT", "IS", "OF", "FOR", "AND", "JIRA",
    "HOW", "MY", "ME", "IN", "ON", "AT", "TO", "GET", "SHOW", "TELL", "PRICE", "STOCK",
}  # fmt: skip
_COMPANIES = {
    "apple": "AAPL", "microsoft": "MSFT", "google": "GOOGL", "alphabet": "GOOGL",
    "amazon": "AMZN", "tesla": "TSLA", "nvidia": "NVDA", "meta": "META", "netflix": "NFLX",
}  # fmt: skip
_FUNCS = r"sqrt|abs|round|min|max|log10|log|exp|sin|cos|tan|floor|ceil|pi"
_EXPR_CHUNK = re.compile(rf"(?:{_FUNCS}|[0-9().\s+\-*/^×÷%])+")
_HAS_OPERATION = re.compile(
    rf"\d\s*\)?\s*[-+*/^×÷%]\s*\(?\s*[-+]?\s*(?:\d|{_FUNCS})|(?:{_FUNCS})\s*\("
)
_NUMBER = r"[-+]?\$?\d[\d,]*(?:\.\d+)?\s*[kKmM]?"


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
        items: list[Any] = (
            [{"role": "user", "content": input}] if isinstance(input, str) else plain(input)
        )
        last_user = max((i for i, item in enumerate(items) if _role(item) == "user"), default=-1)
        since = items[last_user + 1 :]
        outputs = [item for item in since if _type(item) == "function_call_output"]
        notes = _unavailable_notes(system_instructions)
        if outputs:
            calls = {item["call_id"]: item for item in since if _type(item) == "function_call"}
            text = "\n".join(_describe(calls.get(o["call_id"]), o) for o in outputs)
            return _response([_message(_with_notes(text, notes))], items)
        user_text = _text(items[last_user]) if last_user >= 0 else ""
        available = {getattr(tool, "name", "") for tool in tools}
        named = named_call(user_text, tools)
        if isinstance(named, str):
            return _response([_message(named)], items)
        planned = [named] if named else [c for c in plan(user_text) if c[0] in available]
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
            earlier = [_text(item) for item in items[:last_user] if _role(item) == "user"]
            if earlier:
                listed = "\n".join(f"{n}. {q}" for n, q in enumerate(earlier, 1))
                return _response([_message(f"So far you asked:\n{listed}")], items)
            return _response([_message("This is your first message in this session.")], items)
        return _response([_message(_with_notes(_help(tools), notes))], items)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("the offline model does not stream")


_UNAVAILABLE = re.compile(r"Unavailable right now: (.+?)\. Their tools", re.DOTALL)


def _unavailable_notes(instructions: str | None) -> str:
    match = _UNAVAILABLE.search(instructions or "")
    if not match:
        return ""
    teams = " ".join(match.group(1).split())
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
            return None  # "weather in Paris" is a question for the keyword routes
        return f"I did not understand {leftover!r}. {_usage(words[0], properties)}"
    args = {}
    for pair in pairs:
        key, raw = pair.group(1), pair.group(2)
        args[key] = _typed(raw, properties.get(key, {}))
    return words[0], args


def _usage(name: str, properties: dict[str, Any]) -> str:
    example = " ".join(f"{key}=..." for key in properties)
    return f"Call it as: {name} {example}".rstrip() + " (or with a JSON object)."


def _typed(raw: str, schema: dict[str, Any]) -> Any:
    """``raw`` as the type the tool's schema gives the argument."""
    if raw[:1] in "\"'" and raw[-1:] == raw[:1] and len(raw) >= 2:
        # Quotes only group words: the inside is taken as typed, except an
        # escaped quote (a Windows path's backslashes stay backslashes).
        return raw[1:-1].replace(f"\\{raw[0]}", raw[0])
    types = {schema.get("type")} | {v.get("type") for v in schema.get("anyOf", [])}
    if "null" in types and raw == "null":
        return None
    for kind, convert in (("integer", int), ("number", float)):
        if kind in types:
            try:
                return convert(raw)
            except ValueError:
                pass
    if "boolean" in types and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if types & {"array", "object"}:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            pass
    return raw


def plan(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Tool calls for a message: at most one per clause, in the order asked."""
    calls: list[tuple[str, dict[str, Any]]] = []
    for clause in _clauses(text):
        call = _route(clause)
        if call and call not in calls:
            calls.append(call)
    return calls


def _clauses(text: str) -> list[str]:
    parts = re.split(r"[?;!\n]|\.\s|\band\b(?!\s+\d)|\balso\b|\bthen\b", text, flags=re.IGNORECASE)
    return [p.strip() for p in parts if p and p.strip()]


def _route(clause: str) -> tuple[str, dict[str, Any]] | None:
    lower = clause.lower()
    if re.search(r"\b(?:create|open|file|raise)\b.*\bticket\b", lower):
        return "create_ticket", _ticket_args(clause)
    if re.search(r"\bexpense\b|\breimburse", lower):
        args = _expense_args(clause)
        if args:
            return "submit_expense", args
    if re.search(r"\broi\b|return on investment|\binvest", lower):
        args = _roi_args(clause)
        if args:
            return "calculate_roi", args
    if re.search(
        r"\bstock\b|\bshare price\b|\bquote\b|\bticker\b|\btrading at\b|\bprice of\b", lower
    ):
        return "stock_price", {"ticker": _ticker(clause)}
    if re.search(r"\bjira\b|\bproject\b.*\b(metrics|issues|tickets|status)\b", lower):
        return "jira_metrics", {"project": _project(clause)}
    if re.search(r"\bip\b|\bip address|\bmy address\b|\bnetwork address", lower):
        return "get_ip", {}
    if re.search(r"\bweather\b|\btemperature\b|\bforecast\b", lower):
        city = _city(clause)
        if city:
            return "weather", {"city": city}
    expression = _expression(clause)
    if expression:
        return "calculator", {"expression": expression}
    return None


def _roi_args(clause: str) -> dict[str, Any] | None:
    rate = re.search(r"(-?\d+(?:\.\d+)?)\s*(?:%|percent)", clause, re.IGNORECASE)
    years = re.search(r"(\d+(?:\.\d+)?)\s*(?:years?|yrs?)\b", clause, re.IGNORECASE)
    if not rate or not years:
        return None
    rest = clause[: min(rate.start(), years.start())] + " " + clause[max(rate.end(), years.end()) :]
    rest = rest.replace(clause[rate.start() : rate.end()], " ")
    rest = rest.replace(clause[years.start() : years.end()], " ")
    principal = re.search(_NUMBER, rest)
    if not principal:
        return None
    return {
        "principal": _amount(principal.group()),
        "annual_rate": float(rate.group(1)),
        "years": float(years.group(1)),
    }


_CURRENCY_SIGNS = {"$": "USD", "€": "EUR", "£": "GBP"}


def _expense_args(clause: str) -> dict[str, Any] | None:
    amount = re.search(r"([$€£])?\s*(\d[\d,]*(?:\.\d+)?)(?:\s*([A-Z]{3}|usd|eur|gbp)\b)?", clause)
    if not amount:
        return None
    sign, number, code = amount.groups()
    currency = _CURRENCY_SIGNS.get(sign or "", "") or (code.upper() if code else "USD")
    rest = re.search(r"\bfor\s+(.+?)\s*[.?!]*$", clause[amount.end() :], re.IGNORECASE)
    return {
        "amount": float(number.replace(",", "")),
        "currency": currency,
        "description": rest.group(1) if rest else "expense",
    }


def _ticket_args(clause: str) -> dict[str, Any]:
    summary = None
    for marker in (r":", r"\babout\b|\bsaying\b", r"\bfor\b"):
        summary = re.search(rf"(?:{marker})\s*(.+?)\s*[.?!]*$", clause, re.IGNORECASE)
        if summary:
            break
    text = summary.group(1) if summary else clause
    project = ""
    for word in re.findall(
        r"\b[A-Z][A-Z0-9]{1,9}\b", clause[: summary.start() if summary else None]
    ):
        if word not in _NOT_SYMBOLS:
            project = word
            break
    return {"project": project, "summary": text, "description": ""}


def _amount(text: str) -> float:
    cleaned = text.replace("$", "").replace(",", "").strip()
    scale = {"k": 1e3, "m": 1e6}.get(cleaned[-1:].lower(), 1.0)
    if scale != 1.0:
        cleaned = cleaned[:-1]
    return float(cleaned) * scale


def _ticker(clause: str) -> str:
    dollar = re.search(r"\$([A-Za-z]{1,5}(?:\.[A-Za-z])?)\b", clause)
    if dollar:
        return dollar.group(1).upper()
    for word in re.findall(r"\b[A-Z]{1,5}(?:\.[A-Z]{1,2})?\b", clause):
        if word not in _NOT_SYMBOLS:
            return word
    for word in re.findall(r"[A-Za-z]+", clause.lower()):
        if word in _COMPANIES:
            return _COMPANIES[word]
    after = re.search(r"\b(?:of|for)\s+(\S+)", clause, re.IGNORECASE)
    return after.group(1).strip("'\".,") if after else clause.split()[-1]


def _project(clause: str) -> str:
    for word in re.findall(r"\b[A-Z][A-Z0-9]{1,9}\b", clause):
        if word not in _NOT_SYMBOLS:
            return word
    after = re.search(r"\b(?:project|for)\s+(\S+)", clause, re.IGNORECASE)
    return after.group(1).strip("'\".,") if after else ""


def _city(clause: str) -> str | None:
    match = re.search(
        r"\b(?:in|for|at)\s+([^\d,;:?!]+?)(?:\s+(?:today|now|right now|tomorrow|please))?\s*[.?!]*$",
        clause,
        re.IGNORECASE,
    )
    return match.group(1).strip() if match else None


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


def _describe(call: dict[str, Any] | None, output_item: dict[str, Any]) -> str:
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
    try:
        return _FORMATS[name](out)
    except (KeyError, TypeError, ValueError):
        return key_values(name, out)


def key_values(name: str, out: dict[str, Any]) -> str:
    """A result the model has no format for, as readable ``key: value`` lines."""
    lines = [f"{name}:"]
    for key, value in out.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"- {key.replace('_', ' ')}: {shown}")
    return "\n".join(lines)


def _money(value: float) -> str:
    return f"{value:.2f}"


_FORMATS = {
    "calculator": lambda o: f"{o['expression']} = {o['value']} (calculator)",
    "weather": lambda o: (
        f"Weather in {o['city']}: {o['conditions']}, {o['temperature_c']} °C, "
        f"wind {o['wind_speed_kmh']} km/h (source: {o['source']})"
    ),
    "get_ip": lambda o: (
        f"The IT worker's host {o['hostname']} has IP address {o['primary']} "
        f"(all addresses: {', '.join(o['addresses'])})"
    ),
    "jira_metrics": lambda o: (
        f"Jira project {o['project']}: {o['total']} issues, {o['open']} open, "
        f"{o['in_progress']} in progress, {o['done']} done; {o['created_last_7_days']} created "
        f"in the last 7 days (source: {o['source']})"
    ),
    "stock_price": lambda o: (
        f"{o['ticker']} is at {o['price']} {o['currency']}"
        + (
            f" ({o['change_percent']:+}% since the previous close)"
            if o.get("change_percent") is not None
            else ""
        )
        + f", as of {o['as_of']} (source: {o['source']})"
    ),
    "create_ticket": lambda o: (
        f"Created ticket {o['key']} in {o['project']}: {o['summary']} (source: {o['source']})"
    ),
    "submit_expense": lambda o: (
        f"Submitted expense claim {o['id']} for {_money(o['amount'])} {o['currency']} "
        f"({o['description']}), status {o['status']} (source: {o['source']})"
    ),
    "calculate_roi": lambda o: (
        f"Investing {_money(o['principal'])} at {o['annual_rate']}% a year for {o['years']:g} years "
        f"grows to {_money(o['final_value'])}: a profit of {_money(o['profit'])}, "
        f"an ROI of {o['roi_percent']}%"
    ),
}


def _help(tools: list[Tool]) -> str:
    lines = ["I am the offline model: I route questions to tools by keyword. I can:"]
    for tool in tools:
        description = getattr(tool, "description", "") or ""
        first = description.split(". ")[0].rstrip(".")
        lines.append(f"- {getattr(tool, 'name', '?')}: {first}")
    lines.append(
        "Call any tool by name with its arguments, e.g. "
        '"calculator expression=2*(3+4)" or \'weather {"city": "Paris"}\'. '
        'I also understand questions such as "What is 15 * 23?" or "Weather in Paris" '
        "for the tools above. Set LLM_MODEL to use a real model."
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


def _response(output: list[Any], items: list[Any]) -> ModelResponse:
    # Rough token counts (4 characters a token) so usage figures are meaningful.
    seen = sum(len(json.dumps(item, default=str)) for item in items) // 4 + 1
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
