"""How a tool is asked for and answered, for models that do not understand language.

A team declares, beside its contract, a :class:`ToolHints` per operation: a few
example phrasings of a request, with ``{field}`` placeholders for the
arguments, and a reply template over the fields of the tool's result. The
catalog carries them, so the offline model (a deterministic router, used when
there is no API key and by most tests) can route a new team's tool from what
the team publishes, without the orchestrator knowing the tool. A hosted model
never sees them: it reads the tool's description and schema.

Templates are ``str.format`` fields restricted to plain names and a small
number format (sign, grouping, precision, type); there is no attribute or item
access and no evaluation, because a catalog is data from another team.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_FORMAT = re.compile(r"[+\- ]?,?(?:\.\d{1,2})?[dfg%]?")


class ToolHints(BaseModel):
    """Example requests for a tool and how to word its answer."""

    examples: list[str] = Field(
        default_factory=list,
        description="How a user may ask for the tool, with {field} placeholders for its "
        "arguments, e.g. 'What is the stock price of {ticker}?'. More than one phrasing "
        "helps; the words outside placeholders say which tool is meant.",
    )
    reply: list[str] = Field(
        default_factory=list,
        description="Reply template over the result's fields, in parts joined as they are: "
        "'{ticker} is at {price} {currency}'. A part naming a field that is missing or null "
        "is left out, so optional fields go in parts of their own. Fields take a number "
        "format such as {amount:.2f}.",
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments an example may leave out, with the value to send, "
        "e.g. {'currency': 'USD'}.",
    )


class HintError(ValueError):
    """A tool's hints do not fit its input or output."""


def fields_of(template: str, *, formats: bool) -> list[str]:
    """The field names a template uses; raises :class:`HintError` on anything else
    than a plain name (with a number format when ``formats``)."""
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise HintError(f"{template!r}: {err}") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not _NAME.fullmatch(name):
            raise HintError(f"{template!r}: {{{name}}} is not a plain field name")
        if conversion or (spec and not (formats and _NUMBER_FORMAT.fullmatch(spec))):
            raise HintError(f"{template!r}: {{{name}}} has a format this template cannot use")
        names.append(name)
    return names


def check_hints(
    tool: str,
    hints: ToolHints,
    input_properties: Mapping[str, Any],
    optional: list[str],
    output_properties: Mapping[str, Any] | None,
) -> None:
    """Raise :class:`HintError` unless every example can make a whole call and
    every reply field is a field of the result."""
    needed = set(input_properties) - set(optional)
    for key in hints.defaults:
        if key not in input_properties:
            raise HintError(f"{tool}: default {key!r} is not an argument")
    for example in hints.examples:
        named = fields_of(example, formats=False)
        unknown = [name for name in named if name not in input_properties]
        if unknown:
            raise HintError(f"{tool}: {example!r} names no argument {', '.join(unknown)}")
        missing = needed - set(named) - set(hints.defaults)
        if missing:
            raise HintError(
                f"{tool}: {example!r} leaves out {', '.join(sorted(missing))}; "
                "name it or give it a default"
            )
    for part in hints.reply:
        named = fields_of(part, formats=True)
        if output_properties is not None:
            unknown = [name for name in named if name not in output_properties]
            if unknown:
                raise HintError(f"{tool}: reply {part!r} names no result field {unknown[0]}")


def render(parts: list[str], output: Mapping[str, Any]) -> str | None:
    """The reply for ``output``, or None when the template does not fit it."""
    text = []
    for part in parts:
        try:
            parsed = list(string.Formatter().parse(part))
        except ValueError:
            return None
        if any(name is not None and output.get(name) is None for _, name, _, _ in parsed):
            continue
        pieces = []
        for literal, name, spec, conversion in parsed:
            pieces.append(literal)
            if name is None:
                continue
            if conversion or not _NAME.fullmatch(name):
                return None
            try:
                pieces.append(_shown(output[name], spec or ""))
            except (TypeError, ValueError):
                return None
        text.append("".join(pieces))
    return "".join(text) or None


def _shown(value: Any, spec: str) -> str:
    if spec:
        if not _NUMBER_FORMAT.fullmatch(spec) or isinstance(value, bool):
            raise ValueError(spec)
        return format(value, spec)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(v if isinstance(v, str) else json.dumps(v) for v in value)
    if isinstance(value, bool | dict) or value is None:
        return json.dumps(value, ensure_ascii=False)
    return str(value)
