"""Shared fixtures: real gateways on real sockets, real websocket-client clients."""

from __future__ import annotations

import contextlib
import os
import struct

import pytest
import websocket

from helpers.gateway import LocalGateway


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
