"""helpers.client: a notebook client that reads in the background (real gateway, real socket)."""

from __future__ import annotations

import pytest
import websocket

from helpers.client import Client


def echo(event, context):
    return {"statusCode": 200, "body": event["body"]}


def test_client_collects_messages_in_order(serve):
    gateway = serve({"$default": echo}, two_way=["$default"])
    with Client(gateway.url, name="alice") as alice:
        for word in ("one", "two", "three"):
            alice.send(word)
        assert [alice.recv(), alice.recv(), alice.recv()] == ["one", "two", "three"]
        assert alice.messages == ["one", "two", "three"]
        assert alice.try_recv(0.1) is None


def test_client_reassembles_fragmented_messages(serve):
    gateway = serve({"$default": lambda e, c: {"statusCode": 200, "body": "z" * 100_000}},
                    two_way=["$default"])
    with Client(gateway.url) as client:
        client.send("big please")  # the gateway answers in frames of at most 32 KB
        assert client.recv() == "z" * 100_000


def test_client_reports_the_gateways_close(serve):
    gateway = serve({"$default": echo})
    client = Client(gateway.url)
    client.send_binary(b"\x01")
    code, _reason = client.wait_closed()
    assert code == 1003 and client.closed
    with pytest.raises(TimeoutError, match="closed with 1003"):
        client.recv(timeout=0.1)


def test_client_close_runs_disconnect_with_its_code(serve):
    seen = []
    gateway = serve({"$disconnect": lambda e, c: seen.append(
        e["requestContext"]["disconnectStatusCode"])})
    Client(gateway.url).close(4000, "bye")
    gateway.log.wait_for_invocations("$disconnect")
    assert seen == [4000]


def test_refused_handshake_raises_with_the_status(serve):
    gateway = serve({"$connect": lambda e, c: {"statusCode": 401}})
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        Client(gateway.url)
    assert refused.value.status_code == 401


def test_help_explains_close_code_and_timeouts():
    import pydoc

    from helpers.client import Client

    text = pydoc.render_doc(Client, renderer=pydoc.plaintext)
    for needed in ("close_code", "close_reason", "1006", "TimeoutError", "try_recv", "origin="):
        assert needed in text, needed


def test_wait_for_returns_once_enough_messages_arrived_and_times_out_otherwise(serve):
    gateway = serve({"$default": lambda event, context: {"statusCode": 200,
                                                         "body": event["body"]}},
                    two_way=["$default"])
    with Client(gateway.url, name="w") as client:
        client.send("a")
        client.send("b")
        assert client.wait_for(2) == ["a", "b"]
        with pytest.raises(TimeoutError, match="has 2 of 3 messages"):
            client.wait_for(3, timeout=0.2)
