"""`python -m helpers.gateway`: the demo chat server a learner runs from a terminal."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

ROOT = Path(__file__).resolve().parents[1]


def _server(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "helpers.gateway", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """A running server on a free port, its socket URL and the lines it printed so far."""
    process = _server("--port", "0")
    lines: list[str] = []
    url = None
    deadline = time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"(ws://127\.0\.0\.1:\d+/dev)\b", line)
        if match and line.startswith("WebSocket URL"):
            url = match[1]
    try:
        assert url is not None, f"no URL printed: {lines} {process.stderr.read()}"
        while not lines[-1].startswith("Press Ctrl-C"):  # the usage lines come before it
            lines.append(process.stdout.readline())
        yield process, url, lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def test_help_describes_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "helpers.gateway", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0
    for option in ("--host", "--port", "--stage", "--idle-timeout", "--max-lifetime", "--log"):
        assert option in result.stdout


def test_chat_round_trip_then_sigint_stops_cleanly(served) -> None:
    process, url, lines = served
    printed = "".join(lines)
    assert "@connections" in printed and "http://127.0.0.1:" in printed
    assert "wscat -c" in printed and '"action": "sendmessage"' in printed

    ada = websocket.create_connection(f"{url}?name=ada", timeout=10)
    bob = websocket.create_connection(url, timeout=10)
    try:
        ada.send(json.dumps({"action": "sendmessage", "data": "hello all"}))
        assert ada.recv() == "ada: hello all"
        assert bob.recv() == "ada: hello all"

        bob.send("what can I do?")
        answer = json.loads(bob.recv())
        assert "sendmessage" in answer["help"]
        assert answer["got"] == "what can I do?"
    finally:
        ada.close()
        bob.close()

    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert time.monotonic() - started < 5
    assert "Bye" in out
    assert "Traceback" not in err


def test_sigterm_also_stops_cleanly(served) -> None:
    process, url, _ = served
    client = websocket.create_connection(url, timeout=10)
    process.send_signal(signal.SIGTERM)
    out, _err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Bye" in out
    client.close()
