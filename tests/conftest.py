"""Shared fixtures: real gateways on real sockets, real websocket-client clients; `wait_until`.

Markers the test files need not spell out (registered in pyproject.toml) are added here:
`browser` on tests in modules that use tests/browser.py, `live` on tests that use the `serve`,
`serve_api` or `connect` fixtures or live in a module that imports a socket-facing library.
"""

from __future__ import annotations

import contextlib
import functools
import os
import struct
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import TypeVar

import botocore.loaders
import botocore.session
import pytest
import websocket

from helpers.gateway import LocalGateway

# botocore parses each service's model (JSON files of up to a few MB) once per Session, and the
# tests make a fresh Session per test (moto's mock, the real-account switch): a shared loader
# per data path parses each file once per worker. Its models are read-only to botocore.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, message: str = "") -> T:
    """Poll `predicate` until it returns something truthy, and return that.

    The timeout is only a safety net for a test that is going to fail anyway, so it is long: a
    busy machine makes the wait longer, never the test red. Raises AssertionError(`message`)
    when time is up.
    """
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"{predicate!r} still false after {timeout} s")
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


#: Libraries whose use makes a test module `live` (real sockets, servers or subprocesses) ...
LIVE_MODULES = {"socket", "http.client", "urllib.request", "subprocess", "websocket", "websockets"}
#: ... and the repository's own servers and clients.
LIVE_NAMES = {"LocalGateway", "Client", "UpdateFeed", "check_collect_updates"}


def _uses(module: types.ModuleType, modules: set[str], names: set[str] = frozenset()) -> bool:
    """Does `module` import one of `modules` (or something from one), or one of `names`?"""
    for key, value in vars(module).items():
        if key in names and not isinstance(value, types.ModuleType):
            return True
        name = value.__name__ if isinstance(value, types.ModuleType) else getattr(
            value, "__module__", None)
        if isinstance(name, str) and any(name == m or name.startswith(m + ".") for m in modules):
            return True
    return False


def pytest_itemcollected(item: pytest.Item) -> None:
    module = getattr(item, "module", None)
    if module is None:
        return
    if "browser" in sys.modules and _uses(module, {"browser"}):
        item.add_marker(pytest.mark.browser)
    fixtures = set(getattr(item, "fixturenames", ()))
    if {"serve", "serve_api", "connect"} & fixtures or _uses(module, LIVE_MODULES, LIVE_NAMES):
        item.add_marker(pytest.mark.live)


@pytest.fixture
def serve():
    """Start a gateway from Python handlers; stopped (and checked for gateway bugs) after."""
    started: list[LocalGateway] = []

    def start(handlers, **options) -> LocalGateway:
        gateway = LocalGateway.from_handlers(handlers, **options).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()
    for gateway in started:
        assert gateway.internal_errors == [], gateway.internal_errors


@pytest.fixture
def serve_api():
    """Serve a deployed API (`.api_id`, `.stage`) on a gateway; stopped and checked after."""
    started: list[LocalGateway] = []

    def start(api, **options) -> LocalGateway:
        gateway = LocalGateway.from_api(api.api_id, api.stage, **options).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()
        assert gateway.internal_errors == []


@pytest.fixture
def connect():
    """Open websocket-client connections that are closed after the test."""
    opened: list[websocket.WebSocket] = []

    def open_(url: str, **options) -> websocket.WebSocket:
        options.setdefault("timeout", 5)
        ws = websocket.create_connection(url, **options)
        opened.append(ws)
        return ws

    yield open_
    for ws in opened:
        with contextlib.suppress(Exception):
            ws.close(timeout=0.2)


def read_close(ws: websocket.WebSocket) -> tuple[int, str]:
    """Read frames until the close frame; return its (code, reason)."""
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            data = frame.data
            if len(data) < 2:
                return 1005, ""
            return struct.unpack("!H", data[:2])[0], data[2:].decode()


@pytest.fixture
def aws():
    """moto's in-process AWS with fake credentials (the lessons' setting)."""
    from moto import mock_aws

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    with mock_aws():
        yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def run_together(*calls):
    """Run zero-argument calls in parallel threads and return their results in order."""
    results: list = [None] * len(calls)

    def run(i, call):
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results
