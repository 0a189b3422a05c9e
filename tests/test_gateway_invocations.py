"""Every message is its own invocation, nothing is lost at close, timeouts freeze (issue 7)."""

from __future__ import annotations

import asyncio
import threading

import websockets

from helpers.client import Client

ANSWERS = ["$default"]


def test_a_slow_message_does_not_hold_back_the_next_one(serve):
    """AWS: responses are asynchronous, not necessarily in order (docs/aws-behaviour.md §4.3a)."""
    release = threading.Event()

    def handler(event, context):
        if event["body"] == "A":
            release.wait(10)  # stands in for a 2 s handler: held until B's answer arrived
        return {"statusCode": 200, "body": event["body"]}

    gateway = serve({"$default": handler}, two_way=ANSWERS, function_timeout=20)
    client = Client(gateway.url)
    client.send("A")
    client.send("B")
    assert client.recv() == "B"  # while A's invocation still runs
    release.set()
    assert client.recv() == "A"


def test_messages_sent_just_before_a_close_are_all_invoked_websockets_library(serve):
    seen = []
    gateway = serve({"$default": lambda e, c: seen.append(e["body"]) or {"statusCode": 200},
                     "$disconnect": lambda e, c: {"statusCode": 200}})

    async def send_then_close():
        async with websockets.connect(gateway.url) as ws:
            for n in range(20):
                await ws.send(f"m{n}")

    asyncio.run(send_then_close())
    gateway.log.wait_for_invocations("$default", 20)
    gateway.log.wait_for_invocations("$disconnect", 1)
    assert sorted(seen) == sorted(f"m{n}" for n in range(20))
    assert len(gateway.log.invocations("$disconnect")) == 1


def test_messages_sent_just_before_a_close_are_all_invoked_websocket_client(serve, connect):
    seen = []
    gateway = serve({"$default": lambda e, c: seen.append(e["body"]) or {"statusCode": 200},
                     "$disconnect": lambda e, c: {"statusCode": 200}})
    ws = connect(gateway.url)
    for n in range(20):
        ws.send(f"m{n}")
    ws.close()
    gateway.log.wait_for_invocations("$default", 20)
    gateway.log.wait_for_invocations("$disconnect", 1)
    assert sorted(seen) == sorted(f"m{n}" for n in range(20))


def test_messages_before_the_tcp_connection_dropped_are_invoked(serve, connect):
    seen = []
    gateway = serve({"$default": lambda e, c: seen.append(e["body"]) or {"statusCode": 200},
                     "$disconnect": lambda e, c: {"statusCode": 200}})
    ws = connect(gateway.url)
    for n in range(5):
        ws.send(f"m{n}")
    ws.sock.close()  # no close frame
    gateway.log.wait_for_invocations("$disconnect", 1)
    gateway.log.wait_for_invocations("$default", 5)
    assert sorted(seen) == [f"m{n}" for n in range(5)]
    assert gateway.log.invocations("$disconnect")[0]["outcome"] == "ok"


def test_an_answer_for_a_closed_connection_is_dropped_and_logged_and_a_push_gets_410(serve):
    release, closed = threading.Event(), threading.Event()
    pushes = []

    def slow(event, context):
        release.wait(10)
        pushes.append(gateway.handle_management("POST", event["requestContext"]["connectionId"],
                                                b"late")[0])
        return {"statusCode": 200, "body": "too late"}

    gateway = serve({"$default": slow, "$disconnect": lambda e, c: closed.set()},
                    two_way=ANSWERS, function_timeout=20)
    client = Client(gateway.url)
    client.send("x")
    client.close()
    assert closed.wait(5)
    release.set()
    gateway.log.wait_for(lambda es: any(e.kind == "drop" for e in es))
    assert pushes == [410]
    assert [e["body"] for e in gateway.log.entries("drop")] == ["too late"]


def test_a_timed_out_function_is_frozen_its_later_pushes_are_refused(serve):
    """On AWS the sandbox is frozen at the timeout: nothing it does afterwards happens."""
    answered, finished = threading.Event(), threading.Event()
    caught = []

    def overrun(event, context):
        answered.wait(10)  # past its 0.3 s timeout: the gateway has answered the client
        try:
            gateway.handle_management("POST", event["requestContext"]["connectionId"], b"late")
        except Exception as error:  # handler code cannot swallow the freeze
            caught.append(error)
        finally:
            finished.set()
        return {"statusCode": 200, "body": "never seen"}

    gateway = serve({"$default": overrun}, two_way=ANSWERS, function_timeout=0.3)
    client = Client(gateway.url)
    client.send("x")
    assert client.recv_json()["message"] == "Internal server error"
    answered.set()
    assert finished.wait(5) and caught == []
    refused = gateway.log.wait_for(
        lambda es: any(e.kind == "manage" and "after timeout" in str(e["status"]) for e in es))
    assert not any(e.kind == "send" and e["via"] == "push" for e in refused)
    assert [e["outcome"] for e in gateway.log.invocations("$default")] == ["function-timeout"]


def test_no_false_function_timeouts_under_load(serve):
    """50 clients x 100 unpaced messages: calls queue for workers and the CPU, but Lambda
    counts a function's timeout from when its code starts, so none of them times out."""
    gateway = serve({"$default": lambda e, c: {"statusCode": 200, "body": e["body"]}},
                    two_way=ANSWERS)
    clients = [Client(gateway.url) for _ in range(50)]
    for n in range(100):
        for client in clients:
            client.send(str(n))
    for client in clients:
        assert sorted(client.wait_for(100, timeout=60), key=int) == [str(n) for n in range(100)]
    outcomes = {e["outcome"] for e in gateway.log.invocations("$default")}
    assert outcomes == {"ok"}
