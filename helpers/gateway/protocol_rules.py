"""What API Gateway answers, as pure functions: limits, close codes, error frames, and how it
reads the return values of ``$connect`` handlers, message handlers and authorizers.

The server does the I/O; everything it decides lives here so each rule can be tested and
cited against docs/aws-behaviour.md (§2.3, §4, §5, §7).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from . import iam_policy

# --- Close codes and reasons (docs/aws-behaviour.md §3.3, §4.3) -----------------------------------


class Close(NamedTuple):
    """A close frame's code and reason, as also reported in ``$disconnect``."""

    code: int
    reason: str


#: Idle timeout (FIX-idle, WSCAT-1001).
GOING_AWAY = Close(1001, "Going away")
#: The 2-hour maximum: AWS documents no code; 1001 "Going away" is [INFERRED] (§4.3).
LIFETIME_EXCEEDED = GOING_AWAY
#: `delete_connection` from the backend (I-boto3789).
CLOSED_BY_BACKEND = Close(1000, "Connection Closed Normally")
#: What `$disconnect` reports when the client's close frame had no status code (PT-ev).
NO_CLIENT_STATUS = Close(1005, "Client-side close frame status not set")
# AWS closes with 1003 and 1009 (D-binary, D-quota) but documents no reason text, so these
# reasons are the emulator's own: they name the cause and the fix. A reason must fit in a
# close frame: at most 123 UTF-8 bytes (RFC 6455 §5.5).
#: A binary frame arrived (§2.3 step 1). Reason text is the emulator's, not AWS's.
BINARY_NOT_SUPPORTED = Close(1003, "Binary frames are not routed: send text (e.g. JSON)")
#: A frame over 32 KB or a message over 128 KB (§2.3 step 2). Reason text is the emulator's.
MESSAGE_TOO_BIG = Close(1009, "Too big: frames max 32 KB, messages max 128 KB; send less")


def client_close(code: int | None, reason: str = "") -> Close:
    """``disconnectStatusCode``/``disconnectReason`` for a close the client started (§3.3).

    The client's own code and reason are copied (GO-ev: 1001 with ``""``); without a status
    code AWS reports 1005 and a fixed reason (PT-ev).
    """
    if code is None or code == 1005:
        return NO_CLIENT_STATUS
    return Close(code, reason)


# --- Error frames (docs/aws-behaviour.md §2.3, §4.2) ----------------------------------------------

FORBIDDEN = "Forbidden"  # no matching route and no $default (§2.3 step 5)
INTERNAL_SERVER_ERROR = "Internal server error"  # the integration failed (§4.2)
ENDPOINT_TIMED_OUT = "Endpoint request timed out"  # the integration timed out (§4.2, BEDROCK)


def error_frame(message: str, connection_id: str, request_id: str) -> str:
    """The text frame API Gateway sends when it cannot deliver a message (§2.3, §4.2).

    The spacing is AWS's own (I-forbidden): a space after ``"message":``, none after
    ``"connectionId":`` or ``"requestId":``. Clients match on this text (BEDROCK).
    """
    return (
        f'{{"message": {json.dumps(message)}, "connectionId":{json.dumps(connection_id)}, '
        f'"requestId":{json.dumps(request_id)}}}'
    )


def upgrade_required() -> tuple[int, dict[str, str], bytes]:
    """A plain GET on the stage's URL: 426, naming the fix (the emulator's wording)."""
    body = json.dumps({"message": "Upgrade Required: this is a WebSocket endpoint; connect "
                       "with a WebSocket client (e.g. websocket-client or wscat)."})
    return 426, {"Content-Type": "application/json"}, body.encode()


# --- $connect (docs/aws-behaviour.md §4.1) --------------------------------------------------------

BAD_GATEWAY = 502
_CONNECT_FIX = "return {'statusCode': 200} to accept, or e.g. {'statusCode': 403} to refuse"


def _status_code(result: Mapping[str, Any]) -> int | None:
    code = result.get("statusCode")
    if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
        return code
    return None


def _response_headers(result: Mapping[str, Any]) -> dict[str, str] | None:
    """``headers`` plus ``multiValueHeaders`` (joined with ``", "``) of a proxy response."""
    headers: dict[str, str] = {}
    multi = result.get("multiValueHeaders") or {}
    single = result.get("headers") or {}
    if not isinstance(multi, Mapping) or not isinstance(single, Mapping):
        return None
    for name, values in multi.items():
        if not isinstance(values, list):
            return None
        headers[str(name)] = ", ".join(str(v) for v in values)
    for name, value in single.items():
        headers[str(name)] = str(value)
    return headers


