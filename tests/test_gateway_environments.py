"""Execution environments seen through the live gateway: a function deployed in moto, real
clients on real sockets. Concurrent messages run in separate environments with their own
module globals; a later message reuses a warm one (docs/aws-behaviour.md §4.3a)."""

from __future__ import annotations

import sys
import threading
import types

import pytest
import websockets.sync.client

from helpers.aws import deploy_websocket_api
from helpers.client import Client
from helpers.gateway import LocalGateway, VirtualClock

# A chat-room mistake on purpose: the room's members in a module-level list. The barrier
# holds two invocations inside the handler at once, so they must be in two environments.
ROOM = """
import json
import lr_gateway_sync
MEMBERS = []
def lambda_handler(event, context):
    MEMBERS.append(event["body"])
    if event["body"].startswith("together"):
        lr_gateway_sync.barrier.wait(10)
    return {"statusCode": 200,
            "body": json.dumps({"members": MEMBERS, "stream": context.log_stream_name})}
"""


@pytest.fixture
def sync():
    module = types.ModuleType("lr_gateway_sync")
    module.barrier = threading.Barrier(2)
    sys.modules["lr_gateway_sync"] = module
    yield module
    del sys.modules["lr_gateway_sync"]


def test_concurrent_messages_see_separate_module_globals_and_later_ones_reuse_them(aws, sync):
    api = deploy_websocket_api("room", {"$default": ROOM}, two_way=["$default"])
    gateway = LocalGateway.from_api(api.api_id, api.stage).start()
    try:
        with Client(gateway.url) as ada, Client(gateway.url) as bob:
            ada.send("together-ada")
            bob.send("together-bob")
            first, second = ada.recv_json(timeout=15), bob.recv_json(timeout=15)
            ada.send("later")
            later = ada.recv_json(timeout=15)
    finally:
        gateway.stop()
    assert gateway.internal_errors == []

    assert first["members"] == ["together-ada"]  # one shared list would hold both names
    assert second["members"] == ["together-bob"]
    assert first["stream"] != second["stream"]
    warm = first if later["stream"] == first["stream"] else second
    assert later["stream"] == warm["stream"]
    assert later["members"] == [*warm["members"], "later"]


def echo(event, context):
    return {"statusCode": 200, "body": event["body"]}


def test_an_idle_environment_is_reclaimed_and_the_next_call_is_a_cold_start(serve):
    """§4.3a: Lambda reclaims an environment left idle; here after `environment_idle_lifetime`
    seconds of the gateway's clock. Driven by the `websockets` library's own client."""
    clock = VirtualClock()
    gateway = serve({"$default": echo}, two_way=["$default"], clock=clock,
                    environment_idle_lifetime=300)

    def call(ws, text: str):
        ws.send(text)
        assert ws.recv(timeout=10) == text
        return gateway.log.invocations("$default")[-1]

    with websockets.sync.client.connect(gateway.url) as ws:
        cold, warm = call(ws, "one"), call(ws, "two")
        clock.advance(299)
        still_warm = call(ws, "three")  # idle 299 s: kept, and idle again from now
        clock.advance(300)
        reclaimed = call(ws, "four")
    reports = [entry["logs"][-1] for entry in (cold, warm, still_warm, reclaimed)]
    assert ["Init Duration" in report for report in reports] == [True, False, False, True]
    assert cold["environment"] == warm["environment"] == still_warm["environment"]
    assert reclaimed["environment"] != cold["environment"]
