"""The connection state machine without sockets: events in, actions out (connection.py)."""

from __future__ import annotations

import json

from helpers.gateway.config import ApiConfig, Authorizer, Route
from helpers.gateway.connection import (
    Accept,
    CallKind,
    Cancel,
    Close,
    Connection,
    Deadline,
    Ended,
    Finished,
    Gone,
    Handshake,
    Hold,
    Invoke,
    Outcome,
    Record,
    Reject,
    Schedule,
    Send,
    State,
)


class Fn:
    """Stands in for a Lambda function: the machine never calls it, it only names it."""

    def __init__(self, name: str, timeout: float = 3.0):
        self.name, self.timeout = name, timeout


def config(*keys: str, two_way=(), authorizer: Authorizer | None = None) -> ApiConfig:
    routes = {k: Route(k, Fn(k), two_way=k in two_way,
                       authorizer=authorizer if k == "$connect" else None) for k in keys}
    return ApiConfig("abcdefghij", "dev", "$request.body.action", routes)


def machine(cfg: ApiConfig, path="/dev", query=(), headers=()) -> Connection:
    return Connection(cfg, Handshake(path, list(headers), list(query), "127.0.0.1", "test"),
                      idle_timeout=600, max_lifetime=7200)


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def opened(*keys, **options) -> Connection:
    conn = machine(config(*keys, **options))
    actions = conn.start(False, 0.0)
    if of(actions, Invoke):
        actions = conn.invocation_finished(
            Finished(of(actions, Invoke)[0].call, Outcome.OK, {"statusCode": 200}), 0.0)
    assert conn.state is State.OPEN
    return conn


def test_without_connect_handler_the_handshake_is_accepted_with_both_deadlines():
    conn = machine(config("$default"))
    actions = conn.start(False, 0.0)
    assert conn.state is State.OPEN and of(actions, Accept) == [Accept({})]
    assert of(actions, Schedule) == [Schedule(Deadline.IDLE, 600),
                                     Schedule(Deadline.LIFETIME, 7200)]


def test_wrong_stage_is_refused_403_and_never_disconnects():
    conn = machine(config("$connect", "$disconnect"), path="/prod")
    actions = conn.start(False, 0.0)
    assert of(actions, Reject) == [Reject(403, "Forbidden")] and conn.state is State.REFUSED
    assert conn.tcp_lost(1.0) == []


def test_connect_handler_decides_and_its_headers_go_into_the_101():
    conn = machine(config("$connect"))
    (invoke,) = of(conn.start(False, 0.0), Invoke)
    assert invoke.call.kind is CallKind.CONNECT and conn.state is State.CONNECTING
    answer = {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "chat"}}
    actions = conn.invocation_finished(Finished(invoke.call, Outcome.OK, answer), 1.0)
    assert of(actions, Accept) == [Accept({"Sec-WebSocket-Protocol": "chat"})]


def test_connect_failures_map_to_aws_statuses():
    for outcome, status in [(Outcome.ERROR, 502), (Outcome.INTEGRATION_TIMEOUT, 504),
                            (Outcome.CONFIG_ERROR, 500), (Outcome.FUNCTION_TIMEOUT, 502)]:
        conn = machine(config("$connect"))
        (invoke,) = of(conn.start(False, 0.0), Invoke)
        actions = conn.invocation_finished(Finished(invoke.call, outcome), 1.0)
        assert of(actions, Reject)[0].status == status


def test_client_leaving_during_connect_is_not_accepted_later():
    conn = machine(config("$connect", "$disconnect"))
    (invoke,) = of(conn.start(False, 0.0), Invoke)
    assert conn.tcp_lost(0.5) == []
    assert conn.invocation_finished(Finished(invoke.call, Outcome.OK, {"statusCode": 200}),
                                    1.0) == []


def test_missing_identity_source_is_401_without_calling_the_authorizer():
    auth = Authorizer(Fn("auth"), ("route.request.querystring.token",))
    conn = machine(config("$connect", authorizer=auth))
    actions = conn.start(False, 0.0)
    assert of(actions, Reject) == [Reject(401, "Unauthorized")] and not of(actions, Invoke)


def test_authorizer_allow_then_connect_with_its_context():
    auth = Authorizer(Fn("auth"), ("route.request.querystring.token",))
    conn = machine(config("$connect", authorizer=auth), query=[("token", "t")])
    (invoke,) = of(conn.start(False, 0.0), Invoke)
    assert invoke.call.kind is CallKind.AUTHORIZER and conn.state is State.AUTHORIZING
    policy = {"Version": "2012-10-17", "Statement": [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]}
    allow = {"principalId": "me", "policyDocument": policy}
    (connect,) = of(conn.invocation_finished(Finished(invoke.call, Outcome.OK, allow), 1.0),
                    Invoke)
    assert connect.call.kind is CallKind.CONNECT
    assert connect.call.event["requestContext"]["authorizer"]["principalId"] == "me"


def test_each_message_is_its_own_call_at_once():
    conn = opened("$default")
    first = of(conn.text_received(b"a", 1.0), Invoke)
    second = of(conn.text_received(b"b", 1.0), Invoke)  # the first has not finished
    assert [i.call.event["body"] for i in first + second] == ["a", "b"]


def test_two_way_answer_is_sent_and_a_one_way_answer_is_not():
    conn = opened("$default", "quiet", two_way=["$default"])
    (call,) = of(conn.text_received(b"hi", 1.0), Invoke)
    actions = conn.invocation_finished(Finished(call.call, Outcome.OK, {"body": "hi!"}), 2.0)
    assert of(actions, Send) == [Send("hi!", "reply")]
    (quiet,) = of(conn.text_received(b'{"action": "quiet"}', 3.0), Invoke)
    assert conn.invocation_finished(Finished(quiet.call, Outcome.OK, {"body": "x"}), 4.0) == []


