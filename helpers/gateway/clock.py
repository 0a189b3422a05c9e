"""Clocks for the gateway's timers: real time, or virtual time that a lesson advances.

The gateway asks its clock for the time (event timestamps, idle and lifetime deadlines) and
to run a coroutine function later. With `RealClock` that is the event loop's own timer.
With `VirtualClock`, nothing fires until someone calls `advance()`: it then runs every timer
that fell due, in deadline order, each at its own instant, and returns only when their
effects (closes, `$disconnect` invocations) are complete. So a lesson can show the real
10-minute idle timeout and 2-hour lifetime happen instantly and deterministically.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

TimerCallback = Callable[[], Awaitable[None]]
#: Real seconds a VirtualClock remembers its advances for `elapsed_since`: a week, the longest
#: AWS lets a presigned URL last (S3's maximum, docs/aws-behaviour.md §6.3); a signature older
#: than that is stale whatever the advances since.
ADVANCES_KEPT = 7 * 24 * 3600


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch."""
        ...

    def call_later(
        self, delay: float, callback: TimerCallback, loop: asyncio.AbstractEventLoop
    ) -> TimerHandle:
        """Run `await callback()` on `loop` after `delay` seconds of this clock's time.

        Any thread may call it, and cancel the handle it returns."""
        ...

    def elapsed_since(self, wall_time: float) -> float:
        """Seconds of this clock's time since the real instant `wall_time` (a signature's
        X-Amz-Date): how old a client's signature is for the gateway."""
        ...


class RealClock:
    """Wall-clock time; timers are the event loop's own, set and cancelled from any thread."""

    time = staticmethod(time.time)  # the builtin itself: read several times per message

    def elapsed_since(self, wall_time: float) -> float:
        return self.time() - wall_time

    def call_later(
        self, delay: float, callback: TimerCallback, loop: asyncio.AbstractEventLoop
    ) -> TimerHandle:
        return _RealTimer(max(delay, 0.0), callback, loop)

    def __repr__(self) -> str:
        return "RealClock()"


class _RealTimer:
    """An event loop timer that any thread may set or cancel (asyncio's may not)."""

    __slots__ = ("_handle", "_loop", "cancelled")

    def __init__(self, delay: float, callback: TimerCallback, loop: asyncio.AbstractEventLoop):
        self._loop, self.cancelled = loop, False
        self._handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if not self.cancelled:
                loop.create_task(callback())

        def arm() -> None:
            if not self.cancelled:
                self._handle = loop.call_later(delay, fire)

        _on_loop(loop, arm)

    def cancel(self) -> None:
        self.cancelled = True
        handle = self._handle
        if handle is not None:  # free the loop's reference now, not at the deadline
            _on_loop(self._loop, handle.cancel)


def _on_loop(loop: asyncio.AbstractEventLoop, action: Callable[[], object]) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        action()
    else:
        with contextlib.suppress(RuntimeError):  # the loop closed: the gateway stopped
            loop.call_soon_threadsafe(action)


class _VirtualTimer:
    __slots__ = ("callback", "cancelled", "loop", "when")

    def __init__(self, when: float, callback: TimerCallback, loop: asyncio.AbstractEventLoop):
        self.when, self.callback, self.loop = when, callback, loop
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """Time that moves only when told: `clock.advance(minutes=10)`.

    `advance` must be called from outside the gateway's event loop (a notebook cell, a
    test). Each due timer runs on its loop and is awaited (up to `settle_timeout` seconds)
    before the next, so the gateway's reaction is complete when `advance` returns.
    """

    def __init__(self, start: float = 1_767_225_600.0, *, settle_timeout: float = 10.0):
        self._now = float(start)  # default: 2026-01-01T00:00:00Z, so outputs are stable
        self._timers: list[tuple[float, int, _VirtualTimer]] = []
        self._counter = itertools.count()
        self._lock = threading.RLock()
        self._settle_timeout = settle_timeout
        self._refusal: str | None = None
        # [whole real second, virtual seconds advanced then], oldest first: one entry per
        # second, so a lesson advancing in a tight loop keeps a short list
        self._advances: collections.deque[list[float]] = collections.deque()

    def time(self) -> float:
        return self._now

    def elapsed_since(self, wall_time: float) -> float:
        """Real time since `wall_time` plus every advance begun after it: a URL presigned
        before `advance(minutes=10)` is ten minutes older after it; a call signed after it
        (boto3 signs each request as it is sent) is as fresh as ever. X-Amz-Date has whole
        seconds, so an advance begun in the signature's own second does not count."""
        jumped = 0.0
        with self._lock:
            for second, seconds in reversed(self._advances):
                if second < wall_time + 1:
                    break
                jumped += seconds
        return time.time() - wall_time + jumped

    def refuse(self, reason: str) -> None:
        """From now on `advance` raises `RuntimeError(reason)`: this clock drives nothing
        (a stage on a real AWS account, where time passes for real)."""
        self._refusal = reason

    def call_later(
        self, delay: float, callback: TimerCallback, loop: asyncio.AbstractEventLoop
    ) -> TimerHandle:
        timer = _VirtualTimer(self._now + max(delay, 0.0), callback, loop)
        with self._lock:
            heapq.heappush(self._timers, (timer.when, next(self._counter), timer))
        return timer

    def next_due(self) -> float | None:
        """When the earliest pending timer falls due (None if none is pending)."""
        with self._lock:
            while self._timers and self._timers[0][2].cancelled:
                heapq.heappop(self._timers)
            return self._timers[0][0] if self._timers else None

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0) -> float:
        """Move time forward, firing every timer that falls due; returns the new time."""
        if self._refusal is not None:
            raise RuntimeError(self._refusal)
        target = self._now + seconds + 60 * minutes + 3600 * hours
        if target < self._now:
            raise ValueError("A VirtualClock only moves forward: pass a positive duration.")
        self._remember(target - self._now)
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > target:
                    break
                when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            if timer.loop.is_closed():
                continue
            future = asyncio.run_coroutine_threadsafe(timer.callback(), timer.loop)
            future.result(self._settle_timeout)
        self._now = target
        return self._now

    def _remember(self, seconds: float) -> None:
        """Note an advance for `elapsed_since`, in the real second it begins."""
        second = float(int(time.time()))
        with self._lock:
            advances = self._advances
            while advances and advances[0][0] < second - ADVANCES_KEPT:
                advances.popleft()
            if advances and advances[-1][0] == second:
                advances[-1][1] += seconds
            else:
                advances.append([second, seconds])

    def __repr__(self) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._now))
        return f"VirtualClock({stamp})"
