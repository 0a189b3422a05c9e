"""Lambda proxy events exactly as API Gateway WebSocket APIs build them.

Section numbers (§3.1 ...) are those of docs/aws-behaviour.md.

Each builder returns a fresh dict whose keys appear in the order of the captured AWS events
(§3), so a printed event in a lesson looks like one from CloudWatch. Key presence
is part of the contract handlers are written against: ``queryStringParameters`` is absent
without a query string (§3.1), MESSAGE events have no headers (§3.2), ``messageId`` exists
only on MESSAGE (§3), ``identity.userAgent`` only when the client sent one (§3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .config import DEFAULT_ACCOUNT_ID, DEFAULT_REGION
from .ids import epoch_ms, new_trace_id, request_time

Pairs = Iterable[tuple[str, str]]

# Headers API Gateway does not pass to the $connect integration (§3.1), and the ones
# it sets itself (any client-sent value is replaced: *inferred*: AWS does not document it).
_HOP_BY_HOP = frozenset({"connection", "upgrade"})
_GATEWAY_SET = frozenset(
    {"host", "x-amzn-trace-id", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"}
)


@dataclass(frozen=True)
class ConnectionContext:
    """What stays the same in every event of one connection (§3)."""

    connection_id: str
    connected_at: float  # epoch seconds; events carry it as integer ms (`connectedAt`)
    source_ip: str
    user_agent: str | None  # None: the client sent no User-Agent, so identity has no userAgent
    api_id: str
    stage: str
    domain_name: str
    authorizer: dict[str, Any] | None = None  # principalId + context, once an authorizer allowed


def _identity(conn: ConnectionContext) -> dict[str, str]:
    if conn.user_agent is None:
        return {"sourceIp": conn.source_ip}
    return {"userAgent": conn.user_agent, "sourceIp": conn.source_ip}


def _request_context(
    conn: ConnectionContext,
    *,
    route_key: str,
    event_type: str,
    request_id: str,
    now: float,
    message_id: str | None = None,
    disconnect: tuple[int, str] | None = None,
    with_authorizer: bool = True,
) -> dict[str, Any]:
    """``requestContext`` in the captured key order (§3.1-3.3).

    ``authorizer`` (§3, §7) has no captured position; it goes before ``eventType``.
    """
    ctx: dict[str, Any] = {"routeKey": route_key}
    if message_id is not None:
        ctx["messageId"] = message_id
    if disconnect is not None:
        ctx["disconnectStatusCode"] = disconnect[0]
    if with_authorizer and conn.authorizer is not None:
        ctx["authorizer"] = dict(conn.authorizer)
    ctx["eventType"] = event_type
    ctx["extendedRequestId"] = request_id  # requestId == extendedRequestId (§3)
    ctx["requestTime"] = request_time(now)
    ctx["messageDirection"] = "IN"
    if disconnect is not None:
        ctx["disconnectReason"] = disconnect[1]
    ctx["stage"] = conn.stage
    ctx["connectedAt"] = epoch_ms(conn.connected_at)
    ctx["requestTimeEpoch"] = epoch_ms(now)
    ctx["identity"] = _identity(conn)
    ctx["requestId"] = request_id
    ctx["domainName"] = conn.domain_name
    ctx["connectionId"] = conn.connection_id
    ctx["apiId"] = conn.api_id
    return ctx


def _handshake_headers(
    conn: ConnectionContext,
    headers: Pairs,
    *,
    now: float,
    trace_id: str | None,
    for_authorizer: bool,
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``headers`` and ``multiValueHeaders`` of the upgrade request (§3.1, §3.4).

    Names keep the client's spelling (the first one seen, when a name repeats in another case);
    ``headers`` holds the last value of a repeated header, ``multiValueHeaders`` all of them,
    as in REST proxy events. Names are sorted case-insensitively, which is the order every
    captured event shows (*observed*, §3.1, §3.4).
    """
    grouped: dict[str, tuple[str, list[str]]] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in _GATEWAY_SET or (lower in _HOP_BY_HOP and not for_authorizer):
            continue
        grouped.setdefault(lower, (name, []))[1].append(value)
    added = {
        "host": ("Host", conn.domain_name),
        "x-amzn-trace-id": ("X-Amzn-Trace-Id", trace_id or new_trace_id(now)),
        "x-forwarded-for": ("X-Forwarded-For", conn.source_ip),
        "x-forwarded-port": ("X-Forwarded-Port", "443"),
        "x-forwarded-proto": ("X-Forwarded-Proto", "https"),
    }
    if for_authorizer and "content-length" not in grouped:
        added["content-length"] = ("content-length", "0")  # observed (§3.4)
    for lower, (name, value) in added.items():
        grouped[lower] = (name, [value])
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for lower in sorted(grouped):
        name, values = grouped[lower]
        single[name] = values[-1]
        multi[name] = list(values)
    return single, multi


