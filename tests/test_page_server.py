"""The lessons' page server: serves static/ on 127.0.0.1, quietly, one server per name."""

from __future__ import annotations

import urllib.request

from helpers.lessons.page_server import serve_pages


def test_serves_the_chat_page_and_keeps_a_ws_url_readable_in_the_link():
    pages = serve_pages("test-pages")
    try:
        link = pages.url("chat.html", ws="ws://127.0.0.1:1234/dev", nick="ann")
        assert link.endswith("/chat.html?ws=ws://127.0.0.1:1234/dev&nick=ann")
        with urllib.request.urlopen(link, timeout=5) as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-store"
            assert b"new WebSocket(" in response.read()
    finally:
        pages.stop()


def test_serving_again_under_the_same_name_stops_the_previous_server():
    first = serve_pages("test-rerun")
    second = serve_pages("test-rerun")
    try:
        assert not first.running and second.running
        with urllib.request.urlopen(second.url("chat.html"), timeout=5) as response:
            assert response.status == 200
    finally:
        second.stop()
