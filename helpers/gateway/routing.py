"""Route selection: which route key an incoming text message goes to (docs/aws-behaviour.md §2).

The route selection expression language (docs/aws-behaviour.md §2.2, D-sel):

- a variable is prefixed with ``$``; the only source WebSocket route selection offers is
  ``request.body`` followed by a JSONPath over the parsed JSON message:
  ``$request.body.a.b``, ``$request.body['a']``, ``$request.body.items[0]``;
- ``${...}`` braces mark where a variable ends, so variables and literal text mix:
  ``${request.body.service}/${request.body.action}`` gives ``chat/join``;
- evaluation happens once (a value containing ``$`` is not evaluated again);
- ``\\$`` is a literal dollar sign, so ``\\$default`` is the text ``$default``;
- anything else is literal text: the expression ``action`` always gives ``"action"``.

A path that matches nothing gives ``""`` and non-string values are stringified
(docs/aws-behaviour.md §2.2). AWS documents only arrays (``"[item1, item2]"``, which is how
Java prints a list); the rest of this module's choices follow the same Java-like printing and
are marked [INFERRED] in `stringify`.

An expression this module cannot understand (an unterminated ``${``, a ``$`` variable other
than ``request.body``, JSONPath filters or wildcards) makes `compile_expression` raise
`ValueError`; `select_route` then falls back to ``$default``, as AWS does for "an expression
that cannot be evaluated" (docs/aws-behaviour.md §2.3 step 3, D-routes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from functools import lru_cache
from typing import Any

DEFAULT_ROUTE = "$default"

#: A compiled expression: parsed JSON body -> route key.
Evaluator = Callable[[Any], str]

_MISSING = object()
_BODY_PREFIX = "request.body"
# One JSONPath step after `request.body`: `.name`, `['name']`, `["name"]`, `[3]`.
_STEP = re.compile(
    r"""\.(?P<name>[^.\[\]'"{}$\s]+)"""
    r"""|\[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]"""
    r"""|\[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]"""
    r"""|\[\s*(?P<index>-?\d+)\s*\]"""
)
# Where an unbraced `$request.body...` variable ends: its steps use only these characters
# (plus bracket steps), so `$request.body.version-beta` is `version` followed by `-beta`.
_UNBRACED_STEP = re.compile(
    r"""\.(?P<name>[A-Za-z0-9_]+)"""
    r"""|\[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]"""
    r"""|\[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]"""
    r"""|\[\s*(?P<index>-?\d+)\s*\]"""
)

Step = str | int


def stringify(value: Any) -> str:
    """How a selected JSON value becomes a route key (docs/aws-behaviour.md §2.2: "stringified").

    - string: itself;
    - array: ``"[item1, item2]"``, items stringified the same way (the documented example);
    - integer: its decimal text, ``1`` -> ``"1"`` [INFERRED];
    - other number: Python's shortest round-trip text, ``1.5`` -> ``"1.5"``,
      ``1.0`` -> ``"1.0"`` [INFERRED];
    - boolean: ``"true"`` / ``"false"``, the JSON (and Java) spelling [INFERRED];
    - null: ``""``, i.e. treated like a path that matched nothing [INFERRED];
    - object: Java map printing, ``{"a": 1}`` -> ``"{a=1}"`` [INFERRED].

    AWS advises selecting scalars (D-routes); a lesson should not rely on the [INFERRED] cases.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(stringify(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={stringify(v)}" for k, v in value.items()) + "}"
    return str(value)


def _unescape(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted)


def _step_value(match: re.Match[str]) -> Step:
    if match["name"] is not None:
        return match["name"]
    if match["sq"] is not None:
        return _unescape(match["sq"])
    if match["dq"] is not None:
        return _unescape(match["dq"])
    return int(match["index"])


def _parse_path(variable: str) -> tuple[Step, ...]:
    """Steps of a braced variable's JSONPath, e.g. ``request.body.a['b']`` -> ``("a", "b")``."""
    if not variable.startswith(_BODY_PREFIX):
        raise ValueError(
            f"unsupported variable ${{{variable}}}: route selection can only read "
            "request.body (docs/aws-behaviour.md §2.2)"
        )
    rest = variable[len(_BODY_PREFIX) :]
    steps: list[Step] = []
    pos = 0
    while pos < len(rest):
        match = _STEP.match(rest, pos)
        if match is None:
            raise ValueError(f"unsupported JSONPath in ${{{variable}}} at {rest[pos:]!r}")
        steps.append(_step_value(match))
        pos = match.end()
    return tuple(steps)


def _resolve(body: Any, steps: tuple[Step, ...]) -> str:
    value = body
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return ""
            value = value[step]
        else:
            if not isinstance(value, dict):
                return ""
            value = value.get(step, _MISSING)
            if value is _MISSING:
                return ""
    return stringify(value)


def _parse(expression: str) -> list[str | tuple[Step, ...]]:
    """Split an expression into literal strings and variable paths."""
    parts: list[str | tuple[Step, ...]] = []
    literal: list[str] = []
    i, n = 0, len(expression)
    while i < n:
        ch = expression[i]
        if ch == "\\" and i + 1 < n and expression[i + 1] == "$":
            literal.append("$")
            i += 2
            continue
        if ch != "$":
            literal.append(ch)
            i += 1
            continue
        if literal:
            parts.append("".join(literal))
            literal = []
        if expression.startswith("${", i):
            end = expression.find("}", i + 2)
            if end < 0:
                raise ValueError(f"unterminated '${{' in route selection expression {expression!r}")
            parts.append(_parse_path(expression[i + 2 : end].strip()))
            i = end + 1
            continue
        if not expression.startswith("$" + _BODY_PREFIX, i):
            raise ValueError(
                f"unsupported variable in {expression!r} at {expression[i:]!r}: use "
                "$request.body.<path>, or \\$ for a literal dollar sign "
                "(docs/aws-behaviour.md §2.2)"
            )
        i += 1 + len(_BODY_PREFIX)
        steps: list[Step] = []
        while (match := _UNBRACED_STEP.match(expression, i)) is not None:
            steps.append(_step_value(match))
            i = match.end()
        parts.append(tuple(steps))
    if literal:
        parts.append("".join(literal))
    return parts


@lru_cache(maxsize=256)
def compile_expression(expression: str) -> Evaluator:
    """Compile a route selection expression once; the result maps a parsed body to a key.

    Cached because the gateway selects a route for every message (docs/aws-behaviour.md §2.3).
    Raises `ValueError` for expressions outside the language described in the module docstring.
    """
    parts = _parse(expression)
    if all(isinstance(p, str) for p in parts):
        constant = "".join(parts)  # type: ignore[arg-type]
        return lambda body: constant
    if len(parts) == 1:
        (steps,) = parts
        return lambda body: _resolve(body, steps)  # type: ignore[arg-type]
    compiled = tuple(parts)
    return lambda body: "".join(p if isinstance(p, str) else _resolve(body, p) for p in compiled)


def evaluate(expression: str, body: Any) -> str:
    """Evaluate a route selection expression on a parsed JSON body (docs/aws-behaviour.md §2.2)."""
    return compile_expression(expression)(body)


@lru_cache(maxsize=256)
def _compiled_or_none(expression: str) -> Evaluator | None:
    try:
        return compile_expression(expression)
    except ValueError:
        return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One decoder for every message: json.loads(parse_constant=...) would build a new one each time.
_decode = json.JSONDecoder(parse_constant=_reject_constant).decode


def select_route(expression: str, text: str, route_keys: Collection[str]) -> str | None:
    """The route key for one text message, or None: send the Forbidden frame
    (docs/aws-behaviour.md §2.3).

    Steps 3-5 of §2.3: text that is not JSON, or JSON that is not an object, goes to
    ``$default``; otherwise the expression's value must equal a route key exactly
    (case-sensitive), else ``$default``; None when ``$default`` is not deployed either.
    ``NaN``/``Infinity`` are not JSON (Python's `json` accepts them; AWS's parser would not).
    """
    default = DEFAULT_ROUTE if DEFAULT_ROUTE in route_keys else None
    evaluator = _compiled_or_none(expression)
    if evaluator is None:
        return default
    try:
        body = _decode(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; deep nesting
        return default
    if not isinstance(body, dict):
        return default
    key = evaluator(body)
    if key in route_keys:
        return key
    return default
