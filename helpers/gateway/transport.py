"""Bytes in, bytes out: one TCP connection to the local gateway.

h11 reads plain HTTP requests (the `@connections` API over HTTP, and the 426 for a GET
without Upgrade); websockets' `ServerProtocol` does the WebSocket framing (RFC 6455), its
per-frame limit giving API Gateway's separate 32 KB frame and 128 KB message limits
(docs/aws-behaviour.md §5). This module decides nothing about API Gateway: it hands what it
read to its `Owner` (the server) and writes what the owner asks for.

Writes come from the event loop and from worker threads (answers, pushes). On a worker the
bytes go straight to the socket when nothing is queued before them, saving a trip through the
loop: that is most of the gateway's throughput. One lock per connection keeps the protocol
state and the writes in order.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import os
import threading
from typing import Any, Protocol

import h11
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from helpers.gateway import defaults
from helpers.gateway import protocol_rules as rules

_quiet = logging.getLogger("helpers.gateway.transport")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False  # websockets logs "connection open" etc.; never into a notebook cell

Answer = tuple[int, dict[str, str], bytes]


class Owner(Protocol):
    """What the transport reports to (the server), always with the connection's lock held
    for WebSocket events."""

    def http_request(self, method: str, target: str, body: bytes,
                     headers: list[tuple[str, str]], source_ip: str) -> Answer: ...
    def upgrade_requested(self, tcp: Transport, request: Request) -> None: ...
    def text_received(self, tcp: Transport, data: bytes) -> None: ...
    def binary_received(self, tcp: Transport) -> None: ...
    def close_received(self, tcp: Transport, code: int | None, reason: str) -> None: ...
    def failed(self, tcp: Transport, code: int, reason: str) -> None: ...
    def lost(self, tcp: Transport) -> None: ...


class _Framing(ServerProtocol):
    """websockets' server protocol with API Gateway's wording for 1009 closes, and a
    cheaper way to send a whole message."""

    def fail(self, code: int, reason: str = "") -> None:
        if code == rules.MESSAGE_TOO_BIG.code:
            reason = rules.MESSAGE_TOO_BIG.reason
        super().fail(code, reason)

    def send_message(self, payload: bytes, *, binary: bool) -> None:
        """One message, in frames of at most 32 KB (the limit applies both ways, §5).

        The bytes `send_text`/`send_binary`/`send_continuation` would queue: server frames
        are unmasked and the gateway negotiates no extension, so a frame is its RFC 6455
        header and the payload. Building the header here skips a Frame object, its checks
        and a BytesIO per frame, on the path every answer and push takes.
        """
        if self.extensions or self.expect_continuation_frame:  # never, but stay correct
            self._send_frames(payload, binary=binary)
            return
        step, size = defaults.MAX_FRAME_BYTES, len(payload)
        opcode = _BINARY if binary else _TEXT
        starts = range(0, size, step) if size > step else (0,)  # (0,): an empty message too
        for start in starts:
            chunk = payload[start:start + step] if size > step else payload
            head = (0x80 if start + step >= size else 0) | opcode
            length = len(chunk)
            if length < 126:
                header = bytes((head, length))
            elif length < 65536:
                header = bytes((head, 126)) + length.to_bytes(2, "big")
            else:
                header = bytes((head, 127)) + length.to_bytes(8, "big")
            self.writes.append(header + chunk)
            opcode = _CONTINUATION

    def _send_frames(self, payload: bytes, *, binary: bool) -> None:
        """websockets' own way, frame by frame."""
        step = defaults.MAX_FRAME_BYTES
        (self.send_binary if binary else self.send_text)(payload[:step],
                                                         fin=len(payload) <= step)
        for start in range(step, len(payload), step):
            self.send_continuation(payload[start:start + step],
                                   fin=start + step >= len(payload))


# Read per frame, so module globals: in Python 3.11 reading a member off its Enum class costs
# ten global reads (EnumType.__getattr__); websockets keeps such aliases too.
_TEXT, _BINARY, _CONTINUATION = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
_OPEN, _CLOSED = State.OPEN, State.CLOSED


