"""Lambda proxy event shapes (docs/aws-behaviour.md §3), checked against the captured
samples' keys and against aws-lambda-powertools' parser models."""

from __future__ import annotations

import re

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)

from helpers.gateway.events import (
    ConnectionContext,
    authorizer_event,
    connect_event,
    disconnect_event,
    message_event,
    method_arn,
)

DOMAIN = "abc123defg.execute-api.us-east-1.amazonaws.com"
CONNECTED = 1731324924.553
NOW = 1731324924.561
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:122.0) Gecko/20100101 Firefox/122.0"

CONN = ConnectionContext(
    connection_id="BFHPhfCWIAMCKlQ=",
    connected_at=CONNECTED,
    source_ip="203.0.113.7",
    user_agent=UA,
    api_id="abc123defg",
    stage="prod",
    domain_name=DOMAIN,
)
NO_UA = ConnectionContext(**{**CONN.__dict__, "user_agent": None})
AUTHORIZED = ConnectionContext(
    **{**CONN.__dict__, "authorizer": {"principalId": "alice", "role": "admin", "level": 3}}
)

HANDSHAKE = [
    ("host", "localhost:8765"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "+W5xw47OHh3OTFsWKjGu9Q=="),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
    ("User-Agent", UA),
    ("Origin", "https://example.com"),
]

CONTEXT_KEYS = [
    "routeKey",
    "eventType",
    "extendedRequestId",
    "requestTime",
    "messageDirection",
    "stage",
    "connectedAt",
    "requestTimeEpoch",
    "identity",
    "requestId",
    "domainName",
    "connectionId",
    "apiId",
]


def _connect(conn=CONN, query=(), headers=HANDSHAKE):
    return connect_event(
        conn, headers=headers, query=list(query), request_id="BFHPhFe3IAMF95g=", now=NOW
    )


def _message(conn=CONN):
    return message_event(
        conn,
        route_key="sendmessage",
        body='{"action": "sendmessage", "data": "hello"}',
        request_id="BFaVtH2HoAMFZEQ=",
        message_id="BFaVtfGSIAMCKug=",
        now=NOW + 11,
    )


def _disconnect(conn=CONN):
    return disconnect_event(
        conn, status_code=1001, reason="Going away", request_id="TX0tuFp2joEF5Zw=", now=NOW + 600
    )


# --- CONNECT (§3.1) ------------------------------------------------------------------------


def test_connect_event_matches_sample_shape():
    event = _connect(query=[("name", "alice")])
    assert list(event) == [
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "requestContext",
        "isBase64Encoded",
    ]
    assert list(event["requestContext"]) == CONTEXT_KEYS
    ctx = event["requestContext"]
    assert ctx["routeKey"] == "$connect"
    assert ctx["eventType"] == "CONNECT"
    assert ctx["messageDirection"] == "IN"
    assert ctx["requestTime"] == "11/Nov/2024:11:35:24 +0000"
    assert ctx["connectedAt"] == 1731324924553
    assert ctx["requestTimeEpoch"] == 1731324924561
    assert ctx["identity"] == {"userAgent": UA, "sourceIp": "203.0.113.7"}
    assert event["isBase64Encoded"] is False
    assert "body" not in event


def test_connect_headers_drop_connection_and_upgrade_and_add_gateway_headers():
    headers = _connect()["headers"]
    assert list(headers) == [
        "Host",
        "Origin",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "User-Agent",
        "X-Amzn-Trace-Id",
        "X-Forwarded-For",
        "X-Forwarded-Port",
        "X-Forwarded-Proto",
    ]
    assert headers["Host"] == DOMAIN
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", headers["X-Amzn-Trace-Id"])
    assert headers["X-Amzn-Trace-Id"].startswith(f"Root=1-{int(NOW):08x}-")
    assert headers["X-Forwarded-For"] == "203.0.113.7"
    assert headers["X-Forwarded-Port"] == "443"
    assert headers["X-Forwarded-Proto"] == "https"