def _query(query: Pairs) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``queryStringParameters`` (last value wins) and the multi-value form (§3.1)."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in query:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def connect_event(
    conn: ConnectionContext,
    *,
    headers: Pairs,
    query: Pairs,
    request_id: str,
    now: float,
    trace_id: str | None = None,
) -> dict[str, Any]:
    """The ``$connect`` event (§3.1).

    ``headers`` are the handshake headers as the client sent them; ``Connection``/``Upgrade``
    are dropped and ``Host``/``X-Amzn-Trace-Id``/``X-Forwarded-*`` are API Gateway's. Both
    query keys are absent when the URL has no query string; there is no ``body``.
    ``requestContext.authorizer`` is present when an authorizer allowed this connection.
    Pass the authorizer event's ``trace_id`` to keep one trace per handshake.
    """
    single, multi = _handshake_headers(
        conn, headers, now=now, trace_id=trace_id, for_authorizer=False
    )
    event: dict[str, Any] = {"headers": single, "multiValueHeaders": multi}
    qs, mqs = _query(query)
    if qs:
        event["queryStringParameters"] = qs
        event["multiValueQueryStringParameters"] = mqs
    event["requestContext"] = _request_context(
        conn, route_key="$connect", event_type="CONNECT", request_id=request_id, now=now
    )
    event["isBase64Encoded"] = False
    return event


def message_event(
    conn: ConnectionContext,
    *,
    route_key: str,
    body: str,
    request_id: str,
    message_id: str,
    now: float,
) -> dict[str, Any]:
    """A MESSAGE event for a custom route or ``$default`` (§3.2).

    No headers at all; ``body`` is the frame's text unchanged; ``messageId`` appears only here.
    """
    return {
        "requestContext": _request_context(
            conn,
            route_key=route_key,
            event_type="MESSAGE",
            request_id=request_id,
            now=now,
            message_id=message_id,
        ),
        "body": body,
        "isBase64Encoded": False,
    }


def disconnect_event(
    conn: ConnectionContext,
    *,
    status_code: int,
    reason: str,
    request_id: str,
    now: float,
) -> dict[str, Any]:
    """The ``$disconnect`` event (§3.3): fixed placeholder headers, code and reason."""
    single = {
        "Host": conn.domain_name,
        "x-api-key": "",
        "X-Forwarded-For": "",
        "x-restapi": "",
    }
    return {
        "headers": single,
        "multiValueHeaders": {name: [value] for name, value in single.items()},
        "requestContext": _request_context(
            conn,
            route_key="$disconnect",
            event_type="DISCONNECT",
            request_id=request_id,
            now=now,
            disconnect=(status_code, reason),
        ),
        "isBase64Encoded": False,
    }


def method_arn(
    api_id: str,
    stage: str,
    route_key: str = "$connect",
    *,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> str:
    """``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{routeKey}`` (§1.7, §3.4)."""
    return f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{route_key}"


def authorizer_event(
    conn: ConnectionContext,
    *,
    headers: Pairs,
    query: Pairs,
    request_id: str,
    now: float,
    stage_variables: dict[str, str] | None = None,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
    trace_id: str | None = None,
) -> dict[str, Any]:
    """The REQUEST authorizer's event on ``$connect`` (§3.4).

    Unlike the ``$connect`` event, headers keep ``Connection``/``Upgrade`` and gain
    ``content-length: 0``; empty query and stage variables are ``{}``, not absent; there is
    no ``isBase64Encoded`` and no ``requestContext.authorizer`` (it has not run yet).
    """
    single, multi = _handshake_headers(
        conn, headers, now=now, trace_id=trace_id, for_authorizer=True
    )
    qs, mqs = _query(query)
    return {
        "type": "REQUEST",
        "methodArn": method_arn(conn.api_id, conn.stage, region=region, account_id=account_id),
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": qs,
        "multiValueQueryStringParameters": mqs,
        "stageVariables": dict(stage_variables or {}),
        "requestContext": _request_context(
            conn,
            route_key="$connect",
            event_type="CONNECT",
            request_id=request_id,
            now=now,
            with_authorizer=False,
        ),
    }
