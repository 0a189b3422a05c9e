"""helpers.gateway.interception: AWS-shaped @connections calls reach a registered gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.endpoint
import moto
import pytest
from moto.core.botocore_stubber import BotocoreStubber

from helpers.gateway import interception, registry

API_ID, STAGE, REGION = "abcde12345", "prod", "us-east-1"
CALLBACK_URL = f"https://{API_ID}.execute-api.{REGION}.amazonaws.com/{STAGE}"
CONNECTION_ID = "BFHPhFe3IAMF95g="  # '=' travels as %3D


class FakeGateway:
    """Records @connections calls; answers 410 GoneException for ids listed in `gone`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bytes]] = []
        self.gone: set[str] = set()

    def handle_management(
        self, method: str, connection_id: str, body: bytes, *, url: str = "",
        headers: dict | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        self.calls.append((method, connection_id, body))
        self.headers = headers or {}
        if connection_id in self.gone:
            return 410, {"x-amzn-ErrorType": "GoneException"}, b'{"message": null}'
        if method == "GET":
            answer = {
                "connectedAt": "2024-01-01T00:00:00.000Z",
                "lastActiveAt": "2024-01-01T00:00:01.000Z",
                "identity": {"sourceIp": "127.0.0.1", "userAgent": "test"},
            }
            return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()
        return (204 if method == "DELETE" else 200), {}, b""


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGateway]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    target = FakeGateway()
    registry.register(API_ID, STAGE, target)
    yield target
    registry.unregister(API_ID, STAGE, target)


def _client(url: str = CALLBACK_URL) -> Any:
    return boto3.client("apigatewaymanagementapi", endpoint_url=url, region_name=REGION)


def test_calls_reach_the_registered_gateway_under_mock_aws(gateway: FakeGateway) -> None:
    with moto.mock_aws():
        client = _client()
        client.post_to_connection(ConnectionId=CONNECTION_ID, Data=b"hello")
        got = client.get_connection(ConnectionId=CONNECTION_ID)
        deleted = client.delete_connection(ConnectionId=CONNECTION_ID)
    assert gateway.calls == [
        ("POST", CONNECTION_ID, b"hello"),
        ("GET", CONNECTION_ID, b""),
        ("DELETE", CONNECTION_ID, b""),
    ]
    assert got["Identity"]["SourceIp"] == "127.0.0.1"
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_calls_reach_the_registered_gateway_without_mock_aws(gateway: FakeGateway) -> None:
    _client().post_to_connection(ConnectionId=CONNECTION_ID, Data="text")
    assert gateway.calls == [("POST", CONNECTION_ID, b"text")]


def test_gone_answer_is_the_typed_gone_exception(gateway: FakeGateway) -> None:
    gateway.gone.add(CONNECTION_ID)
    with moto.mock_aws():
        client = _client()
        with pytest.raises(client.exceptions.GoneException) as raised:
            client.post_to_connection(ConnectionId=CONNECTION_ID, Data=b"x")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_clients_created_before_the_hooks_are_intercepted(
    gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = ((BotocoreStubber, "process_request"), (botocore.endpoint.Endpoint, "_send"))
    for owner, name in hooks:  # put back what botocore and moto had before our import
        monkeypatch.setattr(owner, name, getattr(owner, name).__wrapped__)
    with moto.mock_aws():
        client = _client()  # built while the hooks are absent
        client.post_to_connection(ConnectionId=CONNECTION_ID, Data=b"to moto")
        assert gateway.calls == []
        interception.apply()
        interception.apply()  # idempotent
        client.post_to_connection(ConnectionId=CONNECTION_ID, Data=b"to gateway")
    assert gateway.calls == [("POST", CONNECTION_ID, b"to gateway")]


def test_unregistered_apis_and_stages_fall_through_to_moto(gateway: FakeGateway) -> None:
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    other_stage = f"https://{API_ID}.execute-api.{REGION}.amazonaws.com/dev"
    other_api = f"https://zzzzz99999.execute-api.{REGION}.amazonaws.com/{STAGE}"
    with moto.mock_aws():
        _client(other_stage).post_to_connection(ConnectionId="a", Data=b"1")
        _client(other_api).post_to_connection(ConnectionId="a", Data=b"2")
        recorded = apigatewaymanagementapi_backends["123456789012"][REGION].connections["a"].data
    assert gateway.calls == []
    assert recorded == b"12"  # moto's recorder concatenates posts
