"""The worker pool: one eager worker; more only when queued work waits and every worker is
blocked. "Blocked" is read on a clock the tests control, so no result depends on how busy
the machine is."""

from __future__ import annotations

import threading
import time

import pytest

from helpers.gateway import lambda_runtime
from helpers.gateway.workers import WorkerPool


class ManualClock:
    """Monotonic seconds that move only when the test says; counts how often it is read."""

    def __init__(self) -> None:
        self.now = 0.0
        self.reads = 0
        self._read = threading.Condition()

    def __call__(self) -> float:
        with self._read:
            self.reads += 1
            self._read.notify_all()
            return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def wait_for_reads(self, count: int, timeout: float = 5.0) -> bool:
        with self._read:
            return self._read.wait_for(lambda: self.reads >= count, timeout)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_busy_work_never_grows_the_pool(clock):
    # The clock stands still: however long the machine takes, no worker is ever "blocked".
    with WorkerPool(name="gateway-test-busy", clock=clock) as pool:
        futures = [pool.submit(sum, range(2000)) for _ in range(300)]
        assert [f.result(10) for f in futures] == [sum(range(2000))] * 300
        assert pool.size == 1


def test_blocked_workers_get_help_only_once_the_clock_says_they_are_stuck(clock):
    entered, release = threading.Event(), threading.Event()

    def block() -> str:
        entered.set()
        release.wait(10)
        return "released"

    pool = WorkerPool(name="gateway-test-blocked", clock=clock, grow_after=0.001)
    try:
        blocked = pool.submit(block)
        assert entered.wait(5)
        reads = clock.reads
        quick = pool.submit(lambda: "served")
        assert clock.wait_for_reads(reads + 3)  # the grower looked, and looked again...
        assert not quick.done() and pool.size == 1  # ...and saw no stall yet

        clock.advance(1.0)  # nobody has finished anything for a second: all blocked

        assert quick.result(5) == "served"
        assert not blocked.done()
        assert pool.size == 2
    finally:
        release.set()
        pool.shutdown()
    assert blocked.result(5) == "released"


def test_a_hung_call_holds_only_its_own_thread():
    release = threading.Event()
    pool = WorkerPool(name="gateway-test-hung")
    try:
        hung = pool.submit(release.wait)
        results = [pool.submit(lambda n=n: n * 2).result(5) for n in range(5)]
        assert results == [0, 2, 4, 6, 8]
        assert not hung.done()
    finally:
        release.set()
        pool.shutdown()
    assert hung.result(5) is True


def test_sequential_work_reuses_the_idle_worker():
    # A worker counts itself free before its caller wakes, so the next submit finds it.
    with WorkerPool() as pool:
        for _ in range(50):
            pool.submit(int).result(5)
        assert pool.size == 1


def test_exceptions_propagate_and_shutdown_does_not_wait_for_hung_work():
    release = threading.Event()
    pool = WorkerPool()
    pool.submit(release.wait)
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(5)
    began = time.monotonic()
    pool.shutdown(timeout=0.2)
    assert time.monotonic() - began < 5  # bounded by its timeout, not by the hung call
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(print)
    release.set()


def test_run_is_submit_without_a_future():
    # The invoker's path: nothing to read back, an error is the callee's business, and the
    # worker stays in service (and idle, so the next call reuses it).
    done = threading.Event()
    with WorkerPool(name="gateway-test-run") as pool:
        pool.run(lambda: 1 / 0)
        pool.run(done.set)
        assert done.wait(5)
        assert pool.submit(int).result(5) == 0
        assert pool.size == 1


def test_shutdown_cancels_queued_work(clock):
    release = threading.Event()
    pool = WorkerPool(clock=clock)  # frozen clock: queued work stays queued
    pool.submit(release.wait)
    queued = pool.submit(int)
    pool.shutdown(timeout=0.1)
    release.set()
    assert queued.cancelled()


def test_worker_output_outside_an_invocation_is_kept_not_printed(capfd):
    lambda_runtime.clear_stray_output()
    lambda_runtime.install()  # capfd may have swapped sys.stdout after import
    with WorkerPool() as pool:
        pool.submit(print, "from worker").result(5)
        name = pool.submit(lambda: threading.current_thread().name).result(5)
    assert capfd.readouterr() == ("", "")
    assert name.startswith("gateway-worker-")
    assert any(entry[2].startswith("from worker") for entry in lambda_runtime.stray_output())