def connect_outcome(result: Any) -> tuple[bool, int, dict[str, str], str | None]:
    """How the handshake ends, given what the ``$connect`` handler returned (§4.1).

    Returns ``(accepted, status, headers, problem)``:

    - 2xx ``statusCode``: accepted; ``status`` is 101, the status the client sees, and
      ``headers`` (e.g. ``Sec-WebSocket-Protocol``) go into the 101 response (D-subproto);
    - another ``statusCode`` from 300 to 599: refused with that status (D-subproto,
      SLSO-PR1301); ``headers`` are still returned for the error response;
    - anything else (None, a string, no or non-integer ``statusCode``, 1xx, non-dict
      headers): refused with 502, as community reports show for a failing ``$connect``
      [INFERRED, §4.1], and ``problem`` says what was wrong and how to fix it.

    A handler that raised or timed out is the caller's case: also 502 (§4.1, §10 item 4).
    """
    if not isinstance(result, Mapping):
        kind = "None" if result is None else f"a {type(result).__name__}"
        return False, BAD_GATEWAY, {}, f"the $connect handler returned {kind}; {_CONNECT_FIX}"
    status = _status_code(result)
    if status is None:
        if "statusCode" not in result:
            problem = f"the $connect handler's response has no statusCode; {_CONNECT_FIX}"
        else:
            problem = (
                f"the $connect handler's statusCode {result['statusCode']!r} is not an "
                f"integer HTTP status; {_CONNECT_FIX}"
            )
        return False, BAD_GATEWAY, {}, problem
    headers = _response_headers(result)
    if headers is None:
        problem = (
            "the $connect handler's headers must be a dict of strings "
            "(multiValueHeaders: a dict of lists), e.g. {'Sec-WebSocket-Protocol': 'chat'}"
        )
        return False, BAD_GATEWAY, {}, problem
    if 200 <= status <= 299:
        return True, 101, headers, None
    if status >= 300:
        return False, status, headers, None
    problem = f"the $connect handler's statusCode {status} cannot end a handshake; {_CONNECT_FIX}"
    return False, BAD_GATEWAY, {}, problem


# --- Message routes (docs/aws-behaviour.md §4.2, §4.4) --------------------------------------------


def message_reply(
    result: Any, two_way: bool, *, connection_id: str, request_id: str
) -> tuple[str | None, str | None]:
    """What the client receives after a message handler returned ``result`` (§4.4).

    Returns ``(frame, problem)``:

    - one-way route: nothing, whatever was returned ("without a route response nothing is
      sent, even if the Lambda returns a body", D-integ);
    - two-way route, a dict with a string ``body``: that body, whatever the ``statusCode``
      (a 500 with a body arrives as a normal message, I-twoway);
    - two-way route, a dict without ``body`` (or ``body: None``): nothing. bedrock-chat
      hints AWS may send an empty frame [OBS/INFERRED, §4.4]; the emulator sends none;
    - two-way route, anything else (None, a string, a list, a non-string body): the
      ``Internal server error`` frame, as API Gateway answers a malformed proxy response
      [INFERRED from REST APIs]; ``problem`` names the cause and the fix.

    An exception or timeout in the handler is the caller's case (`error_frame` with
    `INTERNAL_SERVER_ERROR` / `ENDPOINT_TIMED_OUT`, §4.2), on one-way routes too.
    """
    if not two_way:
        return None, None
    fix = "return {'statusCode': 200, 'body': json.dumps(...)} from a two-way route"
    if not isinstance(result, Mapping):
        kind = "None" if result is None else f"a {type(result).__name__}"
        problem = f"the two-way route's handler returned {kind}; {fix}"
    else:
        body = result.get("body")
        if body is None:
            return None, None
        if isinstance(body, str):
            return body, None
        problem = f"the handler's body is a {type(body).__name__}, not a string; {fix}"
    return error_frame(INTERNAL_SERVER_ERROR, connection_id, request_id), problem


# --- Lambda authorizer (docs/aws-behaviour.md §4.1, §7) -----------------------------------

UNAUTHORIZED = 401
DENIED = 403
AUTHORIZER_FAILED = 500


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _context_ok(context: Any) -> bool:
    """Strings, numbers, booleans (and null, observed kept) only: AWS fails the authorizer on
    an object or array value (docs/aws-behaviour.md §7.2). NaN and infinities are not JSON."""
    if context is None:
        return True
    if not isinstance(context, Mapping):
        return False
    return all(
        value is None
        or isinstance(value, str | int)  # bool is an int
        or (isinstance(value, float) and math.isfinite(value))
        for value in context.values()
    )


