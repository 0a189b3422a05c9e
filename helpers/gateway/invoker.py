"""One path for every integration call: authorizer, `$connect`, messages, `$disconnect`.

A call runs on a worker thread (`WorkerPool`); its deadlines are event loop timers, one
mechanism for every kind of call, no polling. Two deadlines race (docs/aws-behaviour.md
§4.2): the integration's TimeoutInMillis, counted from when API Gateway calls the
integration ("Endpoint request timed out"), and the function's own Timeout, counted from when
its code starts, as Lambda counts it (a Lambda error: "Internal server error"). The timer is
set for the earliest moment either could pass and re-armed when it fires early, so time a
call spends queued for a worker is never charged to the function.

When the function's Timeout passes, its invocation is frozen (AWS freezes the sandbox): its
return value is dropped and any later `@connections` call it makes is refused
(`FrozenInvocation`). A thread cannot be killed, so a frozen handler that never calls the
gateway again simply runs on unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from helpers.gateway import defaults
from helpers.gateway import protocol_rules as rules
from helpers.gateway.connection import Call, CallKind, Finished, Outcome
from helpers.gateway.eventlog import EventLog
from helpers.gateway.lambda_runtime import (
    Invocation,
    Reclaim,
    RunningInvocation,
    WorkerPool,
)

#: The error type lambda_runtime reports for a handler that returned after its Timeout.
_SANDBOX_TIMEDOUT = "Sandbox.Timedout"


class FrozenInvocation(BaseException):
    """Raised inside a handler that calls the gateway after its function timeout.

    On AWS nothing a timed-out function does afterwards happens: its sandbox is frozen. A
    Python thread cannot be frozen, so the gateway refuses the call and raises this. It is a
    BaseException, not an Exception, so the handler's own `except Exception` cannot swallow
    it: the handler's code stops there, as it would on AWS.
    """


@dataclass(eq=False, slots=True)
class _Pending:
    """One call on its way: settled exactly once, by its answer or by a deadline."""

    call: Call
    connection_id: str
    done: Callable[[Finished], None]
    submitted: float  # time.monotonic()
    integration_deadline: float
    function_timeout: float
    started: float | None = None  # when the handler code began (time.monotonic())
    running: RunningInvocation | None = None
    credit: float = 0.0  # seconds the event loop could not run: the machine's, not the code's
    settled: bool = False

    def begin(self, running: RunningInvocation) -> None:
        """The handler's code starts now (the function's timeout counts from here)."""
        self.running, self.started = running, time.monotonic()


_OK, _MESSAGE = Outcome.OK, CallKind.MESSAGE  # read per message (see connection._OPEN)


def outcome_of(invocation: Invocation) -> Outcome:
    if invocation.error is None:
        return _OK
    if invocation.error_type == rules.INVALID_PERMISSIONS:
        return Outcome.CONFIG_ERROR
    if invocation.error_type == _SANDBOX_TIMEDOUT:
        return Outcome.FUNCTION_TIMEOUT
    return Outcome.ERROR


class Invoker:
    """Runs integration calls on `pool` and settles each once; `done` gets the `Finished`.

    `done` runs on the worker thread when the function answers in time (so an answer can be
    written straight to the socket), or on the loop when a deadline passes first.
    """

    def __init__(self, *, loop: asyncio.AbstractEventLoop, loop_thread: int, pool: WorkerPool,
                 log: EventLog, now: Callable[[], float],
                 on_error: Callable[[BaseException], None], reclaim: Reclaim | None = None):
        self._loop, self._loop_thread, self._pool = loop, loop_thread, pool
        self._reclaim = reclaim  # when the functions' idle environments go
        self._log, self._now, self._on_error = log, now, on_error
        self._lock = threading.Lock()  # guards `settled` and the deadline heap
        # Deadlines of calls in flight, earliest first, and one loop timer for the earliest.
        # A settled call stays in the heap until it is popped or the heap is compacted.
        self._deadlines: list[tuple[float, int, _Pending]] = []
        self._order = itertools.count()
        self._settled_in_heap = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def submit(self, call: Call, connection_id: str, done: Callable[[Finished], None]) -> None:
        """Start `call` now (any thread); `done` is called exactly once."""
        route = call.route
        function_timeout = route.function.timeout  # read live: one look-up, not two
        now = time.monotonic()
        integration_deadline, function_deadline = now + route.timeout, now + function_timeout
        pending = _Pending(call, connection_id, done, now, integration_deadline, function_timeout)
        self._pool.run(self._run, pending)
        self._arm(pending, integration_deadline if integration_deadline < function_deadline
                  else function_deadline)

    # Deadlines (on the loop) -----------------------------------------------------------------

    def _arm(self, pending: _Pending, when: float) -> None:
        """Check `pending` at `when` (time.monotonic(), which is the loop's clock). Any thread."""
        with self._lock:
            heapq.heappush(self._deadlines, (when, next(self._order), pending))
            if when >= self._timer_at:
                return  # the timer armed for an earlier deadline will get to this one
            self._timer_at = when
        if threading.get_ident() == self._loop_thread:
            self._rearm()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: the gateway stopped
                self._loop.call_soon_threadsafe(self._rearm)

    def _rearm(self) -> None:
        """On the loop: one timer, for the earliest deadline."""
        with self._lock:
            when = self._deadlines[0][0] if self._deadlines else math.inf
            self._timer_at = when
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None if when == math.inf else self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        now, due = time.monotonic(), []
        with self._lock:
            heap = self._deadlines
            while heap and heap[0][0] <= now:
                when, _, pending = heapq.heappop(heap)
                if pending.settled:
                    self._settled_in_heap -= 1
                else:
                    due.append((pending, when))
            self._timer_at = math.inf
        for pending, when in due:
            self._check(pending, when)
        self._rearm()

    def _settled(self, pending: _Pending, *, in_heap: bool = True) -> bool:
        """Lock held: settle `pending` unless it was; drop settled calls from a heap that is
        mostly settled ones, so memory follows the calls in flight, not the throughput."""
        if pending.settled:
            return False
        pending.settled = True
        if not in_heap:
            return True
        self._settled_in_heap += 1
        if self._settled_in_heap > 64 and self._settled_in_heap * 2 > len(self._deadlines):
            self._deadlines = [e for e in self._deadlines if not e[2].settled]
            heapq.heapify(self._deadlines)
            self._settled_in_heap = 0
        return True

    def _check(self, pending: _Pending, expected: float) -> None:
        if pending.settled:
            return
        now = time.monotonic()
        late = now - expected
        if late > defaults.SATURATION_LAG and pending.started is not None:
            pending.credit += late  # the loop could not run, so neither could the handler
        integration = pending.integration_deadline
        if pending.started is None:  # still waiting for a worker
            if now < integration:
                self._arm(pending, min(integration, now + pending.function_timeout))
            else:
                self._expire(pending, Outcome.SATURATED, now)
            return
        function = pending.started + pending.function_timeout + pending.credit
        if now < min(integration, function):
            self._arm(pending, min(integration, function))
        elif function < integration:
            self._expire(pending, Outcome.FUNCTION_TIMEOUT, now)
        else:
            saturated = pending.credit > 0
            self._expire(pending, Outcome.SATURATED if saturated else Outcome.INTEGRATION_TIMEOUT,
                         now)

    def _expire(self, pending: _Pending, outcome: Outcome, now: float) -> None:
        with self._lock:
            if not self._settled(pending, in_heap=False):  # _fire popped it
                return
        if outcome is Outcome.FUNCTION_TIMEOUT and pending.running is not None:
            pending.running.frozen = True  # refused from now on (LocalGateway._authorized)
        call = pending.call
        function = call.route.function
        if outcome is Outcome.INTEGRATION_TIMEOUT:
            what = (f"Endpoint request timed out after {call.route.timeout * 1000:.0f} ms (the "
                    "integration's TimeoutInMillis); the function runs on, its result dropped")
        elif outcome is Outcome.FUNCTION_TIMEOUT:
            what = (f"Task timed out after {function.timeout:.2f} seconds (the function's "
                    "Timeout); its sandbox is frozen: its result and later calls are dropped")
        else:
            waited = "waited for a worker thread" if pending.started is None else (
                f"lost {pending.credit:.1f} s to a busy event loop")
            what = (f"The machine is saturated: the call {waited} until the integration "
                    "timed out. Not the handler's fault: run fewer clients or handlers at once")
        self._log.record(self._now(), "invoke", pending.connection_id, route=call.route.key,
                         function=function.name, outcome=outcome,
                         duration_ms=(now - (pending.started or pending.submitted)) * 1000,
                         logs=[what], error=outcome.value)
        self._settle(pending, Finished(call, outcome, error=outcome.value))

    # The call (on a worker) ------------------------------------------------------------------

    def _run(self, pending: _Pending) -> None:
        if pending.settled:  # answered "saturated" while queued: running it now only adds load
            return
        call = pending.call
        function = call.route.function
        if call.kind is not _MESSAGE:  # messages log "message" with the function
            self._log.record(self._now(), "call", pending.connection_id, route=call.route.key,
                             function=function.name)
        try:
            invocation = function.invoke(call.event, copy_event=False, started=pending.begin,
                                         reclaim=self._reclaim)
        except FrozenInvocation:
            return  # the timeout answered already; what the handler did next never happened
        with self._lock:
            if not self._settled(pending):  # a deadline answered first: the result is dropped
                return
        outcome = outcome_of(invocation)
        self._log.record(self._now(), "invoke", pending.connection_id, route=call.route.key,
                         function=function.name, outcome=outcome,
                         duration_ms=invocation.duration_ms, logs=invocation.logs,
                         error=invocation.error, result=invocation.result,
                         environment=invocation.environment)
        self._settle(pending, Finished(call, outcome, invocation.result,
                                       invocation.error_message))

    def _settle(self, pending: _Pending, finished: Finished) -> None:
        try:
            pending.done(finished)
        except Exception as error:  # a gateway bug: record it, keep serving
            self._on_error(error)

