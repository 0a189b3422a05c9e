"""Lesson 01's props: a tiny REST endpoint to poll, a scheduled producer, and the timelines.

* `UpdateFeed`: plain HTTP on 127.0.0.1 (a `ThreadingHTTPServer` in a daemon thread, silent).
  `GET /latest` answers `{"update": <the newest update or null>}`; it counts the requests.
* `Producer`: a stand-in backend that produces updates at fixed offsets (seconds) in a daemon
  thread and hands each to a `publish` function (the feed's, or `post_to_connection`).
* `simulate_polling` / `simulate_push`: pure functions of a timeline, so the comparison the
  notebook prints and plots is identical on every run (live runs jitter by milliseconds).
* `plot_timelines`: the figure of both.

Nothing here prints: threads keep what they saw and the notebook cell shows it.
"""

from __future__ import annotations

import atexit
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_running: set[UpdateFeed] = set()  # started feeds, so re-running a cell stops the old one


class UpdateFeed:
    """The newest update over plain HTTP: `GET /latest` -> `{"update": ...}` (200, JSON).

    Stateless, like any REST resource: the server does not know who asks or what they saw
    last, so a client that wants news has to ask again and again (poll).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: Any = None
        self._requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle ------------------------------------------------------------------------

    def start(self) -> UpdateFeed:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread (stops older feeds)."""
        if self._server is not None:
            return self
        for other in list(_running):
            other.stop()
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/latest":
                    self._answer(404, {"message": "Not Found"})
                    return
                self._answer(200, {"update": feed._serve()})

            def _answer(self, status: int, body: Mapping[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # silent: a thread must never print into a notebook cell

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="update-feed", daemon=True,
        )
        self._thread.start()
        _running.add(self)
        return self

    def stop(self) -> None:
        """Stop serving and free the port (safe to call twice)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        _running.discard(self)
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> UpdateFeed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>/latest` (the port is random: do not print it)."""
        if self._server is None:
            raise RuntimeError("the feed is not running: call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}/latest"

    # State ----------------------------------------------------------------------------

    def publish(self, update: Any) -> None:
        """Make `update` the newest one (what the next GET returns)."""
        with self._lock:
            self._latest = update

    @property
    def requests(self) -> int:
        """How many `GET /latest` requests the feed has answered."""
        with self._lock:
            return self._requests

    def _serve(self) -> Any:
        with self._lock:
            self._requests += 1
            return self._latest


@atexit.register
def _stop_all() -> None:
    for feed in list(_running):
        feed.stop()


class Producer:
    """A backend producing `updates[i]` at `offsets[i]` seconds after `start()`.

    Each update goes to `publish(update)` on a daemon thread. `produced[i]` is the
    `time.monotonic()` at which update i was published; `join()` re-raises what `publish`
    raised (the thread itself never prints).
    """

    def __init__(self, updates: Sequence[Any], offsets: Sequence[float],
                 publish: Callable[[Any], Any]) -> None:
        if len(updates) != len(offsets):
            raise ValueError("one offset per update")
        self.updates, self.offsets, self.publish = list(updates), list(offsets), publish
        self.produced: list[float] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="producer", daemon=True)

    def start(self) -> Producer:
        self._thread.start()
        return self

    def _run(self) -> None:
        begin = time.monotonic()
        try:
            for update, offset in zip(self.updates, self.offsets, strict=True):
                if self._stop.wait(max(0.0, begin + offset - time.monotonic())):
                    return
                self.publish(update)
                self.produced.append(time.monotonic())
        except BaseException as error:  # kept for join(); never printed from the thread
            self.error = error

    def join(self, timeout: float = 10.0) -> Producer:
        """Wait until every update is published; re-raise a `publish` error."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()
            raise TimeoutError(f"the producer was still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


# The deterministic comparison --------------------------------------------------------


@dataclass
class Timeline:
    """What one delivery style did with a stream of updates produced at `update_times`."""

    name: str
    update_times: list[float]
    request_times: list[float] = field(default_factory=list)  # polling: every request
    useful: list[bool] = field(default_factory=list)  # polling: did request i bring news?
    seen_at: dict[int, float] = field(default_factory=dict)  # update index -> when seen
    messages: int = 0  # push: messages sent to the client

    @property
    def requests(self) -> int:
        return len(self.request_times)

    @property
    def wasted(self) -> int:
        return self.useful.count(False)

    @property
    def missed(self) -> int:
        return len(self.update_times) - len(self.seen_at)

    @property
    def delays(self) -> list[float]:
        return [self.seen_at[i] - self.update_times[i] for i in sorted(self.seen_at)]

    @property
    def average_delay(self) -> float:
        delays = self.delays
        return sum(delays) / len(delays) if delays else 0.0

    def row(self) -> dict[str, Any]:
        """One row of the comparison table (numbers formatted, so the text is stable)."""
        return {
            "approach": self.name,
            "requests": self.requests,
            "messages pushed": self.messages,
            "wasted requests": self.wasted,
            "updates missed": self.missed,
            "average delay (s)": f"{self.average_delay:.2f}",
        }


def simulate_polling(update_times: Sequence[float], interval: float) -> Timeline:
    """Poll at t = 0, interval, 2*interval, ... until a request returns the last update.

    A request returns the newest update produced at or before its time. It is *useful* if
    that update is newer than the previous answer; updates overwritten between two requests
    are *missed*: the client never sees them.
    """
    times = sorted(update_times)
    timeline = Timeline(f"polling every {interval:g} s", list(times))
    last_seen = -1
    k = 0
    while last_seen < len(times) - 1:
        t = round(k * interval, 9)  # k * interval, not repeated addition: no float drift
        newest = sum(1 for u in times if u <= t) - 1
        timeline.request_times.append(t)
        timeline.useful.append(newest > last_seen)
        if newest > last_seen:
            timeline.seen_at[newest] = t
            last_seen = newest
        k += 1
    return timeline


def simulate_push(update_times: Sequence[float], latency: float = 0.05) -> Timeline:
    """One open socket: each update is pushed when produced and arrives `latency` s later."""
    times = sorted(update_times)
    timeline = Timeline("push over one WebSocket", list(times), messages=len(times))
    timeline.seen_at = {i: round(t + latency, 9) for i, t in enumerate(times)}
    return timeline


def plot_timelines(polling: Timeline, push: Timeline, labels: Sequence[str] = ()):
    """Both timelines on one axis: updates produced, polling requests, pushed messages."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    rows = {"update produced": 2, polling.name: 1, push.name: 0}
    ax.scatter(polling.update_times, [2] * len(polling.update_times), marker="*", s=160,
               color="tab:orange", zorder=3)
    for i, t in enumerate(polling.update_times):
        if i < len(labels):  # alternate heights so neighbouring labels do not overlap;
            missed = i not in polling.seen_at  # red: polling never saw this update
            ax.annotate(labels[i], (t, 2), textcoords="offset points",
                        xytext=(0, 10 if i % 2 == 0 else 24), ha="center", fontsize=8,
                        color="tab:red" if missed else "black")
    useful = [t for t, ok in zip(polling.request_times, polling.useful, strict=True) if ok]
    wasted = [t for t, ok in zip(polling.request_times, polling.useful, strict=True) if not ok]
    ax.scatter(useful, [1] * len(useful), marker="o", color="tab:blue", label="request: news")
    ax.scatter(wasted, [1] * len(wasted), marker="x", color="tab:gray",
               label="request: nothing new")
    ax.scatter(list(push.seen_at.values()), [0] * len(push.seen_at), marker="o",
               color="tab:green", label="message pushed")
    for style, row in ((polling, 1), (push, 0)):
        for i, seen in style.seen_at.items():  # an arrow from production to arrival
            ax.annotate("", xy=(seen, row), xytext=(style.update_times[i], 2),
                        arrowprops={"arrowstyle": "->", "color": "0.6", "lw": 0.8})
    ax.set_yticks(list(rows.values()), list(rows.keys()))
    ax.set_ylim(-0.6, 3.1)
    ax.set_xlabel("time (s)")
    ax.set_title("The same updates: fetched by polling vs pushed (red: missed by polling)")
    ax.legend(loc="lower right", fontsize=8, ncols=3)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return ax


class UpdateStream:
    """A real connection that a check pushes updates to: its own gateway, client and backend.

    `run(collect_updates, pushes, offsets, count, timeout)` starts pushing `pushes[i]` at
    `offsets[i]` seconds, calls the learner's function on the client, and returns what it
    returned and how long it took. The notebook's own `tracker` is left alone.
    """

    def __enter__(self) -> UpdateStream:
        import boto3

        from helpers.client import Client
        from helpers.display import Redactor
        from helpers.gateway import LocalGateway

        self.gateway = LocalGateway.from_handlers({}, redactor=Redactor()).start()
        self.api = boto3.client("apigatewaymanagementapi",
                                endpoint_url=self.gateway.callback_url)
        self.client = Client(self.gateway.url, name="probe")
        self.client_id = self.gateway.connections[0]
        return self

    def push(self, update: Any) -> None:
        self.api.post_to_connection(ConnectionId=self.client_id,
                                    Data=json.dumps(update).encode())

    def run(self, collect_updates: Callable[..., Any], pushes: Sequence[Any],
            offsets: Sequence[float] | None, count: int, timeout: float) -> tuple[Any, float]:
        """(what collect_updates returned or "a TimeoutError", seconds it took)."""
        if offsets is None:  # all at once, before the call
            for update in pushes:
                self.push(update)
        else:
            Producer(pushes, offsets, self.push).start()
        began = time.monotonic()
        try:
            got = collect_updates(self.client, count=count, timeout=timeout)
        except TimeoutError:
            got = "a TimeoutError"
        return got, time.monotonic() - began

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.gateway.stop()


UPDATES = [{"seq": n, "status": f"update {n}"} for n in range(1, 5)]

#: How long the check lets `collect_updates` wait for a message a correct loop gets at once.
PATIENCE = 5.0


def check_collect_updates(collect_updates: Callable[..., Any], part: str) -> None:
    """Lesson 01's graded check, in two parts, each on its own `UpdateStream`.

    "waits": four updates arrive 0.1 s apart; the loop must wait for each, in order.
    "stops": a stream longer than `count`, one with `{"type": "done"}` and one more update
    after it, and silence. Failures raise `CheckFailed` with a hint (helpers.checks).

    No verdict depends on how fast the machine is: "stops at once" means "leaves what follows
    "done" unread", and the `timeout` given to `collect_updates` is a long safety net wherever
    a correct loop never waits for it (only the silence scenario is about timing out).
    """
    from helpers.checks import check

    updates = UPDATES
    with UpdateStream() as stream:
        if part == "waits":
            got, _ = stream.run(collect_updates, updates, [0.05, 0.15, 0.25, 0.35], 4,
                                PATIENCE)
            kind = got if isinstance(got, str) else type(got).__name__
            check(isinstance(got, list), f"it returned {kind}, not a list",
                  hint="collect the updates in a list and return it")
            check(all(isinstance(u, dict) for u in got),
                  f"it returned {got!r}: the items should be parsed JSON (dicts)",
                  hint="json.loads(client.recv(timeout=timeout)) gives a dict")
            check(len(got) == 4, f"it returned {len(got)} of the 4 updates pushed 0.1 s apart",
                  hint="keep calling client.recv(timeout=timeout) in a loop until you have "
                       "`count` updates; recv waits for the next message")
            check(got == updates, f"the updates came back as {[u.get('seq') for u in got]}, "
                                  "not [1, 2, 3, 4]",
                  hint="append each update as it arrives, and do not sort or skip any")
            return
        # Three pushed, count=2: take two, leave the third for later.
        got, _ = stream.run(collect_updates, updates[:3], None, 2, PATIENCE)
        check(got == updates[:2],
              f"with count=2 it returned {got!r}, not the first two updates",
              hint="stop receiving as soon as you have `count` updates")
        left = stream.client.try_recv(PATIENCE)  # the third update must still be waiting
        check(left is not None and json.loads(left) == updates[2],
              "with count=2 it received more than 2 messages",
              hint="check len(updates) < count before each recv")
        # Two updates, "done", one more: stop at "done" and leave the rest unread. (With
        # count=3 a loop that goes on gets its third item at once, so it fails at once.)
        after = {"seq": 5, "status": "after done"}
        got, _ = stream.run(collect_updates, [*updates[:2], {"type": "done"}, after], None, 3,
                            PATIENCE)
        check(isinstance(got, list) and {"type": "done"} not in got,
              f"after two updates and 'done' it returned {got!r}",
              hint='stop at {"type": "done"} and do not include it in the list')
        check(after not in got, "it kept reading after 'done' (it returned the update sent "
                                f"after it: {[u.get('seq') for u in got]})",
              hint='break out of the loop when message.get("type") == "done"')
        check(got == updates[:2], f"after two updates and 'done' it returned {got!r}",
              hint='stop at {"type": "done"} and do not include it in the list')
        left = stream.client.try_recv(PATIENCE)  # what followed "done" must still be waiting
        check(left is not None and json.loads(left) == after,
              "it received more messages after 'done'",
              hint='break out of the loop when message.get("type") == "done"')
        # Silence: return what you have (nothing) when recv times out.
        got, _ = stream.run(collect_updates, [], None, 3, 0.3)
        check(got == [], f"when nothing arrives it returned {got!r}, not []",
              hint="catch TimeoutError around client.recv and stop the loop")