def stringify_context_value(value: Any) -> str | None:
    """How a context value reaches later events: as text (docs/aws-behaviour.md §7.2).

    ``123`` -> ``"123"``, ``True`` -> ``"true"`` (AWS's examples); a float is its JSON text,
    ``0.5`` -> ``"0.5"`` (inferred: AWS reads the function's JSON answer); null stays null
    (observed on REST proxy events).
    """
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def authorizer_outcome(
    result: Any, error: str | None, *, method_arn: str
) -> tuple[int | None, dict[str, Any] | None]:
    """Whether the handshake may proceed, given the authorizer's answer.

    docs/aws-behaviour.md §4.1 and §7.

    Returns ``(status, principal)``: ``status`` None means allowed, and ``principal`` is then
    ``requestContext.authorizer`` for every event of the connection,
    ``{"principalId": ..., **context}`` (§3, §7). Otherwise the handshake fails with:

    - 401 when the authorizer raised an error whose message is exactly ``"Unauthorized"``;
    - 500 for any other error, or a malformed answer: not a dict, no string
      ``principalId``, no ``policyDocument``, or a ``context`` value that is an object or
      an array (AWS: AuthorizerConfigurationException, 500; docs/aws-behaviour.md §7.2);
    - 403 when any statement denies ``execute-api:Invoke`` on ``method_arn``, or none allows
      it. ``Action`` and ``Resource`` may be strings or lists, with ``*``/``?`` wildcards.

    Context values arrive stringified (`stringify_context_value`): ``3`` as ``"3"``.
    """
    if error is not None:
        return (UNAUTHORIZED if error == "Unauthorized" else AUTHORIZER_FAILED), None
    if not isinstance(result, Mapping):
        return AUTHORIZER_FAILED, None
    principal_id = result.get("principalId")
    policy = result.get("policyDocument")
    context = result.get("context")
    if not isinstance(principal_id, str) or not isinstance(policy, Mapping):
        return AUTHORIZER_FAILED, None
    if not _context_ok(context):
        return AUTHORIZER_FAILED, None
    if not iam_policy.evaluate([policy], "execute-api:Invoke", method_arn).allowed:
        return DENIED, None
    principal: dict[str, Any] = {"principalId": principal_id}
    for key, value in (context or {}).items():
        if key != "principalId":
            principal[str(key)] = stringify_context_value(value)
    return None, principal


def identity_values(
    sources: Iterable[str],
    headers: Iterable[tuple[str, str]],
    query: Iterable[tuple[str, str]],
    *,
    stage_variables: Mapping[str, str] | None = None,
) -> list[str] | None:
    """The authorizer's identity source values, or None: answer 401 without invoking (§7).

    ``route.request.header.X`` matches header names case-insensitively (HTTP);
    ``route.request.querystring.X`` matches exactly; ``stageVariables.X`` reads the stage's
    variables. A repeated header or parameter gives its last value. Any source that is
    missing or empty makes the whole answer None (BC-v2 IdentitySource). A source of another
    form (e.g. the HTTP-API ``$request.header.X``, which AWS rejects for WebSocket APIs)
    raises `ValueError`.
    """
    header_map = {name.lower(): value for name, value in headers}
    query_map = dict(query)
    values: list[str] = []
    for source in sources:
        if source.startswith("route.request.header."):
            value = header_map.get(source[len("route.request.header.") :].lower())
        elif source.startswith("route.request.querystring."):
            value = query_map.get(source[len("route.request.querystring.") :])
        elif source.startswith("stageVariables."):
            value = (stage_variables or {}).get(source[len("stageVariables.") :])
        else:
            raise ValueError(
                f"unsupported identity source {source!r}: use route.request.header.X, "
                "route.request.querystring.X or stageVariables.X (docs/aws-behaviour.md §7)"
            )
        if not value:
            return None
        values.append(value)
    return values


# --- Lambda resource policy: may API Gateway invoke the function? (docs/aws-behaviour.md §1.7) ----

INVALID_PERMISSIONS = "ApiGateway.InvalidPermissions"


def invoke_allowed(statements: Iterable[Mapping[str, Any]], source_arn: str) -> bool:
    """Whether a function's resource policy lets API Gateway invoke it for `source_arn`.

    `source_arn` is `arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{route-key}`
    (docs/aws-behaviour.md §1.7). A statement counts when it allows `lambda:InvokeFunction` to
    the `apigateway.amazonaws.com` service principal, and its `AWS:SourceArn` condition, if any
    (the SAM sample has none), matches with `*`/`?` wildcards. Any matching Deny wins.
    Without such a statement AWS fails the call: "Execution failed due to configuration
    error: Invalid permissions on Lambda function".
    """
    allowed = False
    for statement in statements:
        actions = {a.lower() for a in _as_list(statement.get("Action"))}
        if not actions & {"lambda:invokefunction", "lambda:*", "*"}:
            continue
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, Mapping) else [
            principal]
        if not any(s in ("apigateway.amazonaws.com", "*") for s in services):
            continue
        patterns = []
        for operator, values in (statement.get("Condition") or {}).items():
            if operator in ("ArnLike", "ArnEquals", "StringLike", "StringEquals"):
                for key, value in values.items():
                    if key.lower() == "aws:sourcearn":
                        patterns += _as_list(value)
        if patterns and not any(iam_policy.wildcard_match(p, source_arn) for p in patterns):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
