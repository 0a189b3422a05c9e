"""Live-socket tests of the gateway's protocol behaviour (issue behaviours 1, 4, 6, 8, 9, 10).

Every test talks to a real gateway over a real socket with websocket-client.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
import websocket
from conftest import read_close

from helpers.gateway import sigv4


def echo(event, context):
    return {"statusCode": 200, "body": event["body"]}


def ok(event, context):
    return {"statusCode": 200}


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


# 1. One port, two protocols ------------------------------------------------------------


def test_plain_http_get_on_the_socket_url_gets_426(serve):
    gateway = serve({"$default": echo})
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=5)
    conn.request("GET", "/dev")
    response = conn.getresponse()
    assert response.status == 426
    assert "WebSocket" in json.loads(response.read())["message"]


def test_websocket_and_connections_api_share_one_port(serve, connect):
    gateway = serve({"$default": ok})
    ws = connect(gateway.url)
    [connection_id] = gateway.connections
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=5)
    path = f"/dev/@connections/{connection_id.replace('=', '%3D')}"
    signed = sigv4.sign("POST", f"http://127.0.0.1:{gateway.port}{path}", b"hi",
                        access_key="testing", secret_key="testing")  # the account owner's
    conn.request("POST", path, body=b"hi", headers=signed)
    assert conn.getresponse().status == 200
    assert ws.recv() == "hi"


def test_gateway_binds_loopback_only_by_default(serve):
    gateway = serve({"$default": ok})
    assert gateway.url.startswith("ws://127.0.0.1:")
    probe = socket.socket()
    probe.settimeout(1)
    assert probe.connect_ex(("127.0.0.1", gateway.port)) == 0
    probe.close()


def test_wrong_stage_is_refused_with_403(serve):
    gateway = serve({"$default": ok})
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"ws://127.0.0.1:{gateway.port}/prod", timeout=5)
    assert refused.value.status_code == 403


# 4. Route selection over the wire -----------------------------------------------------


def routed(event, context):
    return {"statusCode": 200, "body": event["requestContext"]["routeKey"]}


@pytest.mark.parametrize(
    ("message", "route"),
    [
        ('{"action": "join"}', "join"),
        ('{"action": "Join"}', "$default"),  # exact, case-sensitive
        ('{"other": 1}', "$default"),  # missing key -> "" -> $default
        ("not json at all", "$default"),
        ('["join"]', "$default"),
    ],
)
def test_messages_take_the_route_their_action_names(serve, connect, message, route):
    gateway = serve({"join": routed, "$default": routed}, two_way=["join", "$default"])
    ws = connect(gateway.url)
    ws.send(message)
    assert ws.recv() == route


def test_template_expressions_with_nested_paths_and_literal_text(serve, connect):
    gateway = serve(
        {"chat/join": routed, "$default": routed},
        route_selection_expression="${request.body.service.name}/${request.body.action}",
        two_way=["chat/join", "$default"],
    )
    ws = connect(gateway.url)
    ws.send('{"service": {"name": "chat"}, "action": "join"}')
    assert ws.recv() == "chat/join"


def test_connect_and_disconnect_run_whatever_the_expression(serve, connect):
    gateway = serve({"$connect": ok, "$disconnect": ok}, route_selection_expression="\\$default")
    connect(gateway.url).close()
    gateway.log.wait_for_invocations("$disconnect")
    assert [e["route"] for e in gateway.log.invocations()] == ["$connect", "$disconnect"]


# 6. $connect gates the handshake ------------------------------------------------------


def test_connect_returning_403_fails_the_handshake_with_403(serve):
    gateway = serve({"$connect": lambda e, c: {"statusCode": 403}, "$default": ok})
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(gateway.url, timeout=5)
    assert refused.value.status_code == 403
    assert gateway.connections == []


def test_connect_that_raises_fails_the_handshake_with_502(serve):
    def broken(event, context):
        raise RuntimeError("database down")

    gateway = serve({"$connect": broken})
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(gateway.url, timeout=5)
    assert refused.value.status_code == 502


def test_connect_response_headers_go_into_the_101(serve, connect):
    def subprotocol(event, context):
        return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "chat"}}

    gateway = serve({"$connect": subprotocol})
    ws = connect(gateway.url, subprotocols=["chat"])
    assert ws.getsubprotocol() == "chat"


def test_without_a_connect_route_connections_are_accepted(serve, connect):
    gateway = serve({"$default": echo}, two_way=["$default"])
    ws = connect(gateway.url)
    ws.send("hi")
    assert ws.recv() == "hi"


def test_posting_to_a_connection_during_its_own_connect_is_gone(serve, connect):
    seen = {}

    def greet(event, context):
        gateway = serving[0]
        status, headers, _ = gateway.handle_management(
            "POST", event["requestContext"]["connectionId"], b"welcome")
        seen["status"], seen["type"] = status, headers.get("x-amzn-ErrorType")
        return {"statusCode": 200}

    serving = []
    gateway = serve({"$connect": greet})
    serving.append(gateway)
    connect(gateway.url)
    assert seen == {"status": 410, "type": "GoneException"}


# 8. Message routes ---------------------------------------------------------------------


def test_one_way_route_sends_nothing_back(serve, connect):
    gateway = serve({"$default": echo})  # no route response: one-way
    ws = connect(gateway.url, timeout=0.5)
    ws.send("hello")
    gateway.log.wait_for_invocations("$default")
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()


def test_no_route_and_no_default_gets_the_forbidden_frame_and_stays_open(serve, connect):
    gateway = serve({"join": echo}, two_way=["join"])
    ws = connect(gateway.url)
    ws.send('{"action": "leave"}')
    frame = ws.recv()
    [connection_id] = gateway.connections
    assert frame.startswith('{"message": "Forbidden", "connectionId":"' + connection_id + '"')
    assert set(json.loads(frame)) == {"message", "connectionId", "requestId"}
    ws.send('{"action": "join"}')
    assert ws.recv() == '{"action": "join"}'


def test_handler_that_raises_gets_internal_server_error_even_on_one_way_routes(serve, connect):
    def broken(event, context):
        raise ValueError("boom")

    gateway = serve({"$default": broken})
    ws = connect(gateway.url)
    ws.send("x")
    assert json.loads(ws.recv())["message"] == "Internal server error"
    [invocation] = gateway.log.invocations("$default")
    assert "ValueError: boom" in invocation["error"]


def test_integration_timeout_sends_the_timeout_frame_and_drops_the_late_result(serve, connect):
    release = threading.Event()

    def slow(event, context):
        release.wait(5)
        return {"statusCode": 200, "body": "too late"}

    gateway = serve({"$default": slow, "fast": echo}, two_way=["$default", "fast"],
                    integration_timeout=0.2, function_timeout=10)
    ws = connect(gateway.url)
    ws.send("x")
    frame = json.loads(ws.recv())
    assert frame["message"] == "Endpoint request timed out"
    release.set()
    ws.send('{"action": "fast"}')
    assert ws.recv() == '{"action": "fast"}'  # not "too late": the late result was dropped


def test_function_timeout_shorter_than_the_integration_is_an_internal_error(serve, connect):
    release = threading.Event()
    gateway = serve({"$default": lambda e, c: release.wait(5)}, function_timeout=0.2)
    ws = connect(gateway.url)
    ws.send("x")
    assert json.loads(ws.recv())["message"] == "Internal server error"
    release.set()


@pytest.mark.parametrize("garbage", [None, "just a string", {"body": "no status"}, [1, 2]])
def test_garbage_return_on_a_two_way_route_affects_only_that_request(serve, connect, garbage):
    gateway = serve({"$default": lambda e, c: garbage, "ping": lambda e, c:
                     {"statusCode": 200, "body": "pong"}}, two_way=["$default", "ping"])
    ws = connect(gateway.url)
    ws.send("x")
    reply = ws.recv()
    if isinstance(garbage, dict):
        assert reply == "no status"  # statusCode does not change delivery (reference 4.4)
    else:
        assert json.loads(reply)["message"] == "Internal server error"
    ws.send('{"action": "ping"}')
    assert ws.recv() == "pong"


# 9. Limits ------------------------------------------------------------------------------


def test_binary_frame_closes_1003(serve, connect):
    gateway = serve({"$default": ok})
    ws = connect(gateway.url)
    ws.send_binary(b"\x00\x01")
    code, reason = read_close(ws)
    assert code == 1003
    assert "text" in reason


def test_frame_over_32kb_closes_1009(serve, connect):
    gateway = serve({"$default": ok})
    ws = connect(gateway.url)
    ws.send("x" * (32 * 1024 + 1))
    assert read_close(ws)[0] == 1009


def test_fragmented_message_over_128kb_closes_1009(serve, connect):
    gateway = serve({"$default": ok})
    ws = connect(gateway.url)
    chunk = "y" * (32 * 1024)
    ws.send_frame(websocket.ABNF.create_frame(chunk, websocket.ABNF.OPCODE_TEXT, fin=0))
    for _ in range(3):
        ws.send_frame(websocket.ABNF.create_frame(chunk, websocket.ABNF.OPCODE_CONT, fin=0))
    ws.send_frame(websocket.ABNF.create_frame("z", websocket.ABNF.OPCODE_CONT, fin=1))
    assert read_close(ws)[0] == 1009


def test_128kb_message_in_32kb_frames_is_delivered(serve, connect):
    gateway = serve({"$default": lambda e, c: {"statusCode": 200, "body": str(len(e["body"]))}},
                    two_way=["$default"])
    ws = connect(gateway.url)
    chunk = "y" * (32 * 1024)
    ws.send_frame(websocket.ABNF.create_frame(chunk, websocket.ABNF.OPCODE_TEXT, fin=0))
    for fin in (0, 0, 1):
        ws.send_frame(websocket.ABNF.create_frame(chunk, websocket.ABNF.OPCODE_CONT, fin=fin))
    assert ws.recv() == str(128 * 1024)


def test_answers_go_out_in_frames_of_at_most_32kb(serve, connect):
    # The 32 KB frame limit applies both ways (docs/aws-behaviour.md §5): a 70,000-character
    # answer arrives as a text frame and two continuations, FIN on the last only.
    gateway = serve({"$default": lambda e, c: {"statusCode": 200, "body": e["body"] * 7_000}},
                    two_way=["$default"])
    ws = connect(gateway.url)
    ws.send("0123456789")
    frames = [ws.recv_frame() for _ in range(3)]
    assert [(f.opcode, f.fin, len(f.data)) for f in frames] == [
        (websocket.ABNF.OPCODE_TEXT, 0, 32 * 1024),
        (websocket.ABNF.OPCODE_CONT, 0, 32 * 1024),
        (websocket.ABNF.OPCODE_CONT, 1, 70_000 - 64 * 1024),
    ]
    assert b"".join(f.data for f in frames) == b"0123456789" * 7_000
    ws.send("")  # an empty answer is one empty text frame
    frame = ws.recv_frame()
    assert (frame.opcode, frame.fin, frame.data) == (websocket.ABNF.OPCODE_TEXT, 1, b"")


def test_oversized_frame_close_does_not_disturb_other_clients(serve, connect):
    gateway = serve({"$default": echo}, two_way=["$default"])
    bystander = connect(gateway.url)
    offender = connect(gateway.url)
    offender.send("x" * 40_000)
    assert read_close(offender)[0] == 1009
    bystander.send("still here")
    assert bystander.recv() == "still here"


def test_new_connection_rate_limit_answers_429(serve, connect):
    gateway = serve({"$default": ok}, max_connections_per_second=2)
    connect(gateway.url)
    connect(gateway.url)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(gateway.url, timeout=5)
    assert refused.value.status_code == 429


# 10. $disconnect exactly once, with the right code and reason ---------------------------


def disconnect_events(gateway, count=1):
    gateway.log.wait_for_invocations("$disconnect", count)
    return [e for e in gateway.log.invocations("$disconnect")]


def serve_recording(serve, **options):
    seen = []

    def on_disconnect(event, context):
        seen.append(event["requestContext"])
        return {"statusCode": 200}

    gateway = serve({"$disconnect": on_disconnect, "$default": ok}, **options)
    return gateway, seen


@pytest.mark.parametrize(
    ("close", "expected"),
    [
        ((1000, b""), (1000, "")),
        ((1001, b"tab closed"), (1001, "tab closed")),
        ((None, b""), (1005, "Client-side close frame status not set")),
    ],
)
def test_client_close_reports_its_code_and_reason(serve, connect, close, expected):
    gateway, seen = serve_recording(serve)
    ws = connect(gateway.url)
    code, reason = close
    if code is None:
        ws.send_frame(websocket.ABNF.create_frame(b"", websocket.ABNF.OPCODE_CLOSE))
    else:
        ws.close(status=code, reason=reason, timeout=1)
    disconnect_events(gateway)
    assert len(seen) == 1
    assert (seen[0]["disconnectStatusCode"], seen[0]["disconnectReason"]) == expected


def test_vanished_client_is_cleaned_up_with_1006(serve, connect):
    gateway, seen = serve_recording(serve)
    ws = connect(gateway.url)
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.sock.close()
    disconnect_events(gateway)
    assert (seen[0]["disconnectStatusCode"], gateway.connections) == (1006, [])


def test_delete_connection_closes_1000_and_disconnect_runs_once(serve, connect):
    gateway, seen = serve_recording(serve)
    ws = connect(gateway.url)
    [connection_id] = gateway.connections
    assert gateway.handle_management("DELETE", connection_id, b"")[0] == 204
    assert read_close(ws) == (1000, "Connection Closed Normally")
    ws.close(timeout=0.5)
    disconnect_events(gateway)
    gateway.stop()  # every $disconnect has run: a second one would be in `seen` now
    assert [(s["disconnectStatusCode"], s["disconnectReason"]) for s in seen] == [
        (1000, "Connection Closed Normally")
    ]


def test_stop_closes_every_connection_1001_and_runs_disconnect(serve, connect):
    gateway, seen = serve_recording(serve)
    clients = [connect(gateway.url) for _ in range(3)]
    gateway.stop()
    assert [read_close(ws)[0] for ws in clients] == [1001, 1001, 1001]
    assert sorted(s["disconnectStatusCode"] for s in seen) == [1001, 1001, 1001]
    probe = socket.socket()
    assert probe.connect_ex(("127.0.0.1", gateway.port)) != 0  # the port is free
    probe.close()
