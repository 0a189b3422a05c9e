"""`python -m helpers.gateway`: the demo chat server a learner runs from a terminal."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

from helpers.gateway.__main__ import StopSignals

ROOT = Path(__file__).resolve().parents[1]


def _server(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "helpers.gateway", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """A running server on a free port, its socket URL and the lines it printed so far."""
    yield from _serving("--port", "0")


@pytest.fixture
def served_with_log() -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    yield from _serving("--port", "0", "--log")


def _serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    process = _server(*args)
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


def _quick(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with Python's import timing on: stderr then lists every module imported."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "helpers.gateway", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


def _imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines()
            if line.startswith("import time:")}


def _messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("import time:")]


def test_help_describes_the_options_without_importing_moto() -> None:
    result = _quick("--help")
    assert result.returncode == 0
    for option in ("--host", "--port", "--stage", "--idle-timeout", "--max-lifetime",
                   "--environment-idle-lifetime", "--log"):
        assert option in result.stdout
    assert "(default 600," in " ".join(result.stdout.split())  # defaults.py's, as AWS's
    imported = _imported(result.stderr)
    assert "argparse" in imported  # the timing is on: the check below means something
    assert not {m for m in imported if m.split(".")[0] in ("moto", "boto3", "botocore")}


@pytest.mark.parametrize(("args", "words"), [
    (["--port", "70000"], "port 70000 is out of range"),
    (["--port", "-1"], "out of range"),
    (["--port", "http"], "not a number"),
    (["--stage", ""], "stage name '' is invalid"),
    (["--stage", "my stage"], "is invalid"),
    (["--stage", "x" * 129], "is invalid"),
    (["--idle-timeout", "0"], "not a positive, finite duration"),
    (["--idle-timeout", "-5"], "not a positive, finite duration"),
    (["--max-lifetime", "nan"], "not a positive, finite duration"),
    (["--max-lifetime", "inf"], "not a positive, finite duration"),
    (["--idle-timeout", "soon"], "not a number of seconds"),
    (["--environment-idle-lifetime", "0"], "not a positive, finite duration"),
    (["--environment-idle-lifetime", "ten"], "not a number of seconds"),
    (["--environment-idle-lifetime"], "expected one argument"),
    (["--verbose"], "unrecognized arguments"),
])
def test_bad_arguments_get_one_clear_line_and_exit_2(args, words) -> None:
    result = _quick(*args)
    assert result.returncode == 2
    [message] = _messages(result.stderr)
    assert message.startswith("python -m helpers.gateway: error:") and words in message
    assert "moto" not in {m.split(".")[0] for m in _imported(result.stderr)}


def test_a_busy_port_is_reported_before_the_api_is_built() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _quick("--port", str(port))
    assert result.returncode == 1
    [message] = _messages(result.stderr)
    assert f"127.0.0.1:{port}" in message and "--port 0" in message
    assert "moto" not in {m.split(".")[0] for m in _imported(result.stderr)}  # nothing built
    assert result.stdout == ""


def test_an_unknown_host_is_reported_before_the_api_is_built() -> None:
    result = _quick("--host", "no-such-host.invalid", "--port", "0")
    assert result.returncode == 1
    [message] = _messages(result.stderr)
    assert "no-such-host.invalid" in message and "--host 127.0.0.1" in message
    assert "moto" not in {m.split(".")[0] for m in _imported(result.stderr)}


#: How the CLI may inherit SIGINT: as Python starts it, or ignored, as a script's background
#: job (`cmd &`) gets it, and so every process a test runner started that way starts.
INHERITED_SIGINT = {"default": [], "ignored": ["sh", "-c", 'trap "" INT; exec "$@"', "sh"]}


@pytest.mark.parametrize("inherited", INHERITED_SIGINT)
def test_ctrl_c_during_start_up_exits_quietly(inherited: str) -> None:
    process = subprocess.Popen(
        [*INHERITED_SIGINT[inherited], sys.executable, "-X", "importtime", "-m",
         "helpers.gateway", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        for line in process.stderr:  # wait until it is busy importing moto: start-up
            if line.rsplit("|", 1)[-1].strip().startswith("moto."):
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "Traceback" not in err
    assert _messages(err) == ["Interrupted before the gateway started."]
    assert "WebSocket URL" not in out


def test_a_ctrl_c_a_library_swallowed_during_start_up_still_stops_it() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        signals = StopSignals()
        with contextlib.suppress(KeyboardInterrupt):  # as a careless library might
            signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            signals.serve()
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


def test_once_serving_a_signal_only_asks_the_loop_to_stop() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        signals = StopSignals()
        signals.serve()
        signal.raise_signal(signal.SIGINT)  # no KeyboardInterrupt
        assert signals.requested
        assert signals.wait(60)  # at once
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


#: The serving loop's wait, with SIGINT raised at each line it runs in turn (a tracer counts
#: them): a handler that took a lock the loop can hold (a threading.Event's) hung the CLI
#: for good, one Ctrl-C in a few hundred. Run apart: a hang must not take pytest along.
SIGNAL_AT_EVERY_LINE = """
import signal, sys
from helpers.gateway.__main__ import StopSignals

