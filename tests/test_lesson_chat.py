"""Lesson 07's chat backend (helpers/lessons/capstone/backend/chat.py) on the local gateway.

Deployed with `deploy_chat` into moto, served by a real gateway, driven by real clients: each
test proves one behaviour the lesson shows.
"""

from __future__ import annotations

import json
import runpy
import time
import types

import boto3
import pytest
import websocket

from helpers.client import Client
from helpers.gateway import LocalGateway, VirtualClock
from helpers.lessons.capstone import BACKEND, deploy_chat
from helpers.lessons.chat_lesson import run_load


@pytest.fixture
def room(aws, request):
    """(chat, gateway, join): the chat room served locally; join(nick) opens a Client.

    Scans page every 2 rows, unless a test passes another page size (indirect parameter;
    None: DynamoDB's own)."""
    chat = deploy_chat("testchat", page_size=getattr(request, "param", 2))
    gateway = LocalGateway.from_api(chat.api_id, chat.stage, clock=VirtualClock()).start()
    clients: list[Client] = []

    def join(nick: str) -> Client:
        client = Client(f"{gateway.url}?nick={nick}", name=nick)
        clients.append(client)
        return client

    yield chat, gateway, join
    for client in clients:
        client.close()
    gateway.stop()
    assert gateway.internal_errors == []


def received(client: Client, count: int) -> list[dict]:
    return [json.loads(m) for m in client.wait_for(count)]


def connections_table(chat):
    return boto3.resource("dynamodb").Table(chat.connections_table)


def messages_table(chat):
    return boto3.resource("dynamodb").Table(chat.messages_table)


@pytest.mark.parametrize(("query", "status"), [("", 400), ("?nick=no%20spaces", 400),
                                                ("?nick=" + "x" * 21, 400)])
def test_connect_without_a_valid_nickname_is_refused_400(room, query, status):
    _, gateway, _ = room
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        Client(gateway.url + query)
    assert refused.value.status_code == status


def test_a_nickname_in_use_is_refused_409_and_a_stale_holder_frees_it(room):
    chat, gateway, join = room
    join("alice")
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        Client(f"{gateway.url}?nick=alice")
    assert refused.value.status_code == 409
    connections_table(chat).put_item(Item={"connectionId": "GhostConnAAAA0=", "nickname": "ghost"})
    join("ghost")  # the old row's connection is gone: get_connection 410, row deleted
    nicknames = sorted(r["nickname"] for r in connections_table(chat).scan()["Items"])
    assert nicknames == ["alice", "ghost"]


def test_join_notice_reaches_the_others_but_not_the_newcomer(room):
    _, _, join = room
    alice = join("alice")
    bob = join("bob")
    assert received(alice, 1)[0] | {"time": 0} == {"id": 2, "type": "join", "nick": "bob",
                                                   "time": 0}
    assert bob.messages == []  # the notice went out before bob's handshake completed


def test_broadcast_reaches_everyone_with_one_id_and_direct_only_the_pair(room):
    _, gateway, join = room
    alice, bob, carol = join("alice"), join("bob"), join("carol")
    alice.send_json({"action": "sendmessage", "text": "hello room"})
    copies = [received(c, n)[-1] for c, n in ((alice, 3), (bob, 2), (carol, 1))]
    assert {(m["id"], m["from"], m["text"]) for m in copies} == {(4, "alice", "hello room")}
    bob.send_json({"action": "sendmessage", "text": "psst", "to": "carol"})
    assert received(carol, 2)[-1]["to"] == "carol"
    assert received(bob, 3)[-1]["text"] == "psst"
    gateway.log.wait_for_invocations("sendmessage", 2)  # its posts are done
    assert len(alice.messages) == 3


def test_direct_message_to_nobody_answers_an_error_to_the_sender(room):
    _, _, join = room
    alice = join("alice")
    alice.send_json({"action": "sendmessage", "text": "hi", "to": "zed"})
    assert alice.recv_json() == {"type": "error", "error": "nobody called zed is here"}


def test_member_list_is_complete_across_scan_pages(room):
    _, gateway, join = room
    alice, _, _ = join("alice"), join("bob"), join("carol")
    alice.send_json({"action": "members"})
    assert received(alice, 3)[-1] == {"type": "members", "members": ["alice", "bob", "carol"]}
    [entry] = gateway.log.wait_for_invocations("members", 1)  # recorded after the push
    assert any("scan: 2 pages" in line for line in entry["logs"])


def test_broadcast_deletes_a_stale_row_on_gone(room):
    chat, gateway, join = room
    alice = join("alice")
    connections_table(chat).put_item(Item={"connectionId": "PhantomConnA0=",
                                           "nickname": "phantom"})
    alice.send_json({"action": "sendmessage", "text": "anyone?"})
    received(alice, 1)
    gateway.log.wait_for_invocations("sendmessage", 1)
    assert [r["nickname"] for r in connections_table(chat).scan()["Items"]] == ["alice"]
    assert any(e["op"] == "post" and e["status"] == 410 for e in gateway.log.entries("manage"))