def test_failures_answer_with_aws_error_frames():
    conn = opened("$default")
    for outcome, message in [(Outcome.ERROR, "Internal server error"),
                             (Outcome.FUNCTION_TIMEOUT, "Internal server error"),
                             (Outcome.INTEGRATION_TIMEOUT, "Endpoint request timed out")]:
        (call,) = of(conn.text_received(b"x", 1.0), Invoke)
        (send,) = of(conn.invocation_finished(Finished(call.call, outcome), 2.0), Send)
        assert json.loads(send.data)["message"] == message and send.via == "error"


def test_no_route_and_no_default_is_forbidden_without_a_call():
    conn = opened("ping")
    actions = conn.text_received(b'{"action": "pong"}', 1.0)
    assert not of(actions, Invoke)
    assert json.loads(of(actions, Send)[0].data)["message"] == "Forbidden"


def test_messages_before_the_close_frame_are_invoked_and_disconnect_runs_once():
    conn = opened("$default", "$disconnect", two_way=["$default"])
    calls = [of(conn.text_received(t, 1.0), Invoke)[0] for t in (b"1", b"2")]
    closing = conn.close_received(1000, "bye", 1.0)
    (disconnect,) = of(closing, Invoke)
    assert disconnect.call.kind is CallKind.DISCONNECT
    assert disconnect.call.event["requestContext"]["disconnectStatusCode"] == 1000
    assert of(closing, Gone) and of(closing, Cancel)
    assert conn.tcp_lost(2.0) == [] and conn.close_received(1000, "", 2.0) == []
    late = conn.invocation_finished(Finished(calls[0].call, Outcome.OK, {"body": "1"}), 3.0)
    assert not of(late, Send) and of(late, Record)[0].kind == "drop"
    assert conn.invocation_finished(Finished(disconnect.call, Outcome.OK), 3.0) == [Ended()]


def test_tcp_lost_reports_1006_and_messages_after_it_are_ignored():
    conn = opened("$default", "$disconnect")
    (disconnect,) = of(conn.tcp_lost(1.0), Invoke)
    assert disconnect.call.event["requestContext"]["disconnectStatusCode"] == 1006
    assert conn.text_received(b"late", 2.0) == []


def test_binary_frame_closes_1003():
    conn = opened("$default")
    (close,) = of(conn.binary_received(1.0), Close)
    assert close.code == 1003 and conn.state is State.CLOSED


def test_idle_deadline_rearms_after_activity_and_closes_when_idle():
    conn = opened("$default")
    conn.text_received(b"x", 500.0)
    assert conn.deadline_reached(Deadline.IDLE, 600.0) == [Schedule(Deadline.IDLE, 500.0)]
    actions = conn.deadline_reached(Deadline.IDLE, 1100.0)
    assert of(actions, Close) == [Close(1001, "Going away")]


def test_lifetime_deadline_closes_a_busy_connection():
    conn = opened("$default")
    conn.text_received(b"x", 7199.0)
    assert of(conn.deadline_reached(Deadline.LIFETIME, 7200.0), Close)[0].code == 1001


def test_posts_only_while_open_and_delete_closes_1000():
    conn = opened("$default")
    assert conn.postable and of(conn.post(b"hi", 1.0), Send) == [Send(b"hi", "push")]
    assert of(conn.delete(2.0), Close) == [Close(1000, "Connection Closed Normally")]
    assert not conn.postable


def test_an_answer_that_overtakes_waits_briefly_for_the_earlier_one():
    conn = opened("$default", two_way=["$default"])
    first, second = (of(conn.text_received(t, 1.0), Invoke)[0] for t in (b"1", b"2"))
    early = conn.invocation_finished(Finished(second.call, Outcome.OK, {"body": "2"}), 2.0)
    assert early == [Hold(conn.answer_hold)]
    actions = conn.invocation_finished(Finished(first.call, Outcome.OK, {"body": "1"}), 2.0)
    assert [a.data for a in of(actions, Send)] == ["1", "2"]


def test_a_slow_earlier_message_holds_the_next_answer_only_until_the_hold_ends():
    conn = opened("$default", two_way=["$default"])
    _slow, fast = (of(conn.text_received(t, 1.0), Invoke)[0] for t in (b"slow", b"fast"))
    assert of(conn.invocation_finished(Finished(fast.call, Outcome.OK, {"body": "fast"}), 2.0),
              Hold)
    assert of(conn.release_held(2.05), Send) == [Send("fast", "reply")]


def test_aws_iam_on_connect_refuses_before_any_call_when_the_shell_says_so():
    routes = {"$connect": Route("$connect", Fn("$connect"), iam_auth=True)}
    cfg = ApiConfig("abcdefghij", "dev", "$request.body.action", routes)
    refused = Connection(cfg, Handshake("/dev", [], [], "127.0.0.1", "test",
                                        iam_refusal=(403, "Missing Authentication Token",
                                                     "not signed")),
                         idle_timeout=600, max_lifetime=7200)
    actions = refused.start(False, 0.0)
    assert of(actions, Reject) == [Reject(403, "Missing Authentication Token")]
    assert of(actions, Invoke) == [] and refused.state is State.REFUSED
    allowed = Connection(cfg, Handshake("/dev", [], [], "127.0.0.1", "test"),
                         idle_timeout=600, max_lifetime=7200)
    assert of(allowed.start(False, 0.0), Invoke)[0].call.kind is CallKind.CONNECT