def test_multi_value_headers_hold_every_value_and_headers_the_last():
    event = _connect(headers=[*HANDSHAKE, ("X-Tag", "a"), ("x-tag", "b")])
    assert event["headers"]["X-Tag"] == "b"
    assert event["multiValueHeaders"]["X-Tag"] == ["a", "b"]
    assert event["multiValueHeaders"]["Host"] == [DOMAIN]
    assert set(event["headers"]) == set(event["multiValueHeaders"])


def test_client_cannot_spoof_gateway_headers():
    event = _connect(headers=[*HANDSHAKE, ("X-Forwarded-For", "6.6.6.6")])
    assert event["multiValueHeaders"]["X-Forwarded-For"] == ["203.0.113.7"]


def test_query_keys_absent_without_query_string():
    event = _connect()
    assert "queryStringParameters" not in event
    assert "multiValueQueryStringParameters" not in event


def test_query_string_last_value_wins_and_multi_value_keeps_all():
    event = _connect(query=[("name", "alice"), ("tag", "a"), ("tag", "b")])
    assert event["queryStringParameters"] == {"name": "alice", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"name": ["alice"], "tag": ["a", "b"]}


def test_user_agent_only_when_client_sent_one():
    headers = [(n, v) for n, v in HANDSHAKE if n != "User-Agent"]
    event = _connect(conn=NO_UA, headers=headers)
    assert event["requestContext"]["identity"] == {"sourceIp": "203.0.113.7"}
    assert "User-Agent" not in event["headers"]


def test_request_id_equals_extended_request_id():
    ctx = _connect()["requestContext"]
    assert ctx["requestId"] == ctx["extendedRequestId"] == "BFHPhFe3IAMF95g="


def test_authorizer_present_on_connect_after_it_allowed():
    assert "authorizer" not in _connect()["requestContext"]
    ctx = _connect(conn=AUTHORIZED)["requestContext"]
    assert ctx["authorizer"] == {"principalId": "alice", "role": "admin", "level": 3}


def test_shared_trace_id_is_used():
    event = connect_event(
        CONN, headers=HANDSHAKE, query=[], request_id="r", now=NOW, trace_id="Root=1-x-y"
    )
    assert event["headers"]["X-Amzn-Trace-Id"] == "Root=1-x-y"


# --- MESSAGE (§3.2) --------------------------------------------------------------------------


def test_message_event_has_no_headers_and_carries_message_id():
    event = _message()
    assert list(event) == ["requestContext", "body", "isBase64Encoded"]
    ctx = event["requestContext"]
    assert list(ctx) == [*CONTEXT_KEYS[:1], "messageId", *CONTEXT_KEYS[1:]]
    assert ctx["messageId"] == "BFaVtfGSIAMCKug="
    assert ctx["eventType"] == "MESSAGE"
    assert ctx["routeKey"] == "sendmessage"
    assert event["body"] == '{"action": "sendmessage", "data": "hello"}'


def test_connected_at_is_constant_across_events():
    assert (
        _connect()["requestContext"]["connectedAt"]
        == _message()["requestContext"]["connectedAt"]
        == _disconnect()["requestContext"]["connectedAt"]
        == 1731324924553
    )
    assert _message()["requestContext"]["requestTimeEpoch"] == 1731324935561


def test_message_id_only_on_message_events():
    assert "messageId" not in _connect()["requestContext"]
    assert "messageId" not in _disconnect()["requestContext"]
    assert (
        "messageId"
        not in authorizer_event(CONN, headers=HANDSHAKE, query=[], request_id="r", now=NOW)[
            "requestContext"
        ]
    )


def test_authorizer_present_on_later_message_and_disconnect_events():
    assert _message(AUTHORIZED)["requestContext"]["authorizer"]["principalId"] == "alice"
    assert _disconnect(AUTHORIZED)["requestContext"]["authorizer"]["role"] == "admin"
    assert "authorizer" not in _message()["requestContext"]


# --- DISCONNECT (§3.3) -----------------------------------------------------------------------


