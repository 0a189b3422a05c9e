"""Timers on real and virtual clocks (behaviour 9), load and faults (12), notebook life (13)."""

from __future__ import annotations

import contextlib
import io
import itertools
import socket
import threading
import time

import pytest

from helpers.client import Client
from helpers.gateway import LocalGateway, VirtualClock


def ok(event, context):
    return {"statusCode": 200}


def echo(event, context):
    return {"statusCode": 200, "body": event["body"]}


@pytest.fixture
def disconnects():
    seen = []

    def on_disconnect(event, context):
        ctx = event["requestContext"]
        seen.append((ctx["disconnectStatusCode"], ctx["disconnectReason"]))
        return {"statusCode": 200}

    return seen, on_disconnect


# 9. Idle timeout and maximum lifetime ---------------------------------------------------


def test_connect_quota_counts_new_connections_per_second_of_the_gateways_clock(serve):
    import websocket

    clock = VirtualClock()
    gateway = serve({"$default": ok}, clock=clock, max_connections_per_second=3)
    admitted = [Client(gateway.url) for _ in range(3)]
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        Client(gateway.url)
    assert refused.value.status_code == 429
    clock.advance(seconds=0.999)
    with pytest.raises(websocket.WebSocketBadStatusException):
        Client(gateway.url)
    clock.advance(seconds=0.001)      # a second after the first three: room for three more
    admitted += [Client(gateway.url) for _ in range(3)]
    assert len(gateway.connections) == 6
    assert [e["status"] for e in gateway.log.entries("reject")] == [429, 429]
    for client in admitted:
        client.close()


def test_drop_ends_tcp_without_a_close_frame_the_client_and_disconnect_see_1006(
        serve, disconnects):
    seen, on_disconnect = disconnects
    gateway = serve({"$default": ok, "$disconnect": on_disconnect})
    stays, dropped = Client(gateway.url), Client(gateway.url)
    gateway.drop(gateway.connections[1])
    assert dropped.wait_closed() == (1006, "")
    assert seen == [(1006, "")]
    assert [e["by"] for e in gateway.log.entries("close")] == ["network"]
    assert not stays.closed and len(gateway.connections) == 1
    stays.close()


@pytest.mark.parametrize(("code", "reason"), [(1011, "Internal error"),
                                              (1012, "Service restart")])
def test_drop_with_a_code_sends_that_close_frame_first(serve, disconnects, code, reason):
    seen, on_disconnect = disconnects
    gateway = serve({"$default": ok, "$disconnect": on_disconnect})
    clients = [Client(gateway.url), Client(gateway.url)]
    gateway.drop(code=code, reason=reason)            # every open connection
    assert [c.wait_closed() for c in clients] == [(code, reason)] * 2
    assert seen == [(code, reason)] * 2
    assert gateway.connections == []


def test_idle_timeout_closes_1001_going_away_at_the_real_aws_value(serve, disconnects):
    seen, on_disconnect = disconnects
    clock = VirtualClock()
    gateway = serve({"$default": ok, "$disconnect": on_disconnect}, clock=clock)
    client = Client(gateway.url)
    clock.advance(minutes=9, seconds=59)
    assert not client.closed
    clock.advance(seconds=1)
    assert client.wait_closed() == (1001, "Going away")
    assert seen == [(1001, "Going away")]


def test_messages_reset_the_idle_timer(serve):
    clock = VirtualClock()
    gateway = serve({"$default": ok}, clock=clock)
    client = Client(gateway.url)
    clock.advance(minutes=9)
    client.send("still here")
    gateway.log.wait_for_invocations("$default")
    clock.advance(minutes=9)
    assert not client.closed
    clock.advance(minutes=1)
    assert client.wait_closed()[0] == 1001


def test_two_hour_lifetime_closes_even_a_busy_connection(serve, disconnects):
    seen, on_disconnect = disconnects
    clock = VirtualClock()
    gateway = serve({"$default": ok, "$disconnect": on_disconnect}, clock=clock)
    client = Client(gateway.url)
    for n in range(1, 24):  # a message every 5 minutes: never idle
        clock.advance(minutes=5)
        client.send("ping")
        gateway.log.wait_for_invocations("$default", n)
    assert not client.closed
    clock.advance(minutes=5)  # 2 hours after connecting
    assert client.wait_closed() == (1001, "Going away")
    assert seen == [(1001, "Going away")]


