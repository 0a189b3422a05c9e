"""The authorizer's context over a real socket: stringified values, objects refused (§7.2)."""

from __future__ import annotations

import pytest
import websocket

from helpers.client import Client


def allow(context):
    return {
        "principalId": "user-7",
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]},
        "context": context,
    }


CONTEXTS = {
    "typed": {"name": "ada", "level": 3, "admin": True, "guest": False, "ratio": 0.25},
    "object": {"profile": {"name": "ada"}},
    "array": {"rooms": ["a", "b"]},
}


@pytest.fixture
def guarded(serve):
    seen = []

    def authorizer(event, context):
        return allow(CONTEXTS[event["queryStringParameters"]["context"]])

    def handler(event, context):
        seen.append(event["requestContext"])
        return {"statusCode": 200}

    gateway = serve({"$connect": handler, "$default": handler, "$disconnect": handler},
                    authorizer=authorizer, identity_sources=["route.request.querystring.context"])
    return gateway, seen


def test_context_values_arrive_as_strings_in_every_later_event(guarded):
    gateway, seen = guarded
    with Client(f"{gateway.url}?context=typed") as client:
        client.send("hello")
        gateway.log.wait_for_invocations("$default")
    gateway.log.wait_for_invocations("$disconnect")
    expected = {"principalId": "user-7", "name": "ada", "level": "3", "admin": "true",
                "guest": "false", "ratio": "0.25"}
    assert [ctx["eventType"] for ctx in seen] == ["CONNECT", "MESSAGE", "DISCONNECT"]
    assert [ctx["authorizer"] for ctx in seen] == [expected] * 3


@pytest.mark.parametrize("kind", ["object", "array"])
def test_an_object_or_array_value_fails_the_handshake_with_500(guarded, kind):
    gateway, seen = guarded
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"{gateway.url}?context={kind}", timeout=5)
    assert refused.value.status_code == 500
    assert seen == []  # $connect never ran
