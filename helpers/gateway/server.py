"""The local API Gateway's I/O: one port, WebSocket at `/{stage}`, `@connections` beside it.

A thin layer over sans-I/O protocols: h11 reads plain HTTP requests (the `@connections` API,
and the 426 for a GET without Upgrade); websockets' `ServerProtocol` does the WebSocket
framing, with its per-frame limit giving API Gateway's separate 32 KB frame and 128 KB
message limits. Every decision (route selection, event shapes, error frames, close codes)
comes from the pure modules beside this one.

Threads: the event loop reads frames, runs handshakes and timers; each message is then
routed, invoked and answered on a worker thread (`lambda_runtime.WorkerPool`), which writes
the answer straight to the socket when nothing is queued before it. So a slow handler never
stalls other connections, and the common path crosses threads once, not twice. One lock per
connection keeps the WebSocket protocol state and the writes in order.

The server runs on its own event loop in a daemon thread (never the Jupyter kernel's loop,
which a synchronous websocket-client call would block) and prints nothing: everything it
does goes to `gateway.log`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import http
import itertools
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

import h11
from websockets.datastructures import Headers
from websockets.frames import Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from helpers.display import Redactor
from helpers.gateway import connections_api, ids, registry
from helpers.gateway import protocol_rules as rules
from helpers.gateway.clock import Clock, RealClock, TimerHandle, VirtualClock
from helpers.gateway.config import ApiConfig, Authorizer, Function, Route
from helpers.gateway.display import event_table, sequence_diagram
from helpers.gateway.eventlog import EventLog
from helpers.gateway.events import (
    ConnectionContext,
    authorizer_event,
    connect_event,
    disconnect_event,
    message_event,
)
from helpers.gateway.lambda_runtime import Invocation, WorkerPool
from helpers.gateway.routing import select_route

_quiet = logging.getLogger("helpers.gateway.server")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False  # websockets logs "connection open" etc.; never into a notebook cell

#: How long (real seconds) a closing socket may take to answer our close before we drop it.
CLOSE_GRACE = 5.0

#: How often (real seconds) the loop looks for message integrations past their timeout.
WATCHDOG_INTERVAL = 0.02

#: Vanished TCP peer (no close frame): RFC 6455 reserves 1006 for exactly this and AWS
#: documents nothing, so `$disconnect` reports 1006 with an empty reason.
VANISHED = rules.Close(1006, "")


class _Protocol(ServerProtocol):
    """websockets' server protocol with API Gateway's wording for 1009 closes."""

    def fail(self, code: int, reason: str = "") -> None:
        if code == rules.MESSAGE_TOO_BIG.code:
            reason = rules.MESSAGE_TOO_BIG.reason
        super().fail(code, reason)


@dataclass(eq=False)
class _Connection:
    """One WebSocket connection's state, owned by the event loop thread."""

    tcp: _Tcp
    context: ConnectionContext
    inbox: deque[str] = field(default_factory=deque)  # messages waiting for their turn
    busy: bool = False  # a worker is handling this connection's messages
    generation: int = 0  # bumped when a timed-out worker is replaced; the old one then stops
    last_active: float = 0.0
    open: bool = False  # postable: $connect returned 2xx and the 101 went out
    closing: bool = False  # $disconnect has been scheduled (exactly once)
    close: rules.Close | None = None
    timers: list[TimerHandle] = field(default_factory=list)
    disconnected: asyncio.Future[None] | None = None
    fragments: list[bytes] | None = None

    @property
    def id(self) -> str:
        return self.context.connection_id


