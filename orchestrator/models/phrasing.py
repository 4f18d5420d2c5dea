"""Which tool a sentence asks for, from the example phrasings its team published.

The offline model knows no tool. Each tool's hints (``meshkit.toolkit.hints``)
give phrasings such as ``"What is the ROI on {principal} at {annual_rate}% for
{years} years?"``. A clause asks for the tool whose phrasing shares the most of
its words (the words that are not filler), when every argument the phrasing
names can be read from the clause:

- a number argument (its schema says number or integer) is the number the
  phrasing puts it next to: followed by the same word or sign (``5%``,
  ``10 years``), else after the same word (``on 10000``), else the next one
  left; so the order of the clause may differ from the phrasing's;
- any other argument is the text between the words around it in the
  phrasing (``in {project}: {summary}``), up to the end of the clause when
  nothing follows it;
- an argument the clause does not give takes the phrasing's default, if any.

A tool without phrasings (imported from elsewhere, say an MCP server's
``get_current_time``) is asked for when the clause has every word of its name
and it needs no argument.
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshkit.toolkit.hints import ToolHints

Call = tuple[str, dict[str, Any]]

NUMBER = re.compile(r"(?<![\w.])[-+]?[$€£]?\d[\d,]*(?:\.\d+)?(?:[kKmM]\b)?")
_TOKEN = re.compile(r"\w+(?:['.]\w+)*|[^\w\s]")
_FILLER = {
    "a", "about", "an", "and", "any", "are", "at", "be", "by", "can", "do", "does", "for",
    "from", "get", "give", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its",
    "many", "me", "much", "my", "of", "on", "please", "s", "saying", "show", "some", "tell",
    "that", "the", "this", "to", "was", "what", "where", "which", "with", "you", "your",
}  # fmt: skip
_SAME = {"percent": "%", "pct": "%", "yrs": "year", "yr": "year", "what's": "what"}
_TRAILING = re.compile(r"(?:\s+(?:right now|today|now|please))+$", re.IGNORECASE)


def norm(word: str) -> str:
    """A word as phrasings and clauses are compared: lower case, singular, one spelling."""
    word = word.lower()
    word = _SAME.get(word, word)
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return _SAME.get(word, word)


@dataclass(frozen=True)
class _Token:
    word: str
    start: int
    end: int


def _tokens(text: str) -> list[_Token]:
    return [_Token(norm(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(text)]


@dataclass
class _Phrasing:
    """An example phrasing as literal words and placeholders, in order."""

    items: list[str | tuple[str]]  # a literal word, or (argument name,)
    keywords: set[str] = field(default_factory=set)

    @classmethod
    @functools.lru_cache(maxsize=4096)
    def of(cls, example: str) -> _Phrasing:
        """The phrasing of an example; parsed once per example and worker, since
        every model call of every session routes over the same catalogs' hints.
        Callers only read it."""
        items: list[str | tuple[str]] = []
        for literal, name, _spec, _conversion in string.Formatter().parse(example):
            items += [t.word for t in _tokens(literal)]
            if name:
                items.append((name,))
        words = {i for i in items if isinstance(i, str) and i[0].isalnum()}
        return cls(items, words - _FILLER)

    def neighbours(self, index: int) -> tuple[str | None, str | None]:
        before = self.items[index - 1] if index > 0 else None
        after = self.items[index + 1] if index + 1 < len(self.items) else None
        return (
            before if isinstance(before, str) else None,
            after if isinstance(after, str) else None,
        )


def route(
    clause: str, tools: Mapping[str, dict[str, Any]], hints: Mapping[str, ToolHints]
) -> Call | None:
    """The call a clause asks for, or None; ``tools`` maps a tool's name to its
    argument schema."""
    parsed = _Clause.of(clause)
    best: tuple[tuple[float, int, int], Call] | None = None
    for name, schema in tools.items():
        hint = hints.get(name)
        for score, args in _matches(parsed, name, schema, hint):
            if best is None or score > best[0]:
                best = (score, (name, args))
    return best[1] if best else None


@dataclass(frozen=True)
class _Clause:
    """A clause read once: its words and numbers, shared by every phrasing it is
    compared with."""

    text: str
    tokens: list[_Token]
    words: set[str]
    numbers: list[re.Match[str]]

    @classmethod
    def of(cls, text: str) -> _Clause:
        tokens = _tokens(text)
        return cls(text, tokens, {t.word for t in tokens}, list(NUMBER.finditer(text)))


def _matches(
    clause: _Clause,
    name: str,
    schema: dict[str, Any],
    hint: ToolHints | None,
) -> list[tuple[tuple[float, int, int], dict[str, Any]]]:
    properties: dict[str, Any] = schema.get("properties", {})
    if hint is None or not hint.examples:
        keywords = {norm(w) for w in name.split("_")} - _FILLER
        if keywords and keywords <= clause.words and all(_nullable(p) for p in properties.values()):
            return [((1.0, len(keywords), 0), {})]
        return []
    found = []
    for example in hint.examples:
        phrasing = _Phrasing.of(example)
        shared = phrasing.keywords & clause.words
        if not shared or len(shared) * 2 < len(phrasing.keywords):
            continue
        args = _arguments(clause, phrasing, properties, hint.defaults)
        if args is None:
            continue
        read = sum(1 for i in phrasing.items if isinstance(i, tuple) and i[0] in args[1])
        score = (len(shared) / len(phrasing.keywords), len(shared), read)
        found.append((score, {**hint.defaults, **args[0]}))
    return found


def _arguments(
    parsed: _Clause, phrasing: _Phrasing, properties: dict[str, Any], defaults: Mapping[str, Any]
) -> tuple[dict[str, Any], set[str]] | None:
    """The arguments read from the clause (and which were read), or None when a
    placeholder without a default cannot be read."""
    clause, tokens, numbers = parsed.text, parsed.tokens, parsed.numbers
    places = [(i, item[0]) for i, item in enumerate(phrasing.items) if isinstance(item, tuple)]
    numeric = [(i, n) for i, n in places if _kinds(properties.get(n, {})) & {"number", "integer"}]
    numbers_named = {name for _, name in numeric}
    spans: dict[str, tuple[int, int]] = {}
    values: dict[str, Any] = {}
    used: set[int] = set()
    for side in (1, 0):  # the word after the number says most (5%, 10 years), then the one before
        for index, name in numeric:
            word = phrasing.neighbours(index)[side]
            if name in values or word is None:
                continue
            for k, match in enumerate(numbers):
                if k not in used and _beside(tokens, match, side) == word:
                    used.add(k)
                    values[name], spans[name] = match.group(), match.span()
                    break
    for _, name in numeric:
        rest = [k for k in range(len(numbers)) if k not in used]
        if name not in values and rest:
            used.add(rest[0])
            values[name], spans[name] = numbers[rest[0]].group(), numbers[rest[0]].span()
    cursor = 0
    for index, name in places:
        if (index, name) in numeric:
            continue
        span = _text_span(clause, tokens, phrasing, index, cursor, spans)
        if span is not None:
            text = _cleaned(clause[span[0] : span[1]])
            if text:
                values[name], spans[name] = text, span
                cursor = span[1]
    typed: dict[str, Any] = {}
    for _, name in places:
        if name not in values:
            if name in defaults:
                continue
            return None
        value = typed_value(values[name], properties.get(name, {}), number=name in numbers_named)
        if value is None:
            return None
        typed[name] = value
    return typed, set(typed)


def _text_span(
    clause: str,
    tokens: list[_Token],
    phrasing: _Phrasing,
    index: int,
    cursor: int,
    spans: dict[str, tuple[int, int]],
) -> tuple[int, int] | None:
    before, after = phrasing.neighbours(index)
    previous = phrasing.items[index - 1] if index > 0 else None
    following = phrasing.items[index + 1] if index + 1 < len(phrasing.items) else None
    if before is not None:
        anchor = next((t for t in tokens if t.start >= cursor and t.word == before), None)
        if anchor is None:
            return None
        start = anchor.end
    elif isinstance(previous, tuple) and previous[0] in spans:
        start = spans[previous[0]][1]
    elif previous is None:
        start = cursor
    else:
        return None
    end = len(clause)
    if after is not None:
        stop = next((t for t in tokens if t.start >= start and t.word == after), None)
        if stop is not None:
            end = stop.start
    elif isinstance(following, tuple) and following[0] in spans and spans[following[0]][0] >= start:
        end = spans[following[0]][0]
    if previous is None and after is not None:
        # A phrasing that starts with its argument ("{ticker} stock"): the word before the anchor.
        words = clause[start:end].split()
        return (end - len(words[-1]) - 1, end) if words else None
    return start, end


def _beside(tokens: list[_Token], match: re.Match[str], side: int) -> str | None:
    if side:
        return next((t.word for t in tokens if t.start >= match.end()), None)
    before = [t.word for t in tokens if t.end <= match.start()]
    return before[-1] if before else None


def _cleaned(text: str) -> str:
    text = _TRAILING.sub("", text.strip())
    return text.strip(" \t'\"`.,;:!?")


def _kinds(schema: dict[str, Any]) -> set[str]:
    kinds: set[str] = set()
    for node in (schema, *schema.get("anyOf", [])):
        kind = node.get("type")
        kinds.update(kind if isinstance(kind, list) else [kind] if kind else [])
    return kinds


def _nullable(schema: dict[str, Any]) -> bool:
    return "null" in _kinds(schema)


def typed_value(raw: str, schema: dict[str, Any], *, number: bool = False) -> Any:
    """``raw`` as the type the tool's schema gives the argument; None when it
    cannot be (a number argument that is not a number)."""
    kinds = _kinds(schema)
    if number:
        cleaned = raw.lstrip("+").lstrip("$€£").replace(",", "").strip()
        scale = {"k": 1e3, "m": 1e6}.get(cleaned[-1:].lower(), 1.0)
        cleaned = cleaned[:-1] if scale != 1.0 else cleaned
        try:
            value = float(cleaned.lstrip("$€£")) * scale
        except ValueError:
            return None
        if "number" not in kinds:
            return int(value) if value.is_integer() else None
        return value
    return typed(raw, schema)


def typed(raw: str, schema: dict[str, Any]) -> Any:
    """``raw`` as the type the tool's schema gives the argument."""
    if raw[:1] in "\"'" and raw[-1:] == raw[:1] and len(raw) >= 2:
        # Quotes only group words: the inside is taken as typed, except an
        # escaped quote (a Windows path's backslashes stay backslashes).
        return raw[1:-1].replace(f"\\{raw[0]}", raw[0])
    kinds = _kinds(schema)
    if "null" in kinds and raw == "null":
        return None
    for kind, convert in (("integer", int), ("number", float)):
        if kind in kinds:
            try:
                return convert(raw)
            except ValueError:
                pass
    if "boolean" in kinds and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if kinds & {"array", "object"}:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            pass
    return raw
