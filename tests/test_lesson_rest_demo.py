"""Lesson 01's REST props: a real HTTP server answering real requests, and the pure timelines."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest

from helpers.checks import CheckFailed
from helpers.lessons.rest_demo import (
    Producer,
    UpdateFeed,
    check_collect_updates,
    simulate_polling,
    simulate_push,
)


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers["Content-Type"], json.load(response)


def test_feed_serves_the_latest_update_and_counts_requests() -> None:
    with UpdateFeed() as feed:
        assert _get(feed.url) == (200, "application/json", {"update": None})
        feed.publish({"seq": 1})
        feed.publish({"seq": 2})
        assert _get(feed.url)[2] == {"update": {"seq": 2}}
        assert feed.requests == 2


def test_feed_answers_404_elsewhere_and_stops_cleanly() -> None:
    feed = UpdateFeed().start()
    url = feed.url
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(url.replace("/latest", "/nope"), timeout=5)
    assert raised.value.code == 404
    feed.stop()
    feed.stop()  # twice is fine
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)


def test_starting_a_feed_stops_the_previous_one() -> None:
    first = UpdateFeed().start()
    second = UpdateFeed().start()
    try:
        assert not first.running and second.running
    finally:
        second.stop()


def test_producer_publishes_on_schedule_in_order() -> None:
    with UpdateFeed() as feed:
        producer = Producer([{"seq": 1}, {"seq": 2}], [0.0, 0.1], feed.publish)
        begin = time.monotonic()
        producer.start().join(5)
        assert _get(feed.url)[2] == {"update": {"seq": 2}}
        assert len(producer.produced) == 2
        assert producer.produced[1] - begin >= 0.1


def test_producer_join_reraises_publish_errors() -> None:
    def broken(update):
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        Producer([1], [0.0], broken).start().join(5)


def test_polling_simulation_counts_requests_waste_misses_and_delay() -> None:
    polling = simulate_polling([0.7, 2.1, 2.4, 4.6, 7.3, 7.8], interval=1.0)
    assert polling.request_times == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert (polling.requests, polling.wasted, polling.missed) == (9, 5, 2)
    assert polling.average_delay == pytest.approx((0.3 + 0.6 + 0.4 + 0.2) / 4)


def test_push_simulation_delivers_everything_after_the_latency() -> None:
    push = simulate_push([0.7, 2.1], latency=0.05)
    assert (push.requests, push.messages, push.missed) == (0, 2, 0)
    assert push.average_delay == pytest.approx(0.05)


# Lesson 01's graded check, on answers a learner could write (under moto, as in the lesson) ---


def _collect(client, count, timeout=2.0):
    """The notebook's solution."""
    updates = []
    while len(updates) < count:
        try:
            message = json.loads(client.recv(timeout=timeout))
        except TimeoutError:
            break
        if message.get("type") == "done":
            break
        updates.append(message)
    return updates


def _reads_past_done(client, count, timeout=2.0):
    updates = []
    while len(updates) < count:
        try:
            message = json.loads(client.recv(timeout=timeout))
        except TimeoutError:
            break
        if message.get("type") != "done":
            updates.append(message)
    return updates


def _keeps_done(client, count, timeout=2.0):
    updates = []
    while len(updates) < count:
        try:
            updates.append(json.loads(client.recv(timeout=timeout)))
        except TimeoutError:
            break
        if updates[-1].get("type") == "done":
            break
    return updates


def _raw_text(client, count, timeout=2.0):
    return [client.recv(timeout=timeout) for _ in range(count)]


def _raises_on_silence(client, count, timeout=2.0):
    updates = []
    while len(updates) < count:
        message = json.loads(client.recv(timeout=timeout))
        if message.get("type") == "done":
            break
        updates.append(message)
    return updates


@pytest.mark.parametrize("part", ["waits", "stops"])
def test_collect_updates_check_passes_the_solution(aws, part) -> None:
    check_collect_updates(_collect, part)


@pytest.mark.parametrize(("answer", "part", "reason"), [
    (_reads_past_done, "stops", "kept reading after 'done'"),
    (_keeps_done, "stops", "after two updates and 'done' it returned"),
    (_raw_text, "waits", "the items should be parsed JSON"),
    (_raises_on_silence, "stops", "when nothing arrives it returned 'a TimeoutError'"),
], ids=lambda value: getattr(value, "__name__", "")[1:] if callable(value) else None)
def test_collect_updates_check_fails_wrong_answers_with_a_reason(aws, answer, part,
                                                                 reason) -> None:
    wrapped = r"\s+".join(map(re.escape, reason.split()))  # checks wrap long lines
    with pytest.raises(CheckFailed, match=wrapped):
        check_collect_updates(answer, part)