class _Tcp(asyncio.Protocol):
    """One TCP connection: HTTP (h11) until it upgrades, then WebSocket (websockets)."""

    def __init__(self, gateway: LocalGateway):
        self.gateway = gateway
        self.transport: asyncio.Transport | None = None
        self.http = h11.Connection(h11.SERVER)
        self.raw: bytearray | None = bytearray()  # the first request's bytes, for an upgrade
        self.request: h11.Request | None = None
        self.body = bytearray()
        self.ws: _Protocol | None = None
        self.conn: _Connection | None = None
        self.eof_written = False
        self.grace_scheduled = False
        self.lost = False
        # The WebSocket protocol object and the socket are shared by the event loop and the
        # worker threads that answer messages and pushes: this lock serialises them.
        self.lock = threading.RLock()
        self.deferred = 0  # writes handed to the loop and not yet done: later ones queue up
        self.fd: int | None = None  # for direct writes from worker threads (POSIX only)

    # asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.gateway._tcps.add(self)
        sock = transport.get_extra_info("socket")
        if os.name == "posix" and sock is not None:
            self.fd = sock.fileno()

    def data_received(self, data: bytes) -> None:
        if self.ws is not None:
            with self.lock:
                self.ws.receive_data(data)
                self.gateway._ws_events(self)
            return
        if self.raw is not None:
            self.raw += data
        self.http.receive_data(data)
        self._http_events()

    def eof_received(self) -> bool:
        if self.ws is not None:
            with self.lock:
                self.ws.receive_eof()
                self.gateway._ws_events(self)
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.gateway._tcps.discard(self)
        if self.conn is not None:
            self.gateway._begin_disconnect(self.conn, VANISHED)

    # HTTP ---------------------------------------------------------------------------

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
                self.request, self.body = event, bytearray()
                if _is_upgrade(event):
                    self._upgrade()
                    return
            elif isinstance(event, h11.Data):
                self.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.raw = None  # keep-alive requests after the first are never upgrades
                status, headers, body = self.gateway._http(self.request, bytes(self.body))
                self._respond(status, headers, body)
                if self.http.our_state is h11.MUST_CLOSE:
                    self._close_transport()
                    return
                try:
                    self.http.start_next_cycle()
                except h11.LocalProtocolError:
                    self._close_transport()
                    return
            elif isinstance(event, h11.ConnectionClosed):
                self._close_transport()
                return

    def _respond(self, status: int, headers: dict[str, str], body: bytes, close=False) -> None:
        pairs = [(k, v) for k, v in headers.items()] + [("Content-Length", str(len(body)))]
        if close:
            pairs.append(("Connection", "close"))
        try:
            try:
                reason = http.HTTPStatus(status).phrase.encode()
            except ValueError:
                reason = b""
            out = self.http.send(h11.Response(status_code=status, headers=pairs, reason=reason))
            out += self.http.send(h11.Data(data=body)) if body else b""
            out += self.http.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            self._close_transport()
            return
        self.transport.write(out)
        if close:
            self._close_transport()

    def _upgrade(self) -> None:
        if self.raw is None:  # an upgrade on a reused keep-alive connection: not supported
            self._respond(400, {"Content-Type": "text/plain"}, b"Upgrade must come first\n", True)
            return
        self.ws = _Protocol(
            max_size=(rules.MAX_MESSAGE_BYTES, rules.MAX_FRAME_BYTES), logger=_quiet
        )
        raw, self.raw, self.http = bytes(self.raw), None, None  # h11 is done: free it
        self.ws.receive_data(raw)
        self.gateway._ws_events(self)

    # Output -------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what the WebSocket protocol has to send; half-close on its EOF. Any thread.

        On a worker thread (answers, pushes) the bytes go straight to the socket when nothing
        is queued before them, saving a trip through the event loop; otherwise they queue
        behind earlier writes on the loop, so frames never interleave or reorder.
        After we close (1009, 1003, idle, ...) we only shut our writing side and keep
        reading, so the client gets our close frame and code instead of a TCP reset.
        """
        with self.lock:
            if self.ws is None or self.transport is None or self.transport.is_closing():
                return
            chunks = self.ws.data_to_send()
            if not chunks:
                return
            on_loop = threading.get_ident() == self.gateway._loop_thread
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
                    self.gateway._loop.call_soon_threadsafe(self._write_deferred, chunk)

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
            self.gateway._loop.call_later(CLOSE_GRACE, self._close_transport)

    def _close_transport(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _is_upgrade(request: h11.Request) -> bool:
    for name, value in request.headers:
        if name == b"upgrade" and value.lower() == b"websocket":
            return True
    return False


@dataclass
class _Outcome:
    """How one integration call ended, as the gateway saw it."""

    invocation: Invocation | None
    status: str  # ok | error | config-error | integration-timeout | function-timeout


@dataclass(eq=False)
class _InFlight:
    """A message's integration call running on a worker thread, watched for its timeout."""

    conn: _Connection
    route: Route
    request_id: str
    deadline: float  # time.monotonic()
    limit: float
    settled: bool = False  # answered, or timed out: guarded by the connection's lock


_running: dict[int, LocalGateway] = {}  # every started gateway, for re-run cells and atexit
_names = itertools.count(1)


