"""The capstone's browser page (helpers/lessons/static/chat.html) in headless Chromium.

Real parts only: the chat backend deployed with boto3 into moto, the local gateway on a real
socket, the page served over HTTP by the lesson's page server, and Chromium's own WebSocket.
"""

from __future__ import annotations

import pytest
from browser import chromium, missing_reason

from helpers.client import Client
from helpers.gateway import LocalGateway, VirtualClock
from helpers.lessons.capstone import deploy_chat
from helpers.lessons.page_server import serve_pages

pytestmark = pytest.mark.skipif(
    missing_reason() is not None and not __import__("os").environ.get("CI"),
    reason=str(missing_reason()))

WAIT = 60_000  # ms; a safety net, only ever waited out on failure (15 s ran out at load 4)


@pytest.fixture
def chat_page(aws):
    chat = deploy_chat("browserchat")
    gateway = LocalGateway.from_api(chat.api_id, chat.stage, clock=VirtualClock()).start()
    pages = serve_pages("test-chat-page")
    try:
        yield lambda nick: pages.url("chat.html", ws=gateway.url, nick=nick), gateway
    finally:
        pages.stop()
        gateway.stop()
    assert gateway.internal_errors == []


def log_lines(page) -> list[str]:
    return page.locator("#log li").all_inner_texts()


def wait_for_line(page, text: str) -> None:
    page.locator("#log li", has_text=text).first.wait_for(timeout=WAIT)


def test_two_pages_chat_and_a_reloaded_page_catches_up_once(chat_page):
    url, _ = chat_page
    with chromium() as browser:
        alice, bob = browser.new_page(), browser.new_page()
        alice.goto(url("alice"))
        alice.locator("#status", has_text="connected as alice").wait_for(timeout=WAIT)
        bob.goto(url("bob"))
        wait_for_line(alice, "* bob joined")

        alice.fill("#text", "hello bob")
        alice.click("#send")
        wait_for_line(bob, "alice: hello bob")
        bob.fill("#text", "psst")
        bob.fill("#to", "alice")
        bob.click("#send")
        wait_for_line(alice, "bob → alice: psst")

        bob.goto("about:blank")  # bob leaves; his last seen id stays in sessionStorage
        wait_for_line(alice, "* bob left")
        alice.fill("#text", "while you were away")
        alice.click("#send")
        wait_for_line(alice, "alice: while you were away")
        bob.goto(url("bob"))
        wait_for_line(bob, "alice: while you were away")

        seen = log_lines(bob)
        assert "alice: hello bob" not in seen, f"caught up from the start, not the last id: {seen}"
        assert seen.count("alice: while you were away") == 1, seen
        ids = [int(i) for i in bob.locator("#log li[data-id]").evaluate_all(
            "items => items.map(li => li.dataset.id)")]
        assert ids == sorted(set(ids)), f"ids shown twice or out of order: {ids}"


def test_a_40_kb_message_shows_the_1009_close_and_the_page_reconnects(chat_page):
    url, gateway = chat_page
    with chromium() as browser:
        page = browser.new_page()
        page.goto(url("dora"))
        page.locator("#status", has_text="connected as dora").wait_for(timeout=WAIT)
        page.fill("#text", "x" * (40 * 1024))
        page.click("#send")
        page.locator("#closes li", has_text="closed 1009").wait_for(timeout=WAIT)
        page.locator("#status", has_text="connected as dora").wait_for(timeout=WAIT)
        closes = page.locator("#closes li").all_inner_texts()
        assert closes[0].startswith("closed 1009"), closes
        assert len(gateway.log.entries("connect")) == 2  # the first socket, then the reconnect


def test_after_the_idle_close_the_page_reconnects_and_shows_what_it_missed_once(chat_page):
    url, gateway = chat_page
    with chromium() as browser:
        page = browser.new_page()
        page.goto(url("erin"))
        page.locator("#status", has_text="connected as erin").wait_for(timeout=WAIT)
        with Client(gateway.url + "?nick=frank"):
            wait_for_line(page, "* frank joined")
            gateway.clock.advance(minutes=10)  # both idle: API Gateway closes them with 1001
            page.locator("#closes li", has_text="closed 1001").wait_for(timeout=WAIT)
        with Client(gateway.url + "?nick=gina") as gina:
            gina.send_json({"action": "sendmessage", "text": "did erin see this?"})
            gina.wait_for(1)
            wait_for_line(page, "gina: did erin see this?")
        page.locator("#status", has_text="connected as erin").wait_for(timeout=WAIT)
        assert log_lines(page).count("gina: did erin see this?") == 1