def test_disconnect_event_has_fixed_placeholder_headers():
    event = _disconnect()
    assert list(event) == ["headers", "multiValueHeaders", "requestContext", "isBase64Encoded"]
    assert event["headers"] == {
        "Host": DOMAIN,
        "x-api-key": "",
        "X-Forwarded-For": "",
        "x-restapi": "",
    }
    assert event["multiValueHeaders"] == {
        "Host": [DOMAIN],
        "x-api-key": [""],
        "X-Forwarded-For": [""],
        "x-restapi": [""],
    }


def test_disconnect_event_carries_status_code_and_reason():
    ctx = _disconnect()["requestContext"]
    assert list(ctx) == [
        "routeKey",
        "disconnectStatusCode",
        "eventType",
        "extendedRequestId",
        "requestTime",
        "messageDirection",
        "disconnectReason",
        *CONTEXT_KEYS[5:],
    ]
    assert ctx["disconnectStatusCode"] == 1001
    assert ctx["disconnectReason"] == "Going away"
    assert ctx["eventType"] == "DISCONNECT"
    assert ctx["routeKey"] == "$disconnect"


# --- REQUEST authorizer (§3.4) ---------------------------------------------------------------


def _authorizer(query=(), **kwargs):
    return authorizer_event(
        CONN, headers=HANDSHAKE, query=list(query), request_id="FDmBIG3EoAMEqYA=", now=NOW, **kwargs
    )


def test_authorizer_event_matches_sample_shape():
    event = _authorizer()
    assert list(event) == [
        "type",
        "methodArn",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "stageVariables",
        "requestContext",
    ]
    assert event["type"] == "REQUEST"
    assert (
        event["methodArn"] == "arn:aws:execute-api:us-east-1:123456789012:abc123defg/prod/$connect"
    )
    assert event["queryStringParameters"] == {}
    assert event["multiValueQueryStringParameters"] == {}
    assert event["stageVariables"] == {}
    assert list(event["requestContext"]) == CONTEXT_KEYS
    assert event["requestContext"]["eventType"] == "CONNECT"


def test_authorizer_headers_keep_connection_and_upgrade():
    headers = _authorizer()["headers"]
    assert headers["Connection"] == "Upgrade"
    assert headers["Upgrade"] == "websocket"
    assert headers["content-length"] == "0"
    assert headers["Host"] == DOMAIN


def test_authorizer_event_takes_region_account_and_stage_variables():
    event = _authorizer(
        query=[("token", "abc")],
        region="eu-west-1",
        account_id="111122223333",
        stage_variables={"env": "dev"},
    )
    assert (
        event["methodArn"] == "arn:aws:execute-api:eu-west-1:111122223333:abc123defg/prod/$connect"
    )
    assert event["queryStringParameters"] == {"token": "abc"}
    assert event["stageVariables"] == {"env": "dev"}


def test_authorizer_event_never_carries_authorizer_result():
    event = authorizer_event(AUTHORIZED, headers=HANDSHAKE, query=[], request_id="r", now=NOW)
    assert "authorizer" not in event["requestContext"]


def test_method_arn_formats_any_route():
    assert (
        method_arn("a1", "dev", "$default")
        == "arn:aws:execute-api:us-east-1:123456789012:a1/dev/$default"
    )


# --- powertools parser models ------------------------------------------------------------------


@pytest.mark.parametrize("conn", [CONN, NO_UA, AUTHORIZED])
def test_events_validate_against_powertools_models(conn):
    connect = APIGatewayWebSocketConnectEventModel.model_validate(
        _connect(conn=conn, query=[("name", "alice")])
    )
    assert connect.request_context.connection_id == "BFHPhfCWIAMCKlQ="
    APIGatewayWebSocketConnectEventModel.model_validate(_connect(conn=conn))
    message = APIGatewayWebSocketMessageEventModel.model_validate(_message(conn))
    assert message.request_context.message_id == "BFaVtfGSIAMCKug="
    disconnect = APIGatewayWebSocketDisconnectEventModel.model_validate(_disconnect(conn))
    assert disconnect.request_context.disconnect_status_code == 1001
    assert disconnect.request_context.disconnect_reason == "Going away"
