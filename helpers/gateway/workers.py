"""The threads that run invocations off the gateway's event loop.

Python runs one thread at a time (the GIL), so for handlers that compute, more threads only
add switching: measured here, one busy worker answers ~25% more messages per second than ten.
Handlers that block (sleep, wait for I/O, hang) are another matter: each needs a thread of
its own, or it holds back every call queued behind it.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any


class WorkerPool:
    """Daemon threads that run submitted calls; small for busy work, growing for blocked work.

    A thread is started at once only while fewer than `eager` exist. After that, queued work
    gets a new thread (up to `max_workers`) only when no worker has finished anything for
    `grow_after` seconds, i.e. when every worker is blocked rather than busy; so a handler
    that never returns holds only its own thread. Workers beyond `keep_idle` exit after
    `idle_timeout` idle. `clock` (monotonic seconds) decides "blocked": tests pass one they
    control, so the pool's size depends on the rule, not on how busy the machine is.
    Threads are named ``<name>-<n>``: the output capture keeps what ``gateway-*`` threads
    print out of notebook cells.
    """

    def __init__(
        self,
        *,
        name: str = "gateway-worker",
        max_workers: int = 256,
        keep_idle: int = 4,
        idle_timeout: float = 30.0,
        eager: int = 1,
        grow_after: float = 0.005,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.max_workers = max_workers
        self.keep_idle = keep_idle
        self.idle_timeout = idle_timeout
        self.eager = eager
        self.grow_after = grow_after
        self._clock = clock
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting = threading.Condition(self._lock)  # wakes the grower
        self._idle = 0  # workers waiting for work that no submit has claimed yet
        self._unclaimed = 0  # queued work that no worker has claimed yet
        self._threads: set[threading.Thread] = set()
        self._numbers = itertools.count(1)
        self._closed = False
        self._grower: threading.Thread | None = None
        self._last_finish = clock()

    @property
    def size(self) -> int:
        """How many worker threads exist now."""
        return len(self._threads)

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._put((future, fn, args, kwargs))
        return future

    def run(self, fn: Callable[..., Any], /, *args: Any) -> None:
        """`submit` without a Future, for callers that never read one (the gateway's
        invoker, once per message): `fn` must deal with its own errors."""
        self._put((None, fn, args, None))

    def _put(self, item: tuple[Any, ...]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("WorkerPool is shut down")
            if self._idle > 0:
                self._idle -= 1
            elif len(self._threads) < min(self.eager, self.max_workers):
                self._start_worker()
            else:
                self._unclaimed += 1
                self._start_grower()
                self._waiting.notify()
            self._queue.put(item)

    def _start_worker(self) -> None:
        """Lock held."""
        thread = threading.Thread(
            target=self._work, name=f"{self.name}-{next(self._numbers)}", daemon=True
        )
        self._threads.add(thread)
        thread.start()

    def _start_grower(self) -> None:
        """Lock held: the thread that adds workers when queued work waits on blocked ones."""
        if self._grower is None:
            self._grower = threading.Thread(
                target=self._grow, name=f"{self.name}-grower", daemon=True
            )
            self._grower.start()

    def _grow(self) -> None:
        with self._lock:
            while not self._closed:
                if not self._unclaimed:
                    self._waiting.wait()
                    continue
                self._waiting.wait(self.grow_after)
                if self._all_blocked():
                    self._unclaimed -= 1
                    self._start_worker()

    def _all_blocked(self) -> bool:
        """Lock held: work waits and no worker has finished anything for `grow_after`."""
        return (
            self._unclaimed > 0
            and not self._closed
            and len(self._threads) < self.max_workers
            and self._clock() - self._last_finish >= self.grow_after
        )

    def _finished(self) -> None:
        """Lock held: a worker is free; it takes queued work if any, else counts as idle."""
        self._last_finish = self._clock()
        if self._unclaimed:
            self._unclaimed -= 1
        else:
            self._idle += 1

    def _work(self) -> None:
        me = threading.current_thread()
        get = self._queue.get
        while True:
            try:
                item = get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0 and len(self._threads) > self.keep_idle:
                        self._idle -= 1
                        self._threads.discard(me)
                        return
                continue
            if item is None:
                with self._lock:
                    self._threads.discard(me)
                return
            future, fn, args, kwargs = item
            item = None
            if future is None:  # from run(): nobody waits for a result
                # An error is fn's business, as for a Future nobody reads. (Not suppress():
                # three more calls per message.)
                try:  # noqa: SIM105
                    fn(*args)
                except BaseException:
                    pass
                with self._lock:
                    self._finished()
                fn = args = None  # type: ignore[assignment]  # drop refs
                continue
            if not future.set_running_or_notify_cancel():
                with self._lock:
                    self._finished()
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                with self._lock:
                    self._finished()  # free before the caller wakes, so its next submit reuses us
                future.set_exception(exc)
            else:
                with self._lock:
                    self._finished()
                future.set_result(result)
            future = fn = args = kwargs = result = None  # type: ignore[assignment]  # drop refs

    def shutdown(self, timeout: float = 1.0) -> None:
        """Stop idle workers, cancel queued work; never wait on a hung handler past timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            self._waiting.notify_all()
            threads = list(self._threads)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and item[0] is not None:
                item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            thread.join(remaining)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
