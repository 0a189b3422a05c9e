"""IAM policy evaluation, pure: may these policy documents do `action` on `resource`?

Used twice: a Lambda authorizer's `policyDocument` (`execute-api:Invoke` on the method ARN)
and an execution role's policies (`execute-api:ManageConnections` on an `@connections` ARN).
It follows AWS's identity-policy logic (docs/aws-behaviour.md §7.4, from
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny wins, otherwise an Allow is needed, otherwise the answer is an implicit deny.

- ``Action``/``NotAction`` and ``Resource``/``NotResource`` may be a string or a list, with
  ``*`` (any run of characters) and ``?`` (one character); actions match case-insensitively,
  resources case-sensitively.
- A statement with a ``Condition`` is not evaluated: the emulator has no request context for
  condition keys. It neither allows nor denies, and `Decision.skipped` counts it so that a
  refusal can say why.
- ``Principal`` is ignored: these are identity policies (and authorizer output), whose
  principal is implicit.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


class Effect(enum.Enum):
    ALLOWED = "allowed"
    IMPLICIT_DENY = "implicit deny"  # no statement allows
    EXPLICIT_DENY = "explicit deny"  # a statement denies: nothing can override it


@dataclass(frozen=True)
class Decision:
    effect: Effect
    skipped: int = 0  # statements with a Condition, not evaluated

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOWED


@lru_cache(maxsize=512)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcards: ``*`` is any run of characters (``/`` included), ``?`` one character."""
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _any_match(patterns: Any, value: str, ignore_case: bool) -> bool:
    return any(
        isinstance(p, str) and wildcard_match(p, value, ignore_case=ignore_case)
        for p in _as_list(patterns)
    )


def _applies(statement: Mapping[str, Any], key: str, value: str, ignore_case: bool) -> bool:
    """``Action`` or ``NotAction`` (``Resource`` or ``NotResource``) covers ``value``."""
    if key in statement:
        return _any_match(statement[key], value, ignore_case)
    negated = "Not" + key
    if negated in statement:
        return not _any_match(statement[negated], value, ignore_case)
    return False  # a statement without either covers nothing


def statements(document: Mapping[str, Any] | str | None) -> list[Mapping[str, Any]]:
    """The statements of a policy document (JSON text or parsed); ``Statement`` may be one
    object or a list. Anything malformed contributes no statement."""
    if isinstance(document, str):
        document = _parse(document)
    if not isinstance(document, Mapping):
        return []
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping)]


@lru_cache(maxsize=256)
def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def evaluate(
    documents: Iterable[Mapping[str, Any] | str | None], action: str, resource: str
) -> Decision:
    """Whether the documents together allow ``action`` on ``resource``."""
    allowed = False
    skipped = 0
    for document in documents:
        for statement in statements(document):
            if not (_applies(statement, "Action", action, True)
                    and _applies(statement, "Resource", resource, False)):
                continue
            if statement.get("Condition"):
                skipped += 1
                continue
            effect = statement.get("Effect")
            if effect == "Deny":
                return Decision(Effect.EXPLICIT_DENY, skipped)
            allowed = allowed or effect == "Allow"
    return Decision(Effect.ALLOWED if allowed else Effect.IMPLICIT_DENY, skipped)


__all__ = ["Decision", "Effect", "evaluate", "statements", "wildcard_match"]
