"""A WebSocket client for notebooks: websocket-client plus a reader thread.

A cell often plays several users at once (Alice sends, Bob receives). A blocking `recv()` per
client would make that awkward, so each `Client` reads in a background thread and keeps what
arrives: messages in order, and the close code and reason when the connection ends. The
thread never prints; cells ask for what arrived (`recv`, `messages`, `wait_closed`).
"""

from __future__ import annotations

import contextlib
import json
import queue
import struct
import threading
import time
from typing import Any

import websocket

_names = iter(range(1, 1_000_000))


class Client:
    """One WebSocket connection, e.g. `alice = Client(gateway.url, name="alice")`.

    Other keyword arguments go to `websocket.create_connection`, e.g. `origin="https://..."`,
    `header=["User-Agent: phone/1.0"]` or `subprotocols=["chat.v1"]` (see `subprotocol`).
    Raises `websocket.WebSocketBadStatusException` (with `.status_code`) when the handshake
    is refused, e.g. 403 from a `$connect` handler.

    Receiving: `recv(timeout)` returns the next message and raises `TimeoutError` when none
    comes in time (it says so when the connection has closed); `try_recv` returns None
    instead; `messages` lists everything received.

    Closing: `closed` tells whether the connection has ended. `close_code` and
    `close_reason` then say how: the code of the close frame (e.g. 1001 "Going away" from
    API Gateway, 1000 after `delete_connection`), 1005 for a close frame without a code,
    1006 when the socket dropped without one; None while open. `wait_closed(timeout)`
    waits for the close and returns `(close_code, close_reason)`, or raises `TimeoutError`.
    """

    def __init__(self, url: str, *, name: str | None = None, timeout: float = 10.0,
                 **options: Any):
        self.name = name or f"client-{next(_names)}"
        self.url = url
        self._ws = websocket.create_connection(url, timeout=timeout, **options)
        self._ws.settimeout(None)
        self._inbox: queue.Queue[str] = queue.Queue()
        self._received: list[str] = []
        self.received_at: list[float] = []  # time.perf_counter() of each message's arrival
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # notified on every message
        self._closed = threading.Event()
        self._closing = False
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._reader = threading.Thread(target=self._read, name=f"client-{self.name}",
                                        daemon=True)
        self._reader.start()

    @property
    def subprotocol(self) -> str | None:
        """The `Sec-WebSocket-Protocol` the server chose from `subprotocols=[...]`, if any."""
        return self._ws.getsubprotocol()

    def __repr__(self) -> str:
        state = f"closed {self.close_code}" if self.closed else "open"
        return f"<Client {self.name}: {state}>"

    # Sending --------------------------------------------------------------------------

    def send(self, text: str) -> None:
        """Send one text message."""
        self._ws.send(text)

    def send_json(self, obj: Any) -> None:
        """Send `obj` as JSON text, e.g. `{"action": "sendmessage", "data": "hi"}`."""
        self._ws.send(json.dumps(obj))

    def send_binary(self, data: bytes) -> None:
        self._ws.send_binary(data)

    # Receiving ------------------------------------------------------------------------

    def recv(self, timeout: float = 5.0) -> str:
        """The next message not yet taken with `recv`; waits up to `timeout` seconds."""
        try:
            return self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(
                f"{self.name} received no message within {timeout} s"
                + (f" (the connection closed with {self.close_code})" if self.closed else "")
            ) from None

    def recv_json(self, timeout: float = 5.0) -> Any:
        return json.loads(self.recv(timeout))

    def try_recv(self, timeout: float = 0.3) -> str | None:
        """The next message, or None if nothing arrives within `timeout` (nothing expected)."""
        try:
            return self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def messages(self) -> list[str]:
        """Every message received so far, in order (taken with `recv` or not)."""
        with self._lock:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[str]:
        """Wait until `count` messages have arrived in all; returns them."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._received) >= count, timeout):
                raise TimeoutError(f"{self.name} has {len(self._received)} of {count} messages")
            return list(self._received)

    # Closing --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from the client's side (the gateway then runs `$disconnect`)."""
        if not self.closed and not self._closing:
            self._closing = True
            with contextlib.suppress(Exception):  # the socket may already be gone
                self._ws.send_close(code, reason.encode())
        self._closed.wait(2)
        self._ws.shutdown()

    def wait_closed(self, timeout: float = 5.0) -> tuple[int | None, str | None]:
        """Wait until the gateway closes the connection; returns (code, reason)."""
        if not self._closed.wait(timeout):
            raise TimeoutError(f"{self.name} is still open after {timeout} s")
        return self.close_code, self.close_reason

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Reader thread --------------------------------------------------------------------

    def _read(self) -> None:
        abnf = websocket.ABNF
        parts: list[bytes] = []
        try:
            while True:
                frame = self._ws.recv_frame()
                opcode, data = frame.opcode, frame.data
                if opcode in (abnf.OPCODE_TEXT, abnf.OPCODE_BINARY, abnf.OPCODE_CONT):
                    parts.append(data if isinstance(data, bytes) else data.encode())
                    if frame.fin:
                        self._deliver(b"".join(parts).decode("utf-8", "replace"))
                        parts = []
                elif opcode == abnf.OPCODE_PING:
                    self._ws.pong(data)
                elif opcode == abnf.OPCODE_CLOSE:
                    if len(data) >= 2:
                        self.close_code = struct.unpack("!H", data[:2])[0]
                        self.close_reason = data[2:].decode("utf-8", "replace")
                    else:
                        self.close_code, self.close_reason = 1005, ""
                    if not self._closing:  # answer the gateway's close, as browsers do
                        self._closing = True
                        with contextlib.suppress(Exception):
                            self._ws.send_close(self.close_code if len(data) >= 2 else 1000)
                    return
        except Exception:  # the socket went away without a close frame
            if self.close_code is None:
                self.close_code, self.close_reason = 1006, ""
        finally:
            self._closed.set()

    def _deliver(self, text: str) -> None:
        with self._arrived:
            self.received_at.append(time.perf_counter())
            self._received.append(text)
            self._arrived.notify_all()
        self._inbox.put(text)


def connect(url: str, **options: Any) -> Client:
    """`Client(url, **options)`: open a connection, reading in the background."""
    return Client(url, **options)