def test_idle_timeout_fires_live_on_the_real_clock(serve):
    gateway = serve({"$default": ok}, idle_timeout=0.3)
    client = Client(gateway.url)
    started = time.monotonic()
    assert client.wait_closed(timeout=10) == (1001, "Going away")
    assert time.monotonic() - started >= 0.25  # real time is the point: never early


# 12. Load and faults ------------------------------------------------------------------------


def test_fast_handlers_answer_in_order_in_practice(serve):
    """Each message is its own invocation and AWS does not promise order
    (docs/aws-behaviour.md §4.3a), but calls start in arrival order, so fast answers keep it:
    a rare overtaking (a thread descheduled on a loaded machine) is all we tolerate."""
    gateway = serve({"$default": echo}, two_way=["$default"])
    client = Client(gateway.url)
    for n in range(200):
        client.send(str(n))
    answers = [int(client.recv()) for _ in range(200)]
    assert sorted(answers) == list(range(200))
    overtaken = sum(1 for a, b in itertools.pairwise(answers) if a > b)
    assert overtaken <= 5, answers


def test_200_concurrent_clients_are_served(serve):
    gateway = serve({"$default": echo}, two_way=["$default"])
    clients = [Client(gateway.url) for _ in range(200)]
    for n, client in enumerate(clients):
        client.send(f"hello {n}")
    assert [c.recv(timeout=10) for c in clients] == [f"hello {n}" for n in range(200)]
    assert len(gateway.connections) == 200
    for client in clients:
        client.close()


def test_a_hung_handler_affects_only_its_own_request(serve):
    release = threading.Event()

    def maybe_hang(event, context):
        if event["body"] == "hang":
            release.wait(10)
        return {"statusCode": 200, "body": event["body"]}

    gateway = serve({"$default": maybe_hang}, two_way=["$default"], integration_timeout=0.5,
                    function_timeout=10)
    stuck, others = Client(gateway.url), [Client(gateway.url) for _ in range(5)]
    stuck.send("hang")
    for client in others:
        client.send("fine")
    assert [c.recv() for c in others] == ["fine"] * 5  # answered while "hang" still hangs
    assert not release.is_set()
    assert stuck.recv_json()["message"] == "Endpoint request timed out"
    release.set()


