"""Lesson 06's harness and what the lesson claims with it: a client reconnects after every close
it did not start, its tries follow its backoff, and a crowd cut at once is refused by the
connect-rate quota unless jitter spreads it out (then again at the 2-hour mark)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
import websocket

from helpers.client import Client
from helpers.gateway import VirtualClock
from helpers.lessons.limits import (
    Crowd,
    CrowdMember,
    backoff_trial,
    reconnect_trial,
    run_keepalive,
)


def pong(event, context):
    return {"statusCode": 200, "body": "pong"}


class KeepAlive:
    """The lesson's solution: heartbeats; after any close it did not start, full-jitter backoff."""

    def __init__(self, url, heartbeat_every=timedelta(minutes=5), *, rng=None, base=1.0,
                 cap=60.0, reconnect_on=None):
        self.url, self.heartbeat_every = url, heartbeat_every.total_seconds()
        self.rng, self.base, self.cap = rng or random.Random(0), base, cap
        self.reconnect_on = reconnect_on  # None: every close; else only these codes (a bug)
        self.conn = Client(url)
        self.last_heartbeat, self.failures, self.retry_at = None, 0, None
        self.reconnects, self.stopped = 0, False

    def close(self):
        self.stopped = True
        self.conn.close()

    def backoff(self, attempt):
        return self.rng.uniform(0, min(self.cap, self.base * 2 ** attempt))

    def tick(self, now):
        if self.stopped:
            return
        if self.conn.closed:
            if self.reconnect_on is not None and self.conn.close_code not in self.reconnect_on:
                return
            if self.retry_at is None:
                self.retry_at = now + self.backoff(self.failures)
            if now < self.retry_at:
                return
            try:
                self.conn = Client(self.url)
            except (websocket.WebSocketException, OSError):
                self.failures += 1
                self.retry_at = now + self.backoff(self.failures)
                return
            self.reconnects += 1
            self.failures, self.retry_at, self.last_heartbeat = 0, None, None
        if self.last_heartbeat is None or now - self.last_heartbeat >= self.heartbeat_every:
            self.conn.send_json({"action": "ping"})
            self.conn.recv(timeout=5)
            self.last_heartbeat = now


class Ceiling:
    def uniform(self, a, b):
        return b


@pytest.fixture
def lesson_gateway(serve):
    clock = VirtualClock()
    return serve({"ping": pong}, two_way=["ping"], clock=clock), clock


def test_a_client_comes_back_after_1006_1011_1012_and_1001_but_not_after_its_own_close(
        lesson_gateway):
    gateway, clock = lesson_gateway
    report = reconnect_trial(lambda: KeepAlive(gateway.url), gateway, clock)
    closes = [(c["_code"], c["_by"]) for c in report.connections]
    assert closes == [(1006, "network"), (1011, "gateway"), (1012, "gateway"),
                      (1001, "gateway"), (1000, "client")]
    assert all(0 <= report.back_after(code) <= 1.25 for code in (1006, 1011, 1012, 1001))
    assert not report.reopened_after_own_close
    assert report.idle_closes == 0 and report.lifetime_closes == 1


def test_a_client_that_reconnects_only_on_1001_stays_away_after_a_network_drop(lesson_gateway):
    gateway, clock = lesson_gateway
    report = reconnect_trial(lambda: KeepAlive(gateway.url, reconnect_on={1001}), gateway, clock)
    assert report.back_after(1006) is None
    assert len(report.connections) == 1 and report.downtime > 3 * 3600


def test_the_keepalive_run_sees_the_2_hour_close_and_the_reconnect(lesson_gateway):
    gateway, clock = lesson_gateway
    report = run_keepalive(lambda: KeepAlive(gateway.url, rng=Ceiling()), gateway, clock,
                           hours=3)
    assert [(c["opened"], c["closed"]) for c in report.connections] == [
        ("0:00:00", "2:00:00"), ("2:00:01", "(open)")]
    assert report.idle_closes == 0 and report.open_at_end and report.downtime == 1.0


def test_without_heartbeats_the_report_counts_idle_closes(lesson_gateway):
    gateway, clock = lesson_gateway
    report = run_keepalive(lambda: KeepAlive(gateway.url, timedelta(hours=1)), gateway, clock,
                           hours=1)
    assert report.idle_closes >= 1


def test_tries_after_a_drop_follow_the_backoff_ceilings() -> None:
    waits = backoff_trial(lambda url, rng: KeepAlive(url, rng=rng))
    assert waits == [1.0, 3.0, 7.0, 15.0, 31.0, 63.0]      # gaps 1, 2, 4, 8, 16, 32
    capped = backoff_trial(lambda url, rng: KeepAlive(url, rng=rng, cap=4.0))
    assert capped == [1.0, 3.0, 7.0, 11.0, 15.0, 19.0]


def test_jittered_tries_wait_the_drawn_delays_rounded_up_to_the_step() -> None:
    drawn = []

    class Recording(random.Random):
        def uniform(self, a, b):
            drawn.append(super().uniform(a, b))
            return drawn[-1]

    waits = backoff_trial(lambda url, rng: KeepAlive(url, rng=rng), Recording(3))
    gaps = [b - a for a, b in zip([0.0, *waits], waits, strict=False)]
    assert len(gaps) == len(drawn) == 6
    assert all(d <= g < d + 0.25 for g, d in zip(gaps, drawn, strict=True))


def storm(delay, serve):
    """The lesson's storm: 30 clients, quota 10 per second, a drop, a newcomer 2 h later."""
    clock = VirtualClock()
    gateway = serve({"ping": pong}, two_way=["ping"], clock=clock, max_connections_per_second=10)
    crowd = Crowd(lambda n: CrowdMember(gateway.url, delay, f"m{n}"), gateway, clock, size=30)
    dropped = clock.time() + 600
    answer = {}

    def newcomer():
        try:
            Client(gateway.url).close()
            answer["status"] = 101
        except websocket.WebSocketBadStatusException as error:
            answer["status"] = error.status_code

    crowd.run(600 + 7210, at={600: gateway.drop, 600 + 7200.5: newcomer})
    result = (crowd.handshakes(dropped, 8), crowd.handshakes(dropped + 7200, 8),
              crowd.online, answer["status"])
    crowd.close()
    return result


def test_a_crowd_that_retries_at_once_fills_the_quota_then_locks_out_a_newcomer_at_2_hours(
        serve):
    after_drop, two_hours, online, newcomer = storm(lambda attempt: 0.0, serve)
    assert [s["admitted"] for s in after_drop[:3]] == [10, 10, 10]
    assert sum(s["refused (429)"] for s in after_drop) == 120   # 20 and 10 clients, 4 tries/s
    assert [s["admitted"] for s in two_hours[:3]] == [10, 10, 10]
    assert online == 30 and newcomer == 429


def test_full_jitter_spreads_the_crowd_it_all_gets_in_and_the_newcomer_too(serve):
    rng = random.Random(2026)
    after_drop, two_hours, online, newcomer = storm(
        lambda attempt: rng.uniform(0, min(60.0, 2 ** attempt)), serve)
    assert online == 30 and newcomer == 101
    assert sum(s["refused (429)"] for s in after_drop) < 60
    assert max(s["admitted"] for s in two_hours) < 10