def test_a_member_still_joining_keeps_its_row_when_a_post_to_it_is_gone(room):
    """A connection answers 410 until its `$connect` returns (docs §4.1), which may take up to
    29 s: a row written less than JOINING_SECONDS ago is kept when a post to it is gone, so a
    member who joins while someone speaks stays in the room (and catches up); an older row,
    or one without `joinedAt`, is stale and deleted. (The backend is not imported here: it
    runs in the function, and importing it in this process would swap a module the checks'
    seal watches, failing a later test on this worker.)"""
    chat, gateway, join = room
    alice = join("alice")
    now = int(time.time())
    table = connections_table(chat)
    table.put_item(Item={"connectionId": "JoiningConnA=", "nickname": "joining",
                         "joinedAt": now})
    table.put_item(Item={"connectionId": "StaleConnAAA=", "nickname": "stale",
                         "joinedAt": now - 60})
    alice.send_json({"action": "sendmessage", "text": "anyone?"})
    received(alice, 1)
    [entry] = gateway.log.wait_for_invocations("sendmessage", 1)
    assert sorted(r["nickname"] for r in table.scan()["Items"]) == ["alice", "joining"]
    assert any("JoiningConnA= is still joining: keeping it" in line for line in entry["logs"])
    assert any("StaleConnAAA=: deleting it" in line for line in entry["logs"])


def test_messages_are_stored_with_a_ttl_and_the_table_has_ttl_enabled(room):
    chat, _, join = room
    alice = join("alice")
    alice.send_json({"action": "sendmessage", "text": "keep me"})
    [echo] = received(alice, 1)
    row = messages_table(chat).get_item(Key={"room": "lobby", "id": echo["id"]})["Item"]
    assert row["expiresAt"] - row["time"] == 86400
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=chat.messages_table)
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED",
                                            "AttributeName": "expiresAt"}


def test_catchup_sends_what_came_after_the_id_skipping_expired_and_others_direct(room):
    chat, gateway, join = room
    alice, bob = join("alice"), join("bob")
    alice.send_json({"action": "sendmessage", "text": "one"})
    alice.send_json({"action": "sendmessage", "text": "secret", "to": "bob"})
    received(alice, 2)
    table = messages_table(chat)
    table.put_item(Item={"room": "lobby", "id": 99, "type": "message", "from": "alice",
                         "text": "expired", "time": 0, "expiresAt": 1})
    carol = join("carol")
    carol.send_json({"action": "catchup", "after": 2})
    gateway.log.wait_for_invocations("catchup", 1)
    texts = [m.get("text") or m["type"] for m in received(carol, 2)]
    assert texts == ["one", "join"]  # not bob's secret, not the expired row
    assert len(carol.messages) == 2  # the catch-up invocation (and its posts) has finished
    bob.close()


def test_a_newcomer_catching_up_from_null_gets_the_latest_messages_in_order(room):
    _, _, join = room
    alice = join("alice")
    for n in range(25):
        alice.send_json({"action": "sendmessage", "text": f"m{n}"})
    received(alice, 25)
    bob = join("bob")
    bob.send_json({"action": "catchup", "after": None})
    ids = [m["id"] for m in received(bob, 20)]
    assert ids == list(range(8, 28))  # the last 20 of ids 1..27 (alice's join, 25, bob's join)


def test_disconnect_stores_and_announces_a_leave(room):
    _, _, join = room
    alice, bob = join("alice"), join("bob")
    received(alice, 1)
    bob.close()
    assert received(alice, 2)[-1] | {"time": 0} == {"id": 3, "type": "leave", "nick": "bob",
                                                    "time": 0}


def test_unknown_actions_get_the_help_from_the_two_way_default_route(room):
    _, _, join = room
    alice = join("alice")
    alice.send_json({"action": "dance"})
    assert alice.recv_json()["actions"] == ["sendmessage", "members", "catchup"]


def test_the_execution_role_may_only_touch_these_tables_and_this_apis_connections(room):
    chat, _, _ = room
    iam = boto3.client("iam")
    policy = iam.get_role_policy(RoleName="testchat-handlers", PolicyName="chat-room")
    statements = policy["PolicyDocument"]["Statement"]
    assert [t.rsplit("/", 1)[1] for t in statements[0]["Resource"]] == [
        chat.connections_table, chat.messages_table]
    assert statements[1]["Resource"].endswith(f":{chat.api_id}/{chat.stage}/*/@connections/*")


@pytest.mark.slow
@pytest.mark.parametrize("room", [None], indirect=True)
def test_thirty_members_get_every_broadcast(room):
    """As lesson 07's load test runs: at DynamoDB's own page size (with pages of two rows
    each join's scan of the members would take 15 calls)."""
    _, gateway, _ = room
    report, crowd = run_load(gateway.url, members=30, messages=4, timeout=120)
    try:
        assert len(report.latencies_ms) == report.expected == 120
        assert all(latency >= 0 for latency in report.latencies_ms)
    finally:
        gateway.log.clear()
        for n, member in enumerate(crowd, start=1):  # one at a time, as lesson 07's crowd
            member.close()
            gateway.log.wait_for_invocations("$disconnect", n, timeout=60)
    assert not gateway.connections


def test_an_execution_environment_builds_one_connections_client_per_endpoint(aws):
    """Lambda's best practice (docs/aws-behaviour.md §4.3a): the invocations an environment
    serves reuse the @connections client the first one built."""
    chat = types.SimpleNamespace(**runpy.run_path(str(BACKEND / "chat.py")))  # not helpers.*

    def event(stage: str) -> dict:
        return {"requestContext": {"domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                                   "stage": stage}}

    first = chat.management_api(event("prod"))
    assert chat.management_api(event("prod")) is first
    other = chat.management_api(event("dev"))
    assert other is not first
    assert (first.meta.endpoint_url, other.meta.endpoint_url) == (
        "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
        "https://abc123.execute-api.us-east-1.amazonaws.com/dev")
