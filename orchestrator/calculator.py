"""Safe arithmetic: a small evaluator over Python's AST, never ``eval``.

Accepted: numbers, + - * / // % ** (also ^ for power), unary signs,
parentheses, and the functions and constants in ``_FUNCTIONS``/``_CONSTANTS``.
Anything else (names, attributes, calls to other functions, strings) is
refused with :class:`CalculatorError`. Sizes are capped so that no
expression can exhaust memory or time.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 10_000
MAX_MAGNITUDE = 1e300


class CalculatorError(ValueError):
    """The expression is not safe arithmetic, or has no finite value."""


_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _round(value: float, ndigits: int | None = None) -> float:
    # int rounding to -n digits computes 10**n: cap n so it cannot take forever.
    if ndigits is not None and abs(ndigits) > 400:
        raise CalculatorError("round() takes at most 400 digits")
    return round(value, ndigits)


_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": _round,
    "min": min,
    "max": max,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


def evaluate(expression: str) -> float | int:
    """Value of an arithmetic expression; raises :class:`CalculatorError`."""
    text = expression.strip()
    if not text:
        raise CalculatorError("empty expression")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    text = text.replace("^", "**").replace("×", "*").replace("÷", "/")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from None
    try:
        value = _eval(tree.body)
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except RecursionError:
        raise CalculatorError("expression nested too deeply") from None
    except (OverflowError, ValueError, TypeError) as err:
        if isinstance(err, CalculatorError):
            raise
        raise CalculatorError(f"no finite value: {err}") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CalculatorError("no finite value")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


def _eval(node: ast.expr) -> float:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculatorError(f"only numbers are allowed, not {node.value!r}")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculatorError(f"exponent larger than {MAX_EXPONENT}")
        if isinstance(node.op, ast.Pow) and _too_large_power(left, right):
            raise CalculatorError("result too large")
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
        and len(node.args) <= 4
    ):
        return _bounded(_FUNCTIONS[node.func.id](*(_eval(arg) for arg in node.args)))
    allowed = ", ".join(sorted(_FUNCTIONS))
    raise CalculatorError(
        f"unsupported element {ast.unparse(node)!r}: use numbers, + - * / // % ^, "
        f"parentheses and {allowed}"
    )


def _too_large_power(base: float, exponent: float) -> bool:
    """Whether ``base ** exponent`` exceeds the cap, judged before computing it."""
    return exponent > 0 and abs(base) > 1 and exponent * math.log10(abs(base)) > 301


def _bounded(value: float) -> float:
    if isinstance(value, complex):
        raise CalculatorError("result is not a real number")
    if abs(value) > MAX_MAGNITUDE:
        raise CalculatorError("result too large")
    return value
