"""One invocation path with loop-timer deadlines (invoker.py), on a real loop and real threads."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from helpers.gateway.config import Route
from helpers.gateway.connection import Call, CallKind, Outcome
from helpers.gateway.eventlog import EventLog
from helpers.gateway.invoker import Invoker
from helpers.gateway.lambda_runtime import LambdaFunction, WorkerPool


@pytest.fixture
def invoker():
    """An Invoker on its own event loop thread, with a one-thread pool: calls queue up."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    pool = WorkerPool(name="test-invoker", max_workers=1)
    log, errors = EventLog(), []
    yield Invoker(loop=loop, loop_thread=thread.ident, pool=pool, log=log, now=time.time,
                  on_error=errors.append), log
    pool.shutdown()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    assert errors == []


def call(fn, *, function_timeout: float, integration_timeout: float = 29.0) -> Call:
    function = LambdaFunction.from_callable(fn, timeout=function_timeout)
    return Call(CallKind.MESSAGE, Route("$default", function, timeout=integration_timeout),
                {"body": ""}, "req")


def submit(invoker: Invoker, c: Call):
    finished, done = [], threading.Event()
    invoker.submit(c, "conn", lambda f: (finished.append(f), done.set()))
    return finished, done


def test_time_queued_for_a_worker_is_not_the_functions(invoker):
    invoker, _log = invoker
    release = threading.Event()
    submit(invoker, call(lambda e, c: release.wait(10), function_timeout=20))
    finished, done = submit(invoker, call(lambda e, c: {"ok": True}, function_timeout=0.3))
    time.sleep(0.6)  # real time is the point: twice the function's timeout, spent queued
    release.set()
    assert done.wait(10)
    assert finished[0].outcome is Outcome.OK


def test_a_call_that_never_got_a_worker_blames_the_machine_not_the_handler(invoker):
    invoker, log = invoker
    release = threading.Event()
    submit(invoker, call(lambda e, c: release.wait(10), function_timeout=20))
    finished, done = submit(invoker, call(lambda e, c: None, function_timeout=3,
                                          integration_timeout=0.2))
    assert done.wait(10)
    release.set()
    assert finished[0].outcome is Outcome.SATURATED
    (entry,) = [e for e in log.entries("invoke") if e["outcome"] == Outcome.SATURATED]
    assert "machine is saturated" in entry["logs"][0]


def test_a_function_past_its_timeout_is_frozen_and_its_result_dropped(invoker):
    invoker, _log = invoker
    seen, release, looked = [], threading.Event(), threading.Event()

    def overrun(event, context):
        from helpers.gateway.lambda_runtime import current_invocation

        release.wait(10)
        seen.append(current_invocation().frozen)
        looked.set()
        return {"late": True}

    finished, done = submit(invoker, call(overrun, function_timeout=0.2))
    assert done.wait(10)
    release.set()
    assert looked.wait(10)
    assert finished[0].outcome is Outcome.FUNCTION_TIMEOUT and seen == [True]
    assert len(finished) == 1  # the late result never settles the call again
