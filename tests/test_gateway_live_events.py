"""Events delivered over a real socket match AWS's shapes (behaviour 5) and authorizers (7)."""

from __future__ import annotations

import re

import pytest
import websocket
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)

from helpers.client import Client

ID = re.compile(r"^[A-Za-z0-9_-]{15}=$")
CLF = re.compile(r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$")


def recorder(seen):
    def handler(event, context):
        seen.append(event)
        return {"statusCode": 200}
    return handler


@pytest.fixture
def recorded(serve):
    seen = []
    handler = recorder(seen)
    gateway = serve({"$connect": handler, "$disconnect": handler, "$default": handler,
                     "join": handler})
    return gateway, seen


def test_connect_message_disconnect_events_have_aws_shapes(recorded):
    gateway, seen = recorded
    client = Client(gateway.url + "?name=alice&room=1&room=2", origin="https://x")
    client.send('{"action": "join"}')
    client.send("plain text")
    gateway.log.wait_for_invocations("$default")
    client.close(1000)
    gateway.log.wait_for_invocations("$disconnect")
    connect, join, _plain, disconnect = seen

    APIGatewayWebSocketConnectEventModel(**connect)
    APIGatewayWebSocketMessageEventModel(**join)
    APIGatewayWebSocketDisconnectEventModel(**disconnect)

    config = gateway.config
    for event in seen:
        ctx = event["requestContext"]
        assert ctx["domainName"] == f"{config.api_id}.execute-api.us-east-1.amazonaws.com"
        assert ctx["apiId"] == config.api_id and ctx["stage"] == "dev"
        assert ID.match(ctx["connectionId"]) and ID.match(ctx["requestId"])
        assert ctx["requestId"] == ctx["extendedRequestId"]
        assert CLF.match(ctx["requestTime"])
        assert ctx["connectedAt"] == connect["requestContext"]["connectedAt"]
        assert ctx["messageDirection"] == "IN"
        assert ("messageId" in ctx) == (ctx["eventType"] == "MESSAGE")
    assert [e["requestContext"]["eventType"] for e in seen] == [
        "CONNECT", "MESSAGE", "MESSAGE", "DISCONNECT"]
    assert [e["requestContext"]["routeKey"] for e in seen] == [
        "$connect", "join", "$default", "$disconnect"]
    assert connect["queryStringParameters"] == {"name": "alice", "room": "2"}
    assert connect["multiValueQueryStringParameters"]["room"] == ["1", "2"]
    assert connect["headers"]["Origin"] == "https://x"
    assert "body" not in connect and "headers" not in join
    assert join["body"] == '{"action": "join"}'
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1000


def test_query_keys_are_absent_without_a_query_string(recorded):
    gateway, seen = recorded
    Client(gateway.url).close()
    gateway.log.wait_for_invocations("$disconnect")
    assert "queryStringParameters" not in seen[0]
    assert "multiValueQueryStringParameters" not in seen[0]


# 7. REQUEST Lambda authorizer on $connect ----------------------------------------------


def policy(effect, principal="user-1", **context):
    return {
        "principalId": principal,
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": effect, "Resource": "*"}]},
        "context": context,
    }


@pytest.fixture
def guarded(serve):
    calls, seen = [], []

    def authorizer(event, context):
        calls.append(event)
        token = event["queryStringParameters"].get("token")
        if token == "boom":
            raise RuntimeError("authorizer bug")
        if token == "nope":
            raise Exception("Unauthorized")
        return policy("Allow" if token == "good" else "Deny", role="admin", level=3)

    handler = recorder(seen)
    gateway = serve({"$connect": handler, "$default": handler, "$disconnect": handler},
                    authorizer=authorizer,
                    identity_sources=["route.request.querystring.token"])
    return gateway, calls, seen


@pytest.mark.parametrize(("token", "status"), [("nope", 401), ("bad", 403), ("boom", 500)])
def test_authorizer_refusals(guarded, token, status):
    gateway, calls, _ = guarded
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"{gateway.url}?token={token}", timeout=5)
    assert refused.value.status_code == status
    assert len(calls) == 1


def test_missing_identity_source_is_401_without_calling_the_authorizer(guarded):
    gateway, calls, _ = guarded
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(gateway.url, timeout=5)
    assert (refused.value.status_code, calls) == (401, [])


def test_principal_and_context_reach_every_later_event(guarded):
    gateway, calls, seen = guarded
    client = Client(f"{gateway.url}?token=good")
    client.send("hello")
    gateway.log.wait_for_invocations("$default")
    client.close()
    gateway.log.wait_for_invocations("$disconnect")
    assert calls[0]["type"] == "REQUEST"
    assert calls[0]["methodArn"].endswith(f"{gateway.config.api_id}/dev/$connect")
    authorizers = [e["requestContext"]["authorizer"] for e in seen]
    assert authorizers == [{"principalId": "user-1", "role": "admin", "level": "3"}] * 3