def stop_at(line):
    signals = StopSignals()
    signals.serve()
    seen = 0
    def tracer(frame, event, arg):
        nonlocal seen
        if event == "line":
            seen += 1
            if seen == line:
                signal.raise_signal(signal.SIGINT)
        return tracer
    sys.settrace(tracer)
    try:
        stopped = signals.wait(0.05)
    finally:
        sys.settrace(None)
    return seen >= line, stopped or signals.wait(0)

line = 1
while True:
    reached, stopped = stop_at(line)
    if not reached:
        break
    assert stopped, f"a SIGINT at line {line} of the wait did not stop it"
    line += 1
print("stopped from", line - 1, "places")
"""


def test_a_signal_at_any_moment_of_the_serving_loop_stops_it() -> None:
    done = subprocess.run([sys.executable, "-c", SIGNAL_AT_EVERY_LINE], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stopped from")


def test_log_shows_handler_log_lines_and_shortens_long_bodies(served_with_log) -> None:
    process, url, _ = served_with_log
    ada = websocket.create_connection(f"{url}?name=ada", timeout=10)
    long_text = "x" * 5000
    ada.send(json.dumps({"action": "sendmessage", "data": long_text}))
    assert ada.recv().endswith(long_text)
    ada.close()
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("[close"):
            break
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    printed = "".join(lines)
    assert re.search(r"^ +\| connected \S+ as ada$", printed, re.MULTILINE)  # print() in $connect
    assert "more characters)" in printed
    assert max(len(line) for line in lines) < 1000


@pytest.mark.parametrize(("args", "cold_starts"), [
    ((), 1),  # the default: the second $connect finds the first one's environment warm
    (("--environment-idle-lifetime", "0.001"), 2),  # reclaimed long before it comes
])
def test_environment_idle_lifetime_decides_when_the_next_call_is_a_cold_start(
        args, cold_starts) -> None:
    serving = _serving("--port", "0", "--log", *args)
    process, url, _ = next(serving)
    try:
        for name in ("ada", "bob"):  # one after the other: the second after the first closed
            websocket.create_connection(f"{url}?name={name}", timeout=10).close()
        invocations: list[list[str]] = []  # chat-connect's [invoke] line and its log lines
        current: list[str] | None = None
        for line in process.stdout:
            if line.startswith(" ") and current is not None:
                current.append(line)  # an indented log line of the invocation above
                continue
            current = None
            if line.startswith("[invoke") and 'function="chat-connect"' in line:
                invocations.append(current := [line])
            if line.startswith("[connect ") and len(invocations) == 2:
                break  # bob's handshake, logged after its $connect
        environments = {re.search(r'environment="([^"]+)"', lines[0])[1]
                        for lines in invocations}
        cold = sum("Init Duration" in "".join(lines) for lines in invocations)
        assert (len(invocations), len(environments), cold) == (2, cold_starts, cold_starts)
    finally:
        serving.close()


def test_without_log_a_failing_handler_still_prints_one_line(served) -> None:
    process, url, _ = served
    client = websocket.create_connection(url, timeout=10)
    client.send(json.dumps({"action": "sendmessage", "data": {"not": "a string"}}))
    assert json.loads(client.recv())["message"] == "Internal server error"
    line = process.stdout.readline()
    client.close()
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert line.startswith("handler failed: chat-sendmessage on route sendmessage:")
    assert "data must be a string" in line and "--log" in line
    assert rest.strip() == "Gateway stopped. Bye."


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
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert time.monotonic() - started < 30  # prompt, with room for a busy machine
    assert "Bye" in out
    assert "Traceback" not in err


def test_sigterm_also_stops_cleanly(served) -> None:
    process, url, _ = served
    client = websocket.create_connection(url, timeout=10)
    process.send_signal(signal.SIGTERM)
    out, _err = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "Bye" in out
    client.close()
