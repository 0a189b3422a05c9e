"""Lesson 06 (limits): the harness that drives a keep-alive client through hours of virtual time.

The learner's client only reacts to `tick(now)`; this module moves the gateway's
`VirtualClock` forward one step at a time, calls `tick` after each step, and then reads the
gateway's event log to judge what happened: which connections opened, how each one closed
(idle timeout or the 2-hour maximum), and how long the client was offline in between.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websocket

from helpers.checks import CheckFailed
from helpers.display import Table, table


def clock_label(seconds: float) -> str:
    """`h:mm:ss` for a duration in seconds, e.g. 7200 -> "2:00:00"."""
    return str(dt.timedelta(seconds=round(seconds)))


@dataclass
class KeepAliveReport:
    """What the gateway saw while `run_keepalive` drove a client."""

    connections: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    heartbeats: int = 0  # messages the client sent
    duration: float = 0.0  # seconds of virtual time driven
    max_lifetime: float = 7200.0

    @property
    def idle_closes(self) -> int:
        """Gateway closes that came before the 2-hour maximum: idle timeouts."""
        return sum(1 for c in self.connections if c["closed by"] == "gateway"
                   and c["_closed"] - c["_opened"] < self.max_lifetime - 1)

    @property
    def lifetime_closes(self) -> int:
        return sum(1 for c in self.connections if c["closed by"] == "gateway"
                   and c["_closed"] - c["_opened"] >= self.max_lifetime - 1)

    @property
    def reconnects(self) -> int:
        return max(len(self.connections) - 1, 0)

    @property
    def open_at_end(self) -> bool:
        return bool(self.connections) and self.connections[-1]["_closed"] is None

    @property
    def downtime(self) -> float:
        """Seconds with no open connection, from the first connect to the end of the run."""
        offline, previous_close = 0.0, None
        for conn in self.connections:
            if previous_close is not None:
                offline += max(conn["_opened"] - previous_close, 0.0)
            previous_close = conn["_closed"]
        if previous_close is not None:
            offline += max(self.duration - previous_close, 0.0)
        return offline

    def table(self, title: str = "What the gateway saw") -> Table:
        return table(self.connections,
                     ["connection", "opened", "closed", "close code", "closed by"], title)


def run_keepalive(
    make_client: Callable[[], Any],
    gateway: Any,
    clock: Any,
    *,
    hours: float = 3.0,
    step_seconds: float = 60.0,
    settle: float = 5.0,
) -> KeepAliveReport:
    """Create a client, then advance `clock` by `step_seconds` until `hours` have passed,
    calling `client.tick(clock.time())` after every step (and once at the start).

    After a step in which the gateway closed a connection, it waits (at most `settle` real
    seconds) until the client's socket has read the close frame, so `tick` sees
    `self.conn.closed` at the same virtual instant. The client is closed at the end.
    """
    mark = max((e.seq for e in gateway.log), default=0)
    start = clock.time()
    client = make_client()
    try:
        _tick(client, clock.time())
        for _ in range(round(hours * 3600 / step_seconds)):
            before = set(gateway.connections)
            clock.advance(step_seconds)
            if before - set(gateway.connections):
                conn = getattr(client, "conn", None)
                with contextlib.suppress(Exception):
                    conn.wait_closed(settle)
            _tick(client, clock.time())
        report = _report(gateway, mark, start, clock.time() - start)
    finally:
        conn = getattr(client, "conn", None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
    return report


def _tick(client: Any, now: float) -> None:
    try:
        client.tick(now)
    except (websocket.WebSocketConnectionClosedException, BrokenPipeError,
            ConnectionError) as error:
        raise CheckFailed(
            f"tick() used a connection that was already closed ({type(error).__name__}).\n"
            "Hint: check self.conn.closed first, and open a new Client when it is closed"
        ) from None


def _report(gateway: Any, mark: int, start: float, duration: float) -> KeepAliveReport:
    entries = [e for e in gateway.log if e.seq > mark]
    conns: dict[str, dict[str, Any]] = {}
    heartbeats = 0
    for e in entries:
        if e.kind == "connect":
            conns[e.connection_id] = {
                "connection": gateway.redactor.label(e.connection_id, "conn"),
                "opened": clock_label(e.time - start), "_opened": e.time - start,
                "closed": "(open)", "_closed": None, "close code": "", "closed by": "",
            }
        elif e.kind == "close" and e.connection_id in conns:
            row = conns[e.connection_id]
            if row["_closed"] is None:
                row.update({"closed": clock_label(e.time - start), "_closed": e.time - start,
                            "close code": f'{e["code"]} {e["reason"]}'.strip(),
                            "closed by": e["by"]})
        elif e.kind == "message" and e.connection_id in conns:
            heartbeats += 1
    return KeepAliveReport(list(conns.values()), heartbeats, duration, gateway.max_lifetime)