def test_vanished_clients_are_cleaned_up_and_others_keep_going(serve, disconnects):
    seen, on_disconnect = disconnects
    gateway = serve({"$default": echo, "$disconnect": on_disconnect}, two_way=["$default"])
    survivor = Client(gateway.url)
    for _ in range(5):
        raw = socket.create_connection(("127.0.0.1", gateway.port))
        raw.sendall(b"GET /dev HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert raw.recv(1024).startswith(b"HTTP/1.1 101")
        raw.close()  # gone without a close frame
    gateway.log.wait_for_invocations("$disconnect", 5)
    survivor.send("ok?")
    assert survivor.recv() == "ok?"
    assert seen == [(1006, "")] * 5 and len(gateway.connections) == 1


def test_malformed_http_and_garbage_bytes_do_not_hurt_the_gateway(serve):
    gateway = serve({"$default": echo}, two_way=["$default"])
    for junk in (b"\x16\x03\x01\x00\xa5garbage\r\n\r\n", b"NOT HTTP\r\n\r\n"):
        raw = socket.create_connection(("127.0.0.1", gateway.port))
        raw.sendall(junk)
        raw.settimeout(2)
        with contextlib.suppress(OSError):
            raw.recv(1024)
        raw.close()
    client = Client(gateway.url)
    client.send("fine")
    assert client.recv() == "fine"


# 13. Inside a notebook ---------------------------------------------------------------------


def test_starting_again_for_the_same_stage_stops_the_previous_gateway():
    handlers = {"$default": ok}
    first = LocalGateway.from_handlers(handlers, api_id="samestage01").start()
    client = Client(first.url)
    second = LocalGateway.from_handlers(handlers, api_id="samestage01").start()
    try:
        assert not first.running and second.running
        assert client.wait_closed() == (1001, "Going away")
    finally:
        second.stop()


def test_stop_joins_threads_and_frees_the_port():
    before = {t.name for t in threading.enumerate()}
    gateway = LocalGateway.from_handlers({"$default": echo}, two_way=["$default"]).start()
    client = Client(gateway.url)
    client.send("x")
    client.recv()
    gateway.stop()
    client.wait_closed()

    def leftover() -> set[str]:
        names = {t.name for t in threading.enumerate()} - before
        return {name for name in names if name.startswith(gateway._name)}

    deadline = time.monotonic() + 10  # idle workers exit as soon as they see the stop
    while leftover() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not leftover(), leftover()
    again = LocalGateway.from_handlers({"$default": echo}, port=gateway.port).start()
    assert again.port == gateway.port  # the port is free for a new gateway
    again.stop()


def test_nothing_prints_from_background_threads(capfd):
    def chatty(event, context):
        print("handler output")
        raise ValueError("and a traceback")

    gateway = LocalGateway.from_handlers({"$connect": ok, "$default": chatty}).start()
    client = Client(gateway.url)
    client.send("x")
    client.recv()
    client.send_binary(b"\x00")
    client.wait_closed()
    gateway.stop()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    logs = gateway.log.invocations("$default")[0]["logs"]
    assert "handler output" in logs and any("ValueError" in line for line in logs)


def test_event_log_display_is_deterministic():
    def run() -> str:
        clock = VirtualClock()
        gateway = LocalGateway.from_handlers({"$default": echo}, two_way=["$default"],
                                             clock=clock).start()
        client = Client(gateway.url)
        client.send("hi")
        client.recv()
        clock.advance(minutes=10)
        client.wait_closed()
        gateway.stop()
        buffer = io.StringIO()
        print(repr(gateway.show_log()), file=buffer)
        print(repr(gateway.sequence_diagram()), file=buffer)
        return buffer.getvalue()

    first, second = run(), run()
    assert first == second
    assert "T+10:00" in first and "conn-1" in first and "sequenceDiagram" in first


def test_large_pushes_to_a_slow_reader_arrive_whole_and_in_order(serve):
    """Pushes fill the socket buffers; the rest queue behind on the loop, never interleaved."""
    chunk, receive_buffer = 30_000, 64 * 1024  # a buffer set by hand is one Linux never grows
    pushes = int(1.5 * (_largest_send_buffer() + 2 * receive_buffer) / chunk) + 1

    def flood(event, context):
        gateway = serving[0]
        cid = event["requestContext"]["connectionId"]
        for n in range(pushes):
            body = (f"{n:04d}" + "x" * chunk).encode()
            assert gateway.handle_management("POST", cid, body)[0] == 200
        return {"statusCode": 200, "body": "done"}

    serving = []
    gateway = serve({"$default": flood}, two_way=["$default"], function_timeout=20,
                    integration_timeout=20)
    serving.append(gateway)
    import websocket

    raw = websocket.create_connection(  # reads nothing until the end
        gateway.url, timeout=15, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)])
    raw.send("go")
    gateway.log.wait_for_invocations("$default", timeout=20)
    received = [raw.recv() for _ in range(pushes + 1)]
    raw.close()
    assert [m[:4] for m in received[:pushes]] == [f"{n:04d}" for n in range(pushes)]
    assert all(len(m) == chunk + 4 for m in received[:pushes]) and received[pushes] == "done"


def _largest_send_buffer() -> int:
    """How far Linux may grow a TCP send buffer (tcp_wmem's maximum; 4 MiB by default)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as limits:
            return int(limits.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


def test_next_due_is_the_earliest_timer_not_cancelled() -> None:
    import asyncio

    clock = VirtualClock()
    loop = asyncio.new_event_loop()
    try:
        assert clock.next_due() is None

        async def nothing() -> None:
            pass

        early = clock.call_later(5, nothing, loop)
        clock.call_later(9, nothing, loop)
        assert clock.next_due() == clock.time() + 5
        early.cancel()
        assert clock.next_due() == clock.time() + 9
    finally:
        loop.close()