class LocalGateway:
    """A running API Gateway WebSocket API stage on 127.0.0.1, faithful to AWS's behaviour.

    Build one with `from_api` (an API created with boto3 under moto's `mock_aws`) or
    `from_handlers` (plain Python functions), then `start()` it, or use it as a context
    manager. `url` is the socket URL; `log` records everything that happens.
    """

    def __init__(
        self,
        config: Callable[[], ApiConfig],
        *,
        revision: Callable[[], str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        idle_timeout: float = rules.IDLE_TIMEOUT,
        max_lifetime: float = rules.MAX_LIFETIME,
        clock: Clock | None = None,
        max_connections_per_second: float | None = None,
        log_size: int = 20_000,
        redactor: Redactor | None = None,
    ):
        self._config_source = config
        self._revision_source = revision or (lambda: "static")
        self._configured: tuple[str, ApiConfig] | None = None  # (revision, config)
        self._loop_thread: int | None = None
        self._inflight: set[_InFlight] = set()  # message integrations running on workers
        self._inflight_lock = threading.Lock()
        self.host, self._requested_port, self.port = host, port, 0
        self.idle_timeout, self.max_lifetime = idle_timeout, max_lifetime
        self.clock: Clock = clock or RealClock()
        self.max_connections_per_second = max_connections_per_second
        self._rate_window: list[float] = []
        self.log = EventLog(log_size)
        self.redactor = redactor or Redactor()
        self.internal_errors: list[BaseException] = []  # gateway bugs; tests assert it stays empty
        self._origin = self.clock.time()
        self._open: dict[str, _Connection] = {}
        self._tcps: set[_Tcp] = set()
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._pool: WorkerPool | None = None
        self._name = f"gateway-{next(_names)}"

    # Construction -------------------------------------------------------------------

    @classmethod
    def from_api(
        cls,
        api_id: str,
        stage: str,
        *,
        region: str | None = None,
        account_id: str | None = None,
        **options: Any,
    ) -> LocalGateway:
        """Serve an API created through boto3 (`apigatewayv2`, `lambda`) in moto's `mock_aws`.

        Only deployed state is live; a later `create_deployment` (or any change on an
        `AutoDeploy` stage) is picked up by the running gateway without a restart.
        """
        from helpers.gateway import moto_source

        where = {"region": region, "account_id": account_id}
        moto_source.api_config(api_id, stage, **where)  # fail now, with a clear message
        return cls(
            lambda: moto_source.api_config(api_id, stage, **where),
            revision=lambda: moto_source.revision(api_id, stage, **where),
            **options,
        )

    @classmethod
    def from_handlers(
        cls,
        handlers: Mapping[str, Callable[[dict, Any], Any]],
        *,
        route_selection_expression: str = "$request.body.action",
        two_way: Iterable[str] = (),
        stage: str = "dev",
        api_id: str | None = None,
        integration_timeout: float = 29.0,
        function_timeout: float = 3.0,
        authorizer: Callable[[dict, Any], Any] | None = None,
        identity_sources: Iterable[str] = (),
        **options: Any,
    ) -> LocalGateway:
        """Serve plain Python handlers, one per route key, without boto3 ceremony.

        `handlers` maps route keys (`$connect`, `$disconnect`, `$default`, custom keys) to
        Lambda-style functions `handler(event, context)`; `two_way` lists the route keys
        whose return `body` goes back to the client (a `$default` route response on AWS).
        """
        from helpers.gateway.lambda_runtime import LambdaFunction

        def function(fn: Callable) -> LambdaFunction:
            return LambdaFunction.from_callable(fn, timeout=function_timeout)

        answer = set(two_way)
        auth = None
        if authorizer is not None:
            auth = Authorizer(function(authorizer), tuple(identity_sources))
        routes = {
            key: Route(
                key,
                function(fn),
                timeout=integration_timeout,
                two_way=key in answer,
                authorizer=auth if key == "$connect" else None,
            )
            for key, fn in handlers.items()
        }
        unknown = answer - set(routes)
        if unknown:
            raise ValueError(f"two_way names routes without a handler: {sorted(unknown)}")
        if api_id is None:  # stable per handler set, so re-running a cell replaces its gateway
            names = sorted(f"{key}={getattr(fn, '__qualname__', fn)}"
                           for key, fn in handlers.items())
            api_id = ids.stable_api_id(f"{stage}|{route_selection_expression}|{names}")
        config = ApiConfig(
            api_id=api_id,
            stage=stage,
            route_selection_expression=route_selection_expression,
            routes=routes,
        )
        return cls(lambda: config, **options)

    # Public surface -----------------------------------------------------------------

    @property
    def config(self) -> ApiConfig:
        """The deployed configuration now in force."""
        rev = self._revision_source()
        known = self._configured  # (revision, config): one read, so threads never mix them
        if known is None or known[0] != rev:
            known = self._configured = (rev, self._config_source())
        return known[1]

    @property
    def _last_config(self) -> ApiConfig | None:
        """The configuration last read, without asking moto again (start, stop)."""
        return self._configured[1] if self._configured else None

    @property
    def url(self) -> str:
        """The socket URL: `ws://127.0.0.1:<port>/<stage>` (AWS: `wss://{domain}/{stage}`)."""
        return f"ws://{self.host}:{self.port}/{self.config.stage}"

    @property
    def http_url(self) -> str:
        """The local `@connections` base URL, for an `endpoint_url` over real HTTP."""
        return f"http://{self.host}:{self.port}/{self.config.stage}"

    @property
    def callback_url(self) -> str:
        """The AWS-style `@connections` endpoint_url; answered in-process by this gateway."""
        return self.config.callback_url

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def connections(self) -> list[str]:
        """Ids of the connections open now (postable), oldest first."""
        return list(self._open)

    def start(self) -> LocalGateway:
        """Bind the port and serve in a daemon thread; stops an earlier gateway for the
        same API stage first (so re-running a notebook cell just works)."""
        if self.running:
            return self
        config = self.config
        for other in list(_running.values()):
            known = other._last_config
            if other is not self and known and (known.api_id, known.stage) == (
                config.api_id, config.stage
            ):
                other.stop()
        self._pool = WorkerPool(name=f"{self._name}-worker")
        self._loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"{self._name}-loop", daemon=True
        )
        self._thread.start()
        ready.result(10)
        _running[id(self)] = self
        registry.register(config.api_id, config.stage, self)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection (1001), run their `$disconnect`, free the port."""
        if self._loop is None or self._thread is None:
            return
        _running.pop(id(self), None)
        known = self._last_config
        if known is not None:
            registry.unregister(known.api_id, known.stage, self)
        loop, thread = self._loop, self._thread
        if thread.is_alive():
            with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(timeout=1.0)
        self._loop = self._thread = None

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"serving {self.url}" if self.running else "stopped"
        return f"<LocalGateway {state}>"

    def show_log(self, *kinds: str, logs: bool = False, title: str | None = None):
        """The event log as a table, ids redacted to stable labels; `logs=True` adds what
        each handler printed. Times appear on a virtual clock only (they are exact there)."""
        origin = self._origin if isinstance(self.clock, VirtualClock) else None
        entries = self.log.entries(*kinds) if kinds else [
            e for e in self.log if e.kind != "call"]  # "invoke" already says it all
        return event_table(entries, redactor=self.redactor, origin=origin, logs=logs,
                           title=title)

    def sequence_diagram(self, *, title: str | None = None):
        """The recorded flow as a Mermaid sequence diagram (rendered by JupyterLab)."""
        return sequence_diagram(self.log.entries(), redactor=self.redactor, title=title)

    def handle_management(self, method: str, connection_id: str, body: bytes):
        """Answer one `@connections` call, from any thread (see `registry`)."""
        if self._loop is None or not self.running:
            return connections_api.gone(connection_id)
        return self._management(method, connection_id, body)

    # Event loop thread --------------------------------------------------------------

    def _run(self, ready: concurrent.futures.Future) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(self._loop_error)  # asyncio would print to stderr
        try:
            self._server = loop.run_until_complete(
                loop.create_server(lambda: _Tcp(self), self.host, self._requested_port)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as error:
            ready.set_exception(error)
            loop.close()
            return
        self._loop_thread = threading.get_ident()
        loop.call_later(WATCHDOG_INTERVAL, self._watchdog)
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        error = context.get("exception")
        text = f"{type(error).__name__}: {error}" if error else context.get("message", "")
        self.log.record(self._now(), "internal", "", error=text)
        if error is not None and not isinstance(error, ConnectionError | OSError):
            self.internal_errors.append(error)

    async def _shutdown(self) -> None:
        self._server.close()
        waits = [self._close(conn, rules.GOING_AWAY) for conn in list(self._open.values())]
        if waits:
            await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=8)
        for tcp in list(self._tcps):
            if tcp.transport is not None:
                tcp.transport.abort()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 1)

    def _on_loop(self, action: Callable[[], object]) -> None:
        """Run `action` on the event loop: now if this is the loop's thread, else soon."""
        if threading.get_ident() == self._loop_thread:
            action()
        else:
            self._loop.call_soon_threadsafe(action)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        """Keep a bug in the gateway visible (in the log) without printing anything."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            self.log.record(self._now(), "internal", "", error=f"{type(error).__name__}: {error}")
            self.internal_errors.append(error)

    def _now(self) -> float:
        return self.clock.time()

    # Plain HTTP: @connections and the 426 -------------------------------------------

    def _http(self, request: h11.Request, body: bytes) -> tuple[int, dict[str, str], bytes]:
        path = request.target.decode("latin-1")
        method = request.method.decode()
        stage = self.config.stage
        connection_id = connections_api.parse_path(path, stage)
        if connection_id is not None:
            return self._management(method, connection_id, body)
        if path.split("?", 1)[0].rstrip("/") == f"/{stage}":
            return 426, {"Content-Type": "application/json"}, json.dumps(
                {"message": "Upgrade Required: this is a WebSocket endpoint; connect with a "
                 "WebSocket client (e.g. websocket-client or wscat)."}).encode()
        return connections_api.not_found(path, stage)

    def _management(self, method: str, connection_id: str, body: bytes):
        conn = self._open.get(connection_id)
        if method == "POST":
            if len(body) > rules.MAX_POST_BYTES:
                return connections_api.payload_too_large(len(body), rules.MAX_POST_BYTES)
            if conn is None:
                self.log.record(self._now(), "manage", connection_id, op="post", status=410)
                return connections_api.gone(connection_id)
            self._send(conn, body, kind="push")
            return connections_api.ok(200)
        if method == "GET":
            if conn is None:
                return connections_api.gone(connection_id)
            ctx = conn.context
            self.log.record(self._now(), "manage", connection_id, op="get", status=200)
            return connections_api.ok(200, {
                "connectedAt": ids.iso8601(ctx.connected_at),
                "identity": {"sourceIp": ctx.source_ip, "userAgent": ctx.user_agent},
                "lastActiveAt": ids.iso8601(conn.last_active),
            })
        if method == "DELETE":
            if conn is None:
                self.log.record(self._now(), "manage", connection_id, op="delete", status=410)
                return connections_api.gone(connection_id)
            self.log.record(self._now(), "manage", connection_id, op="delete", status=204)
            with conn.tcp.lock:  # gone for every later call at once, closed on the loop
                self._open.pop(connection_id, None)
                conn.open = False
            self._on_loop(lambda: self._spawn(self._close(conn, rules.CLOSED_BY_BACKEND)))
            return connections_api.ok(204)
        return connections_api.method_not_allowed(method)

    # WebSocket: handshake -----------------------------------------------------------

    def _ws_events(self, tcp: _Tcp) -> None:
        ws = tcp.ws
        for event in ws.events_received():
            if isinstance(event, Request):
                self._spawn(self._handshake(tcp, event))
            elif tcp.conn is not None and tcp.conn.open:
                self._frame(tcp.conn, event)
        conn = tcp.conn
        if conn is not None and not conn.closing and (ws.close_rcvd or ws.close_sent):
            if ws.close_rcvd is not None and (ws.close_sent is None or ws.close_rcvd_then_sent):
                close = rules.client_close(ws.close_rcvd.code, ws.close_rcvd.reason)
                self.log.record(self._now(), "close", conn.id, code=ws.close_rcvd.code,
                                reason=ws.close_rcvd.reason, by="client")
            else:
                close = rules.Close(ws.close_sent.code, ws.close_sent.reason)
                self.log.record(self._now(), "close", conn.id, code=close.code,
                                reason=close.reason, by="gateway")
            self._begin_disconnect(conn, close)
        tcp.flush()  # after recording: a client that saw our close finds it in the log
        if ws.state is State.CLOSED:  # both sides are done (or the peer vanished)
            if conn is not None:
                self._begin_disconnect(conn, VANISHED)  # no-op after a close handshake
            tcp._close_transport()

    def _reject(self, tcp: _Tcp, status: int, message: str, problem: str | None = None) -> None:
        body = json.dumps({"message": message}).encode()
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        headers = Headers([
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ])
        tcp.ws.send_response(Response(status, phrase, headers, body))
        tcp.flush()
        self.log.record(self._now(), "reject", "", status=status, message=message,
                        problem=problem)

    def _rate_limited(self) -> bool:
        limit = self.max_connections_per_second
        if not limit:
            return False
        now = time.monotonic()
        self._rate_window = [t for t in self._rate_window if now - t < 1.0]
        if len(self._rate_window) >= limit:
            return True
        self._rate_window.append(now)
        return False

    async def _handshake(self, tcp: _Tcp, request: Request) -> None:
        try:
            config = self.config
        except Exception as error:  # the stage or API vanished from moto
            self._reject(tcp, 500, "Internal server error", problem=str(error))
            return
        path, _, query_string = request.path.partition("?")
        if path.rstrip("/") != f"/{config.stage}":
            self._reject(tcp, 403, "Forbidden",
                         problem=f"no stage at {path}: connect to /{config.stage}")
            return
        if self._rate_limited():
            self._reject(tcp, 429, "Too Many Requests",
                         problem="more new connections per second than the gateway allows")
            return
        headers = list(request.headers.raw_items())
        query = parse_qsl(query_string, keep_blank_values=True)
        peer = tcp.transport.get_extra_info("peername") or ("127.0.0.1", 0)
        context = ConnectionContext(
            connection_id=ids.new_id(),
            connected_at=self._now(),
            source_ip=peer[0],
            user_agent=request.headers.get("User-Agent"),
            api_id=config.api_id,
            stage=config.stage,
            domain_name=config.domain_name,
        )
        route = config.routes.get("$connect")
        if route is not None and route.authorizer is not None:
            allowed = await self._authorize(tcp, route.authorizer, context, headers, query)
            if allowed is None:
                return
            context = replace(context, authorizer=allowed)
        response_headers: dict[str, str] = {}
        if route is not None and route.function is not None:
            request_id = ids.new_id()
            event = connect_event(context, headers=headers, query=query,
                                  request_id=request_id, now=self._now())
            outcome = await self._invoke(route, event, context.connection_id)
            if outcome.status != "ok":  # timeout 504; missing permission 500; Lambda error 502
                status = {"integration-timeout": 504, "config-error": 500}.get(outcome.status, 502)
                self._reject(tcp, status, "Internal server error",
                             problem=f"$connect {outcome.status}")
                return
            accepted, status, response_headers, problem = rules.connect_outcome(
                outcome.invocation.result
            )
            if not accepted:
                message = "Forbidden" if status == 403 else "Connection refused"
                self._reject(tcp, status, message, problem=problem)
                return
        if tcp.lost:
            return
        response = tcp.ws.accept(request)
        if response.status_code != 101:  # not a valid WebSocket handshake
            tcp.ws.send_response(response)
            tcp.flush()
            return
        for name, value in response_headers.items():
            response.headers[name] = value
        conn = _Connection(tcp=tcp, context=context, last_active=self._now())
        conn.disconnected = self._loop.create_future()
        tcp.conn = conn
        tcp.ws.send_response(response)
        conn.open = True
        self._open[conn.id] = conn
        self.log.record(self._now(), "connect", conn.id, status=101,
                        query=dict(query), authorizer=context.authorizer)
        self._timer(conn, self.idle_timeout, lambda: self._idle_check(conn))
        self._timer(conn, self.max_lifetime, lambda: self._close(conn, rules.LIFETIME_EXCEEDED))
        # Frames that arrived with or right after the handshake are now routable.
        with tcp.lock:
            self._ws_events(tcp)

    async def _authorize(self, tcp, authorizer: Authorizer, context, headers, query):
        if rules.identity_values(authorizer.identity_sources, headers, query) is None:
            self._reject(tcp, 401, "Unauthorized",
                         problem="an identity source is missing: the authorizer was not called")
            return None
        event = authorizer_event(context, headers=headers, query=query,
                                 request_id=ids.new_id(), now=self._now())
        route = Route("$connect (authorizer)", authorizer.function,
                      timeout=authorizer.function.timeout)
        outcome = await self._invoke(route, event, context.connection_id)
        error = None
        if outcome.status != "ok":
            error = outcome.invocation.error_message if outcome.invocation else outcome.status
        status, principal = rules.authorizer_outcome(
            outcome.invocation.result if outcome.invocation else None, error,
            method_arn=event["methodArn"],
        )
        if status is not None:
            message = {401: "Unauthorized", 403: "Forbidden"}.get(status, "Internal server error")
            self._reject(tcp, status, message, problem=f"authorizer answered {status}")
            return None
        return principal

    # WebSocket: messages ------------------------------------------------------------

    def _frame(self, conn: _Connection, frame) -> None:
        tcp = conn.tcp
        if frame.opcode is Opcode.BINARY or (
            frame.opcode is Opcode.CONT and conn.fragments is None
        ):
            tcp.ws.fail(*rules.BINARY_NOT_SUPPORTED)
            return
        if frame.opcode is Opcode.TEXT:
            if frame.fin:
                self._message(conn, frame.data)
            else:
                conn.fragments = [frame.data]
        elif frame.opcode is Opcode.CONT:
            conn.fragments.append(frame.data)
            if frame.fin:
                data, conn.fragments = b"".join(conn.fragments), None
                self._message(conn, data)

    def _message(self, conn: _Connection, data: bytes) -> None:
        """On the loop: queue a text message; a worker thread takes it from there."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            conn.tcp.ws.fail(1007, "Invalid UTF-8 in a text frame")
            return
        conn.last_active = self._now()
        with conn.tcp.lock:
            conn.inbox.append(text)
            if conn.busy:
                return
            conn.busy = True
            generation = conn.generation
        self._pool.submit(self._process, conn, generation)

    def _process(self, conn: _Connection, generation: int) -> None:
        """On a worker: handle the connection's messages one at a time, so answers keep
        their order; stop when the inbox is empty or a timeout handed it to a new worker."""
        while True:
            with conn.tcp.lock:
                if conn.generation != generation or not conn.open:
                    return
                if not conn.inbox:
                    conn.busy = False
                    return
                text = conn.inbox.popleft()
            try:
                if not self._handle(conn, text):
                    return  # this worker was timed out; its replacement carries on
            except Exception as error:  # a gateway bug: record it, keep serving
                self.log.record(self._now(), "internal", conn.id,
                                error=f"{type(error).__name__}: {error}")
                self.internal_errors.append(error)

    def _handle(self, conn: _Connection, text: str) -> bool:
        """On a worker: route one message (reference 2.3), invoke, answer (4.2, 4.4).

        Returns False when the integration timed out meanwhile (the watchdog answered).
        """
        config = self.config
        route_key = select_route(config.route_selection_expression, text, config.routes)
        request_id, now = ids.new_id(), self._now()
        route = config.routes.get(route_key) if route_key is not None else None
        function = route.function if route is not None else None
        # One entry for the message and the call it starts (`function`): the hot path logs
        # as little as it can.
        self.log.record(now, "message", conn.id, route=route_key, body=text,
                        request_id=request_id, function=function and function.name)
        if function is None:
            problem = rules.FORBIDDEN if route is None else rules.INTERNAL_SERVER_ERROR
            self._send_error(conn, problem, request_id)
            return True
        limit = min(route.timeout, function.timeout)
        call = _InFlight(conn, route, request_id, time.monotonic() + limit, limit)
        with self._inflight_lock:
            self._inflight.add(call)
        event = message_event(conn.context, route_key=route_key, body=text,
                              request_id=request_id, message_id=ids.new_id(), now=now)
        invocation = function.invoke(event, copy_event=False)  # fresh: no need to copy
        with conn.tcp.lock:
            if call.settled:  # too late: "Endpoint request timed out" went out already
                return False
            call.settled = True
        with self._inflight_lock:
            self._inflight.discard(call)
        status = self._status(invocation)
        self._record_invocation(conn.id, route, function, status, invocation)
        if status != "ok":
            self._send_error(conn, rules.INTERNAL_SERVER_ERROR, request_id)
            return True
        frame, _problem = rules.message_reply(invocation.result, route.two_way,
                                              connection_id=conn.id, request_id=request_id)
        if frame is not None:
            self._send(conn, frame, kind="reply")
        return True

    def _watchdog(self) -> None:
        """On the loop: answer message integrations past their timeout, and hand the rest of
        their connection's messages to a fresh worker (the stuck one cannot be stopped)."""
        now = time.monotonic()
        with self._inflight_lock:
            expired = [call for call in self._inflight if call.deadline <= now]
            self._inflight.difference_update(expired)
        for call in expired:
            conn = call.conn
            with conn.tcp.lock:
                if call.settled:
                    continue
                call.settled = True
                conn.generation += 1
                generation = conn.generation
            status = self._timeout_status(call.route)
            self._record_timeout(conn.id, call.route, call.route.function, status, call.limit)
            message = rules.ENDPOINT_TIMED_OUT if status == "integration-timeout" else (
                rules.INTERNAL_SERVER_ERROR)
            self._send_error(conn, message, call.request_id)
            if conn.open:
                self._pool.submit(self._process, conn, generation)
        self._loop.call_later(WATCHDOG_INTERVAL, self._watchdog)

    def _send_error(self, conn: _Connection, message: str, request_id: str) -> None:
        self._send(conn, rules.error_frame(message, conn.id, request_id), kind="error")

    def _send(self, conn: _Connection, data: str | bytes, *, kind: str) -> None:
        """Send one message, in frames of at most 32 KB (the limit applies both ways).

        Any thread: the loop, a worker answering a message, a handler pushing.
        """
        with conn.tcp.lock:
            if conn.open and conn.tcp.ws is not None:
                self._send_locked(conn, data, kind)

    def _send_locked(self, conn: _Connection, data: str | bytes, kind: str) -> None:
        ws = conn.tcp.ws
        # Stamp before writing: once the client has the frame, a cell may advance a virtual
        # clock, and activity must not be dated after that.
        conn.last_active = self._now()
        payload = data.encode() if isinstance(data, str) else data
        binary = False
        if isinstance(data, bytes):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                binary = True  # AWS documents no frame type for posts; non-UTF-8 goes binary
        step = rules.MAX_FRAME_BYTES
        first = payload[:step]
        (ws.send_binary if binary else ws.send_text)(first, fin=len(payload) <= step)
        for start in range(step, len(payload), step):
            ws.send_continuation(payload[start:start + step], fin=start + step >= len(payload))
        shown = payload.decode("utf-8", "replace") if not binary else f"<{len(payload)} bytes>"
        self.log.record(conn.last_active, "send", conn.id, via=kind, body=shown)  # then write:
        conn.tcp.flush()  # a cell that saw the frame must find it in the log

    # Integration calls --------------------------------------------------------------

    async def _invoke(self, route: Route, event: dict, connection_id: str) -> _Outcome:
        """Run the route's function on a worker thread and await it, on the loop: for
        `$connect`, `$disconnect` and authorizers (messages take `_handle`'s path).

        The shorter of the integration timeout and the function's own Timeout wins: the
        first gives "Endpoint request timed out", the second is a Lambda error. A thread
        cannot be killed, so a timed-out handler runs on and its late result is dropped.
        """
        function: Function = route.function
        loop = self._loop
        limit = min(route.timeout, function.timeout)
        done: asyncio.Future[_Outcome] = loop.create_future()
        settled = False

        def finish(invocation: Invocation) -> None:
            nonlocal settled
            if settled:  # too late: the timeout already answered
                return
            settled = True
            timer.cancel()
            status = self._status(invocation)
            self._record_invocation(connection_id, route, function, status, invocation)
            if not done.done():  # the awaiting task may have been cancelled (stop)
                done.set_result(_Outcome(invocation, status))

        def expire() -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            status = self._timeout_status(route)
            self._record_timeout(connection_id, route, function, status, limit)
            if not done.done():
                done.set_result(_Outcome(None, status))

        def run() -> None:
            self.log.record(self._now(), "call", connection_id, route=route.key,
                            function=function.name)
            invocation = function.invoke(event, copy_event=False)  # built fresh, never reused
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(finish, invocation)

        timer = loop.call_later(limit, expire)
        self._pool.submit(run)
        return await done

    @staticmethod
    def _status(invocation: Invocation) -> str:
        if invocation.error is None:
            return "ok"
        return "config-error" if invocation.error_type == rules.INVALID_PERMISSIONS else "error"

    @staticmethod
    def _timeout_status(route: Route) -> str:
        """The shorter timeout fired: the integration's ("Endpoint request timed out") or
        the function's own (a Lambda error)."""
        return "integration-timeout" if route.timeout <= route.function.timeout else (
            "function-timeout")

    def _record_invocation(self, connection_id: str, route: Route, function: Function,
                           status: str, invocation: Invocation) -> None:
        self.log.record(self._now(), "invoke", connection_id, route=route.key,
                        function=function.name, outcome=status,
                        duration_ms=invocation.duration_ms, logs=invocation.logs,
                        error=invocation.error, result=invocation.result)

    def _record_timeout(self, connection_id: str, route: Route, function: Function,
                        status: str, limit: float) -> None:
        what = (f"Endpoint request timed out after {limit * 1000:.0f} ms (the "
                "integration's TimeoutInMillis); the function runs on, its result dropped"
                if status == "integration-timeout" else
                f"Task timed out after {limit:.2f} seconds (the function's Timeout)")
        self.log.record(self._now(), "invoke", connection_id, route=route.key,
                        function=function.name, outcome=status, duration_ms=limit * 1000,
                        logs=[what], error=status)

    # Closing ------------------------------------------------------------------------

    def _timer(self, conn: _Connection, delay: float, action) -> None:
        """Run `await action()` after `delay` on the gateway's clock, recording any bug."""

        async def guarded() -> None:
            try:
                await action()
            except Exception as error:
                self.log.record(self._now(), "internal", conn.id,
                                error=f"{type(error).__name__}: {error}")
                self.internal_errors.append(error)

        conn.timers.append(self.clock.call_later(delay, guarded, self._loop))

    async def _idle_check(self, conn: _Connection) -> None:
        if conn.closing:
            return
        idle_for = self._now() - conn.last_active
        if idle_for + 1e-6 >= self.idle_timeout:
            await self._close(conn, rules.GOING_AWAY)
        else:
            self._timer(conn, self.idle_timeout - idle_for, lambda: self._idle_check(conn))

    async def _close(self, conn: _Connection, close: rules.Close) -> None:
        """Close from the gateway's side and wait until `$disconnect` has run."""
        ws = conn.tcp.ws
        with conn.tcp.lock:
            if not conn.closing and ws is not None and ws.state is State.OPEN:
                self.log.record(self._now(), "close", conn.id, code=close.code,
                                reason=close.reason, by="gateway")
                ws.send_close(close.code, close.reason)
                conn.tcp.flush()
                self._begin_disconnect(conn, close)
        if conn.disconnected is not None:
            await asyncio.shield(conn.disconnected)

    def _begin_disconnect(self, conn: _Connection, close: rules.Close) -> None:
        """Mark the connection gone (posts now get 410) and run `$disconnect` once."""
        if conn.closing:
            return
        conn.closing, conn.open, conn.close = True, False, close
        self._open.pop(conn.id, None)
        for timer in conn.timers:
            timer.cancel()
        with conn.tcp.lock:
            conn.inbox.clear()
        if conn.close is VANISHED:
            self.log.record(self._now(), "close", conn.id, code=1006, reason="", by="network")
        self._spawn(self._disconnect(conn, close))

    async def _disconnect(self, conn: _Connection, close: rules.Close) -> None:
        try:
            route = self.config.routes.get("$disconnect")
            if route is not None and route.function is not None:
                event = disconnect_event(conn.context, status_code=close.code,
                                         reason=close.reason, request_id=ids.new_id(),
                                         now=self._now())
                await self._invoke(route, event, conn.id)
        finally:
            if conn.disconnected is not None and not conn.disconnected.done():
                conn.disconnected.set_result(None)


@atexit.register
def stop_all() -> None:
    """Stop every running gateway (at exit, and when a notebook restarts moto)."""
    for gateway in list(_running.values()):
        with contextlib.suppress(Exception):
            gateway.stop(timeout=2)
