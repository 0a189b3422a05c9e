"""Lesson 06 (limits): the harness that drives reconnecting clients through hours of virtual time.

A client only reacts to `tick(now)`; this module moves the gateway's `VirtualClock` forward
and calls `tick` after each step: every `step` seconds while a client is offline (waiting to
reconnect), otherwise in larger steps that never pass a gateway timer, so each close is seen
at its own instant. Then it reads the gateway's event log to judge what happened: which
connections opened, how each one closed, which handshakes were refused, and how long a
client was offline. `Crowd` plays many clients at once, for reconnect storms.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import websocket

from helpers.checks import CheckFailed
from helpers.client import Client
from helpers.display import Table, table
from helpers.lessons.real_aws import on_real_account
from helpers.lessons.real_stage import OfflineOnly

#: Why the two harnesses below cannot grade on a real account (the checks print it).
HEARTBEAT_ON_AWS = ("it drives your client through hours of a virtual clock in seconds; on "
                    "AWS the 10-minute idle timeout and the 2-hour cut take real hours "
                    "(docs/aws-behaviour.md §5)")
RECONNECT_ON_AWS = ("it forces closes 1006, 1011 and 1012, which only the local gateway can "
                    "cause (LocalGateway.drop), and a 2-hour cut on a virtual clock; on AWS "
                    "the cut comes after 2 real hours (docs/aws-behaviour.md §5)")


def _offline_only(why: str) -> None:
    """Refuse before anything is deployed or connected on a real account (lesson 09)."""
    if on_real_account():
        raise OfflineOnly(f"not on a real account: {why}", note=why)


def clock_label(seconds: float) -> str:
    """`h:mm:ss` for a duration in seconds, e.g. 7200 -> "2:00:00"."""
    return str(dt.timedelta(seconds=round(seconds)))


# Driving clients through virtual time ----------------------------------------------------------


class _Run:
    """Which client connection owns which gateway connection id, so that after a step the
    run waits for exactly the sockets the gateway closed to see their close."""

    def __init__(self, gateway: Any, clock: Any, settle: float) -> None:
        self.gateway, self.clock, self.settle = gateway, clock, settle
        self.known = set(gateway.connections)  # connections of others: not ours to watch
        self.owners: dict[str, Any] = {}

    def claim(self, client: Any) -> None:
        """Give the gateway's new connection ids to `client`'s current connection."""
        for cid in self.gateway.connections:
            if cid not in self.known:
                self.known.add(cid)
                self.owners[cid] = getattr(client, "conn", None)

    def settle_closes(self, before: set[str]) -> None:
        for cid in before - set(self.gateway.connections):
            conn = self.owners.pop(cid, None)
            if conn is not None:
                with contextlib.suppress(TimeoutError):
                    conn.wait_closed(self.settle)

    def tick_all(self, clients: Iterable[Any]) -> None:
        now = self.clock.time()
        for client in clients:
            _tick(client, now)
            self.claim(client)

    def drive(self, clients: list[Any], until: float, at: Mapping[float, Callable[[], Any]],
              step: float, quiet_step: float) -> None:
        events = sorted(at.items())
        self.tick_all(clients)
        while self.clock.time() < until:
            now = self.clock.time()
            target = min(until, now + (step if any(map(_offline, clients)) else quiet_step))
            due = self.clock.next_due()
            if due is not None and now < due < target:
                target = due
            if events and events[0][0] < target:
                target = max(events[0][0], now)
            before = set(self.gateway.connections)
            self.clock.advance(target - now)
            while events and events[0][0] <= self.clock.time():
                events.pop(0)[1]()
            self.settle_closes(before)
            self.tick_all(clients)


def _offline(client: Any) -> bool:
    conn = getattr(client, "conn", None)
    return conn is None or conn.closed


def _tick(client: Any, now: float) -> None:
    try:
        client.tick(now)
    except (websocket.WebSocketConnectionClosedException, BrokenPipeError,
            ConnectionResetError) as error:
        raise CheckFailed(
            f"tick() used a connection that was already closed ({type(error).__name__}).\n"
            "Hint: check self.conn.closed first, and open a new Client when it is closed"
        ) from None


# One keep-alive client ----------------------------------------------------------------------


@dataclass
class KeepAliveReport:
    """What the gateway saw while `run_keepalive` drove one client."""

    connections: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    heartbeats: int = 0  # messages the client sent
    duration: float = 0.0  # seconds of virtual time driven
    max_lifetime: float = 7200.0

    @property
    def idle_closes(self) -> int:
        """Gateway closes with 1001 before the 2-hour maximum: idle timeouts."""
        return sum(1 for c in self.connections if c["_code"] == 1001 and c["_by"] == "gateway"
                   and c["_closed"] - c["_opened"] < self.max_lifetime - 1)

    @property
    def lifetime_closes(self) -> int:
        return sum(1 for c in self.connections if c["_by"] == "gateway"
                   and c["_closed"] - c["_opened"] >= self.max_lifetime - 1)

    @property
    def reconnects(self) -> int:
        return max(len(self.connections) - 1, 0)

    @property
    def open_at_end(self) -> bool:
        return bool(self.connections) and self.connections[-1]["_closed"] is None

    def back_after(self, code: int) -> float | None:
        """Seconds from the first close with `code` (not the client's) to the next connection;
        None if there was no such close, or no connection after it."""
        for before, after in zip(self.connections, [*self.connections[1:], None], strict=True):
            if before["_code"] == code and before["_by"] != "client":
                return None if after is None else after["_opened"] - before["_closed"]
        return None

    @property
    def reopened_after_own_close(self) -> bool:
        """Did a connection open after one the client closed itself?"""
        own = [c["_closed"] for c in self.connections if c["_by"] == "client"]
        return bool(own) and any(c["_opened"] > own[0] for c in self.connections)

    @property
    def downtime(self) -> float:
        """Seconds with no open connection, from the first connect to the end of the run
        (or to the client's own close)."""
        offline, previous_close = 0.0, None
        for conn in self.connections:
            if previous_close is not None:
                offline += max(conn["_opened"] - previous_close, 0.0)
            if conn["_by"] == "client":
                return offline
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
    at: Mapping[float, Callable[[Any], Any]] | None = None,
    step: float = 0.25,
    quiet_step: float = 60.0,
    settle: float = 5.0,
) -> KeepAliveReport:
    """Create a client, then drive it through `hours` of virtual time, calling
    `client.tick(clock.time())` at the start and after every step (see the module's doc).

    `at` maps seconds since the start to actions on the client, e.g.
    `{1800: lambda client: gateway.drop()}` cuts the network half an hour in. A step in
    which the gateway closed the client's connection waits (at most `settle` real seconds)
    for the socket to read the close, so `tick` sees `self.conn.closed` at that instant.
    The client is closed at the end.
    """
    _offline_only(HEARTBEAT_ON_AWS)
    mark = max((e.seq for e in gateway.log), default=0)
    start = clock.time()
    run = _Run(gateway, clock, settle)
    client = make_client()
    run.claim(client)
    try:
        actions = {start + t: (lambda act=act: act(client)) for t, act in (at or {}).items()}
        run.drive([client], start + hours * 3600, actions, step, quiet_step)
        report = _report(gateway, mark, start, clock.time() - start)
    finally:
        conn = getattr(client, "conn", None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
    return report


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
                "_code": None, "_by": None,
            }
        elif e.kind == "close" and e.connection_id in conns:
            row = conns[e.connection_id]
            if row["_closed"] is None:
                row.update({"closed": clock_label(e.time - start), "_closed": e.time - start,
                            "close code": f'{e["code"]} {e["reason"]}'.strip(),
                            "closed by": e["by"], "_code": e["code"], "_by": e["by"]})
        elif e.kind == "message" and e.connection_id in conns:
            heartbeats += 1
    return KeepAliveReport(list(conns.values()), heartbeats, duration, gateway.max_lifetime)


# A crowd, for reconnect storms --------------------------------------------------------------


class CrowdMember:
    """One client of a crowd: heartbeats every 5 minutes and, after any close, waits
    `delay(attempt)` seconds before try number `attempt` (0, 1, 2, ...) to reconnect."""

    def __init__(self, url: str, delay: Callable[[int], float], name: str) -> None:
        self.url, self.delay, self.name = url, delay, name
        self.conn = Client(url, name=name)
        self.last_heartbeat: float | None = None
        self.failures, self.retry_at = 0, None

    def tick(self, now: float) -> None:
        if self.conn.closed:
            if self.retry_at is None:
                self.retry_at = now + self.delay(self.failures)
            if now < self.retry_at:
                return
            try:
                self.conn = Client(self.url, name=self.name)
            except websocket.WebSocketBadStatusException:  # 429: over the connect quota
                self.failures += 1
                self.retry_at = now + self.delay(self.failures)
                return
            self.failures, self.retry_at, self.last_heartbeat = 0, None, None
        if self.last_heartbeat is None or now - self.last_heartbeat >= 300:
            self.conn.send_json({"action": "ping"})
            self.conn.recv(timeout=5)
            self.last_heartbeat = now


class Crowd:
    """`size` clients that join one every `join_every` seconds of virtual time (under the
    gateway's connect quota), then live through whatever `run` makes happen."""

    def __init__(self, make_client: Callable[[int], Any], gateway: Any, clock: Any, *,
                 size: int = 30, join_every: float = 2.0, settle: float = 5.0) -> None:
        self.gateway, self.clock = gateway, clock
        self.mark = max((e.seq for e in gateway.log), default=0)
        self._run = _Run(gateway, clock, settle)
        self.clients: list[Any] = []
        for number in range(size):
            if number:
                clock.advance(join_every)
            self.clients.append(make_client(number))
            self._run.claim(self.clients[-1])

    def run(self, seconds: float, at: Mapping[float, Callable[[], Any]] | None = None, *,
            step: float = 0.25, quiet_step: float = 60.0) -> None:
        """Drive every client for `seconds`; `at` maps seconds from now to actions."""
        start = self.clock.time()
        actions = {start + t: act for t, act in (at or {}).items()}
        self._run.drive(self.clients, start + seconds, actions, step, quiet_step)

    def handshakes(self, since: float, seconds: int) -> list[dict[str, int]]:
        """New connections admitted (101) and refused (429), per second from `since`."""
        admitted, refused = Counter(), Counter()
        for e in self.gateway.log:
            if e.seq > self.mark and 0 <= e.time - since < seconds:
                if e.kind == "connect":
                    admitted[int(e.time - since)] += 1
                elif e.kind == "reject" and e["status"] == 429:
                    refused[int(e.time - since)] += 1
        return [{"second": s, "admitted": admitted[s], "refused (429)": refused[s]}
                for s in range(seconds)]

    @property
    def online(self) -> int:
        return sum(not _offline(c) for c in self.clients)

    def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.conn.close()


# The exercise's trials ------------------------------------------------------------------------


def reconnect_trial(make_client: Callable[[], Any], gateway: Any, clock: Any) -> KeepAliveReport:
    """Every kind of close a client did not start, then one it did, over 4 virtual hours.

    At 0:20 the network drops the client's connection (1006); at 0:40 a close 1011, at 1:00 a
    close 1012 reach it; the connection opened then meets the 2-hour maximum (1001) near 3:00;
    at 3:20 the client closes itself (`client.close()`), and 40 quiet minutes follow.
    """
    _offline_only(RECONNECT_ON_AWS)
    run = _Run(gateway, clock, settle=5.0)
    mark = max((e.seq for e in gateway.log), default=0)
    start = clock.time()
    client = make_client()
    run.claim(client)

    def cut(code: int | None = None, reason: str = "") -> Callable[[], None]:
        def act() -> None:
            mine = [cid for cid, conn in run.owners.items() if conn is client.conn]
            gateway.drop(*[cid for cid in mine if cid in gateway.connections],
                         code=code, reason=reason)
        return act

    actions = {start + 1200: cut(), start + 2400: cut(1011, "Internal error"),
               start + 3600: cut(1012, "Service restart"), start + 12000: client.close}
    try:
        run.drive([client], start + 14400, actions, step=0.25, quiet_step=60.0)
        return _report(gateway, mark, start, clock.time() - start)
    finally:
        with contextlib.suppress(Exception):
            client.conn.close()


class _Ceiling:
    """An injected `rng` whose `uniform(a, b)` always returns `b`: no randomness, the longest
    delay, so the check can compare each wait with its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def backoff_trial(make_client: Callable[[str, Any], Any], rng: Any = None, *,
                  refusals: int = 5) -> list[float]:
    """When a client's reconnect attempts come, in seconds after its connection dropped.

    A fresh gateway on a virtual clock accepts the client, drops its connection (1006), then
    refuses its next `refusals` handshakes with 429 before accepting again. `make_client(url,
    rng)` builds the client; `rng` defaults to one that always draws the ceiling.
    """
    from helpers.gateway import LocalGateway, VirtualClock

    refuse = {"left": 0}

    def door(event: dict, context: Any) -> dict:
        if refuse["left"] > 0:
            refuse["left"] -= 1
            return {"statusCode": 429}
        return {"statusCode": 200}

    def pong(event: dict, context: Any) -> dict:
        return {"statusCode": 200, "body": "pong"}

    clock = VirtualClock()
    with LocalGateway.from_handlers({"$connect": door, "ping": pong}, two_way=["ping"],
                                    clock=clock) as gateway:
        run = _Run(gateway, clock, settle=5.0)
        client = make_client(gateway.url, rng if rng is not None else _Ceiling())
        run.claim(client)
        run.drive([client], clock.time() + 60, {}, step=0.25, quiet_step=60.0)
        dropped = clock.time()

        def drop() -> None:
            refuse["left"] = refusals
            gateway.drop()

        try:
            run.drive([client], dropped + 600, {dropped: drop}, step=0.25, quiet_step=60.0)
        finally:
            with contextlib.suppress(Exception):
                client.conn.close()
        return [e.time - dropped for e in gateway.log
                if e.time >= dropped and (e.kind == "connect" or e.kind == "reject")]