class Transport(asyncio.Protocol):
    """One TCP connection: HTTP (h11) until it upgrades, then WebSocket (websockets)."""

    def __init__(self, owner: Owner, loop: asyncio.AbstractEventLoop, loop_thread: int):
        self.owner, self.loop, self.loop_thread = owner, loop, loop_thread
        self.transport: asyncio.Transport | None = None
        self.http: h11.Connection | None = h11.Connection(h11.SERVER)
        self.raw: bytearray | None = bytearray()  # the first request's bytes, for an upgrade
        self.target, self.method = "", ""
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.ws: _Framing | None = None
        self.response: Response | None = None  # the 101 to send once $connect says yes
        self.session: Any = None  # the owner's state for this connection
        self.fragments: list[bytes] | None = None
        self.close_reported = False
        self.eof_written = False
        self.grace_scheduled = False
        self.lost = False
        self.lock = threading.RLock()
        self.deferred = 0  # writes handed to the loop and not yet done: later ones queue up
        self.fd: int | None = None  # for direct writes from worker threads (POSIX only)

    @property
    def peer_ip(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return peer[0] if peer else "127.0.0.1"

    # asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if os.name == "posix" and sock is not None:
            self.fd = sock.fileno()

    def data_received(self, data: bytes) -> None:
        if self.ws is not None:
            with self.lock:
                self.ws.receive_data(data)
                self._ws_events()
            return
        if self.raw is not None:
            self.raw += data
        self.http.receive_data(data)
        self._http_events()

    def eof_received(self) -> bool:
        if self.ws is not None:
            with self.lock:
                self.ws.receive_eof()
                self._ws_events()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        with self.lock:
            self.owner.lost(self)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # HTTP -------------------------------------------------------------------------------

    def _http_events(self) -> None:
        while True:
            try:
                event = self.http.next_event()
            except h11.RemoteProtocolError:
                self._respond(400, {"Content-Type": "text/plain"}, b"Bad request\n", close=True)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self.method, self.target = event.method.decode(), event.target.decode("latin-1")
                self.headers = [(name.decode("latin-1"), value.decode("latin-1"))
                                for name, value in event.headers]
                self.body = bytearray()
                if any(name == b"upgrade" and value.lower() == b"websocket"
                       for name, value in event.headers):
                    self._upgrade()
                    return
            elif isinstance(event, h11.Data):
                self.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.raw = None  # keep-alive requests after the first are never upgrades
                self._respond(*self.owner.http_request(self.method, self.target,
                                                       bytes(self.body), self.headers,
                                                       self.peer_ip))
                if self.http.our_state is h11.MUST_CLOSE:
                    self.close()
                    return
                try:
                    self.http.start_next_cycle()
                except h11.LocalProtocolError:
                    self.close()
                    return
            elif isinstance(event, h11.ConnectionClosed):
                self.close()
                return

    def _respond(self, status: int, headers: dict[str, str], body: bytes, close=False) -> None:
        pairs = [*headers.items(), ("Content-Length", str(len(body)))]
        if close:
            pairs.append(("Connection", "close"))
        try:
            out = self.http.send(h11.Response(status_code=status, headers=pairs,
                                              reason=_phrase(status, "").encode()))
            out += self.http.send(h11.Data(data=body)) if body else b""
            out += self.http.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            self.close()
            return
        self.transport.write(out)
        if close:
            self.close()

    def _upgrade(self) -> None:
        if self.raw is None:  # an upgrade on a reused keep-alive connection: not supported
            self._respond(400, {"Content-Type": "text/plain"}, b"Upgrade must come first\n", True)
            return
        self.ws = _Framing(max_size=(defaults.MAX_MESSAGE_BYTES, defaults.MAX_FRAME_BYTES),
                           logger=_quiet)
        raw, self.raw, self.http = bytes(self.raw), None, None  # h11 is done: free it
        with self.lock:
            self.ws.receive_data(raw)
            self._ws_events()

    # WebSocket --------------------------------------------------------------------------

    def _ws_events(self) -> None:
        """Lock held: hand every frame, then the close, to the owner, in arrival order."""
        ws, owner = self.ws, self.owner
        for event in ws.events_received():
            if isinstance(event, Request):
                response = ws.accept(event)
                if response.status_code != 101:  # not a valid WebSocket handshake
                    ws.send_response(response)
                else:
                    self.response = response
                    owner.upgrade_requested(self, event)
            else:
                self._frame(event)
        if not self.close_reported and (ws.close_rcvd or ws.close_sent):
            self.close_reported = True
            if ws.close_rcvd is not None and (ws.close_sent is None or ws.close_rcvd_then_sent):
                owner.close_received(self, ws.close_rcvd.code, ws.close_rcvd.reason)
            else:  # the framing layer failed the connection (too big, protocol error)
                owner.failed(self, ws.close_sent.code, ws.close_sent.reason)
        self.flush()
        if ws.state is _CLOSED:  # both sides are done, or the peer vanished
            owner.lost(self)  # a no-op after a close handshake
            self.close()

    def _frame(self, frame: Frame) -> None:
        """Assemble fragmented text messages; report binary data as such."""
        opcode = frame.opcode
        if opcode is _BINARY or (opcode is _CONTINUATION and self.fragments is None):
            self.owner.binary_received(self)
        elif opcode is _TEXT:
            if frame.fin:
                self.owner.text_received(self, frame.data)
            else:
                self.fragments = [frame.data]
        elif opcode is _CONTINUATION:
            self.fragments.append(frame.data)
            if frame.fin:
                data, self.fragments = b"".join(self.fragments), None
                self.owner.text_received(self, data)

    # Writing (lock held by the caller) ---------------------------------------------------

    def accept(self, headers: dict[str, str]) -> None:
        """Send the 101, with the `$connect` handler's extra headers."""
        response = self.response
        for name, value in headers.items():
            response.headers[name] = value
        self.ws.send_response(response)
        self.flush()

    def reject(self, status: int, message: str) -> None:
        body = json.dumps({"message": message}).encode()
        headers = Headers([("Content-Type", "application/json"),
                           ("Content-Length", str(len(body))), ("Connection", "close")])
        self.ws.send_response(Response(status, _phrase(status, "Error"), headers, body))
        self.flush()

    def send(self, data: str | bytes, *, binary: bool) -> None:
        """One message, in frames of at most 32 KB (the limit applies both ways, §5)."""
        ws = self.ws
        if ws is None or ws.state is not _OPEN:
            return
        ws.send_message(data.encode() if isinstance(data, str) else data, binary=binary)
        self.flush()

    def send_close(self, code: int, reason: str) -> None:
        if self.ws is not None and self.ws.state is State.OPEN:
            self.ws.send_close(code, reason)
            self.flush()

    def flush(self) -> None:
        """Write what the WebSocket protocol has to send; half-close on its EOF. Any thread,
        lock held (every caller holds it already: taking it again costs on every message).

        On a worker thread the bytes go straight to the socket when nothing is queued before
        them; otherwise they queue behind earlier writes on the loop, so frames never
        interleave or reorder. After we close (1009, 1003, idle, ...) we only shut our
        writing side and keep reading, so the client gets our close frame and code instead
        of a TCP reset.
        """
        if self.ws is None or self.transport is None or self.transport.is_closing():
            return
        chunks = self.ws.data_to_send()
        if not chunks:
            return
        on_loop = threading.get_ident() == self.loop_thread
        if not on_loop and self.deferred == 0 and all(chunks) and self.fd is not None \
                and self.transport.get_write_buffer_size() == 0:
            data = b"".join(chunks)
            try:
                sent = os.write(self.fd, data)
            except BlockingIOError:
                sent = 0
            except OSError:  # the peer is gone: the loop will see it and clean up
                return
            if sent == len(data):
                return
            chunks = [data[sent:]]
        for chunk in chunks:
            if on_loop and self.deferred == 0:
                self._write(chunk)
            else:
                self.deferred += 1
                self.loop.call_soon_threadsafe(self._write_deferred, chunk)

    def _write_deferred(self, chunk: bytes) -> None:
        with self.lock:
            self.deferred -= 1
            self._write(chunk)

    def _write(self, chunk: bytes) -> None:
        """On the loop, lock held: write a chunk, or half-close for the protocol's EOF."""
        if self.transport is None or self.transport.is_closing():
            return
        if chunk:
            self.transport.write(chunk)
        elif not self.eof_written:
            self.eof_written = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
        if (self.eof_written or self.ws.close_expected()) and not self.grace_scheduled:
            self.grace_scheduled = True  # one deadline for the peer to finish closing
            self.loop.call_later(defaults.CLOSE_GRACE, self.close)


def _phrase(status: int, default: str) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return default
