"""IAM policy evaluation, pure: may these policy documents do `action` on `resource`?

Used three times: a Lambda authorizer's `policyDocument` (`execute-api:Invoke` on the method
ARN), an execution role's policies (`execute-api:ManageConnections` on an `@connections` ARN),
and the signer's policies when `$connect` uses AWS_IAM (`execute-api:Invoke`).
It follows AWS's identity-policy logic (docs/aws-behaviour.md §7.4, from
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny wins, otherwise an Allow is needed, otherwise the answer is an implicit deny.

- ``Action``/``NotAction`` and ``Resource``/``NotResource`` may be a string or a list, with
  ``*`` (any run of characters) and ``?`` (one character); actions match case-insensitively,
  resources case-sensitively.
- A statement with a ``Condition`` applies only when its condition holds for the request
  context (`conditions_hold`; docs/aws-behaviour.md §7.4, from
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
  and .../reference_policies_multi-value-conditions.html). `Decision.unmet` counts the
  statements that matched but whose condition did not hold, so a refusal can say why.
- ``Principal`` is ignored: these are identity policies (and authorizer output), whose
  principal is implicit.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Mapping
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
    unmet: int = 0  # statements that matched the action and resource, not their Condition

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


#: A request's condition keys (lowercased names) and values: a string, or a list of strings
#: for a multivalued key. A key the request does not carry is absent.
Context = Mapping[str, "str | list[str]"]


def evaluate(
    documents: Iterable[Mapping[str, Any] | str | None], action: str, resource: str,
    context: Context | Callable[[], Context] | None = None,
) -> Decision:
    """Whether the documents together allow ``action`` on ``resource`` in ``context`` (or
    what calling it returns: built only if a statement has a ``Condition``)."""
    allowed = False
    unmet = 0
    for document in documents:
        for statement in statements(document):
            if not (_applies(statement, "Action", action, True)
                    and _applies(statement, "Resource", resource, False)):
                continue
            condition = statement.get("Condition")
            if condition and callable(context):
                context = context()
            if condition and not conditions_hold(condition, context or {}):
                unmet += 1
                continue
            effect = statement.get("Effect")
            if effect == "Deny":
                return Decision(Effect.EXPLICIT_DENY, unmet)
            allowed = allowed or effect == "Allow"
    return Decision(Effect.ALLOWED if allowed else Effect.IMPLICIT_DENY, unmet)


# Conditions ---------------------------------------------------------------------------------
#
# A Condition block is {operator: {key: value or [values]}}. Operators AND together, keys
# within an operator AND together, a key's values OR together, or NOR for a negated operator.
# A key absent from the request makes a condition false, but true for a negated operator
# ("StringNotLike"...); `...IfExists` is true when the key is absent, `Null` tests presence.
# ForAnyValue:/ForAllValues: compare every value of a multivalued key: any one must match, or
# all must (all of none is true).


def _string(policy: str, value: str) -> bool:
    return policy == value


def _string_ignore_case(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    return wildcard_match(policy, value)


def _arn_like(policy: str, value: str) -> bool:
    """ARNs compare part by part (six colon-separated parts), each with wildcards."""
    want, have = policy.split(":", 5), value.split(":", 5)
    return len(want) == len(have) == 6 and all(
        wildcard_match(w, h) for w, h in zip(want, have, strict=True))


def _bool(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _number(text: str) -> float:
    return float(text)


def _date(text: str) -> float:
    """ISO 8601 (``2026-12-05T08:00:00Z``) or epoch seconds, as seconds."""
    import datetime as _dt

    try:
        return float(text)
    except ValueError:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_dt.UTC)
        return moment.timestamp()


def _ordered(convert: Callable[[str], float], test: Callable[[float, float], bool]
             ) -> Callable[[str, str], bool]:
    def compare(policy: str, value: str) -> bool:
        try:
            return test(convert(value), convert(policy))
        except (TypeError, ValueError):
            return False
    return compare


def _ip(policy: str, value: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(policy, strict=False)
    except ValueError:
        return False


# name: (match one policy value against one request value, negated)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "stringequals": (_string, False),
    "stringnotequals": (_string, True),
    "stringequalsignorecase": (_string_ignore_case, False),
    "stringnotequalsignorecase": (_string_ignore_case, True),
    "stringlike": (_string_like, False),
    "stringnotlike": (_string_like, True),
    "arnequals": (_arn_like, False),
    "arnlike": (_arn_like, False),
    "arnnotequals": (_arn_like, True),
    "arnnotlike": (_arn_like, True),
    "bool": (_bool, False),
    "ipaddress": (_ip, False),
    "notipaddress": (_ip, True),
}
for _kind, _convert in (("numeric", _number), ("date", _date)):
    _OPERATORS.update({
        f"{_kind}equals": (_ordered(_convert, lambda v, p: v == p), False),
        f"{_kind}notequals": (_ordered(_convert, lambda v, p: v == p), True),
        f"{_kind}lessthan": (_ordered(_convert, lambda v, p: v < p), False),
        f"{_kind}lessthanequals": (_ordered(_convert, lambda v, p: v <= p), False),
        f"{_kind}greaterthan": (_ordered(_convert, lambda v, p: v > p), False),
        f"{_kind}greaterthanequals": (_ordered(_convert, lambda v, p: v >= p), False),
    })


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def conditions_hold(condition: Any, context: Context) -> bool:
    """Whether a statement's ``Condition`` block holds for the request ``context``.

    An operator the emulator does not know makes the block false (IAM refuses such a
    policy when it is saved, so it cannot apply)."""
    if not isinstance(condition, Mapping):
        return False
    keys = {name.lower(): value for name, value in context.items()}
    for operator, tests in condition.items():
        if not isinstance(tests, Mapping):
            return False
        for key, wanted in tests.items():
            if not _holds(str(operator), [_text(w) for w in _as_list(wanted)],
                          keys.get(str(key).lower())):
                return False
    return True


def _holds(operator: str, wanted: list[str], present: str | list[str] | None) -> bool:
    name = operator.lower()
    qualifier = ""
    if ":" in name:
        qualifier, _, name = name.partition(":")
    if name == "null":  # "true": the key must be absent; "false": present
        return any(w.lower() == ("false" if present is not None else "true") for w in wanted)
    if_exists = name.endswith("ifexists")
    if if_exists:
        name = name[: -len("ifexists")]
    if name not in _OPERATORS or qualifier not in ("", "foranyvalue", "forallvalues"):
        return False
    match, negated = _OPERATORS[name]
    if present is None:  # all of no values pass; any of them cannot
        return qualifier == "forallvalues" or (
            if_exists or negated if not qualifier else if_exists)
    values = _as_list(present)
    if qualifier == "foranyvalue":
        return any(_one(match, negated, wanted, v) for v in values)
    return all(_one(match, negated, wanted, v) for v in values)


def _one(match: Callable[[str, str], bool], negated: bool, wanted: list[str],
         value: str) -> bool:
    """One request value against the policy's values: any matches (OR), or none (NOR)."""
    hit = any(match(w, value) for w in wanted)
    return not hit if negated else hit


__all__ = ["Context", "Decision", "Effect", "conditions_hold", "evaluate", "statements",
           "wildcard_match"]
