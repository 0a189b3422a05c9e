"""The local API Gateway: one port, WebSocket at `/{stage}`, `@connections` beside it.

The I/O shell around the pure parts: `transport` reads and writes bytes, each connection's
`connection.Connection` state machine decides what happens (handshake, routing, answers,
close, `$disconnect` once, deadlines), and `invoker` runs every integration call on a worker
thread with its deadlines on the event loop. This module carries out the machine's actions
and answers `@connections`.

The server runs on its own event loop in a daemon thread (never the Jupyter kernel's loop,
which a synchronous websocket-client call would block) and prints nothing: everything it
does goes to `gateway.log`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from websockets.http11 import Request

from helpers.display import Redactor
from helpers.gateway import callers, connections_api, defaults, ids, registry, sigv4
from helpers.gateway import protocol_rules as rules
from helpers.gateway.callers import Caller
from helpers.gateway.clock import Clock, RealClock, TimerHandle, VirtualClock
from helpers.gateway.config import ApiConfig, Authorizer, Route
from helpers.gateway.connection import (
    Accept,
    Action,
    Cancel,
    Close,
    Connection,
    Deadline,
    Ended,
    Finished,
    Gone,
    Handshake,
    Hold,
    Invoke,
    Record,
    Reject,
    Schedule,
    Send,
    State,
    is_text,
)
from helpers.gateway.display import event_table, sequence_diagram
from helpers.gateway.eventlog import EventLog
from helpers.gateway.invoker import FrozenInvocation, Invoker
from helpers.gateway.lambda_runtime import Reclaim, WorkerPool
from helpers.gateway.quota import ConnectQuota
from helpers.gateway.transport import Answer, Transport


@dataclass(eq=False)
class _Session:
    """One WebSocket connection: its state machine, its socket, its deadline timers."""

    tcp: Transport
    machine: Connection
    timers: dict[Deadline, TimerHandle] = field(default_factory=dict)
    finished: deque[Finished] = field(default_factory=deque)  # calls ended, not yet answered
    disconnected: concurrent.futures.Future[None] = field(
        default_factory=concurrent.futures.Future)  # set once $disconnect has finished
    finish: Callable[[Finished], None] | None = None  # the invoker's `done`, made once

    @functools.cached_property
    def id(self) -> str:  # fixed once the machine has started (read on every message)
        return self.machine.id


_running: dict[int, LocalGateway] = {}  # every started gateway, for re-run cells and atexit
_names = itertools.count(1)


class LocalGateway:
    """A running API Gateway WebSocket API stage on 127.0.0.1, faithful to AWS's behaviour.

    Build one with `from_api` (an API created with boto3 under moto's `mock_aws`) or
    `from_handlers` (plain Python functions), then `start()` it, or use it as a context
    manager. `url` is the socket URL; `log` records everything that happens.

    Options beyond AWS's fixed limits: `clock` (a `VirtualClock` moves time by hand),
    `environment_idle_lifetime` (seconds of the clock before an idle execution environment
    is reclaimed and the next call is a cold start: §4.3a),
    `max_connections_per_second` (the account's connect-rate quota, off by default: §5),
    `custom_domain` (the domain name events carry, as behind an API mapping: §1.6).
    `drop()` plays a network failure or a restarting proxy (docs/aws-behaviour.md §8).
    """

    def __init__(
        self,
        config: Callable[[], ApiConfig],
        *,
        revision: Callable[[], str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        idle_timeout: float = defaults.IDLE_TIMEOUT,
        max_lifetime: float = defaults.MAX_LIFETIME,
        environment_idle_lifetime: float = defaults.ENVIRONMENT_IDLE_LIFETIME,
        clock: Clock | None = None,
        max_connections_per_second: int | None = None,
        custom_domain: str | None = None,
        log_size: int = defaults.LOG_SIZE,
        redactor: Redactor | None = None,
    ):
        self._config_source = config
        self._revision_source = revision or (lambda: "static")
        self._configured: tuple[str, ApiConfig] | None = None  # (revision, config)
        self.host, self._requested_port, self.port = host, port, 0
        self.idle_timeout, self.max_lifetime = idle_timeout, max_lifetime
        self.environment_idle_lifetime = environment_idle_lifetime  # then Lambda reclaims it
        self.clock: Clock = clock or RealClock()
        self.max_connections_per_second = max_connections_per_second  # None: no quota
        self._quota: ConnectQuota | None = None
        self.custom_domain = custom_domain  # events carry it as domainName (§1.6)
        self.log = EventLog(log_size)
        self.redactor = redactor or Redactor()
        self.internal_errors: list[BaseException] = []  # gateway bugs; tests assert it stays empty
        self._origin = self.clock.time()
        self._open: dict[str, _Session] = {}
        self._tcps: set[Transport] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._pool: WorkerPool | None = None
        self._invoker: Invoker | None = None
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
        `AutoDeploy` stage) is picked up by the running gateway without a restart. While the
        course runs on a real AWS account (`serve_elsewhere`), the stage's stand-in instead.
        """
        from helpers.gateway import moto_source

        if _serve_elsewhere is not None:  # the course runs on a real account: nothing local
            return _serve_elsewhere(api_id, stage, **options)
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
        integration_timeout: float = defaults.INTEGRATION_TIMEOUT,
        function_timeout: float = defaults.FUNCTION_TIMEOUT,
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
            config = self._config_source()
            if self.custom_domain:
                config = replace(config, custom_domain=self.custom_domain)
            known = self._configured = (rev, config)
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
        if self.custom_domain:
            registry.register_domain(self.custom_domain, self)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection (1001), run their `$disconnect`, free the port."""
        if self._loop is None or self._thread is None:
            return
        _running.pop(id(self), None)
        known = self._last_config
        if known is not None:
            registry.unregister(known.api_id, known.stage, self)
        if self.custom_domain:
            registry.unregister_domain(self.custom_domain, self)
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

    def drop(self, *connection_ids: str, code: int | None = None, reason: str = "",
             timeout: float = 10.0) -> None:
        """Cut connections (every open one when none is named) as a failure on the way would.

        Without `code` the TCP connection just ends, with no close frame: the client sees
        1006 and so does `$disconnect` (docs/aws-behaviour.md §8). With `code` (e.g. 1011 or
        1012) a close frame comes first, as from a proxy or a restarting server. Returns
        once their `$disconnect` has run.
        """
        if self._loop is None:
            raise RuntimeError("the gateway is not running")
        wanted = set(connection_ids or self._open)

        async def cut() -> None:
            sessions = [s for cid, s in list(self._open.items()) if cid in wanted]
            for session in sessions:
                if code is None:
                    session.tcp.abort()
                else:
                    self._feed(session, Connection.close_by_gateway, rules.Close(code, reason))
            waits = [asyncio.wrap_future(s.disconnected) for s in sessions]
            if waits:
                await asyncio.wait(waits, timeout=timeout)

        asyncio.run_coroutine_threadsafe(cut(), self._loop).result(timeout + 1)

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

    def handle_management(self, method: str, connection_id: str, body: bytes, *,
                          url: str = "", headers: Mapping[str, Any] | None = None) -> Answer:
        """Answer one `@connections` call made in this process (see `registry`), from any
        thread but the gateway's own. `headers` (botocore's) carry the call's signature."""
        caller = callers.in_process(method, url, headers, body, self.clock.elapsed_since)
        return self._authorized(caller, method, connection_id, body, url,
                                callers.IN_PROCESS_SOURCE_IP)

    def _authorized(self, caller: Caller | Answer, method: str, connection_id: str,
                    body: bytes, url: str, source_ip: str) -> Answer:
        """The one decision both doors share (docs/aws-behaviour.md §6.3): the account owner
        may do anything; an invocation past its function timeout nothing (on AWS its sandbox
        is frozen: the call never happens; logged "after timeout", and a handler calling
        on its own thread stops there, `FrozenInvocation`); an invocation with an execution
        role what the role's policies allow."""
        if not isinstance(caller, Caller):  # no one: the signature is missing or wrong
            status, _, text = caller
            self.log.record(self._now(), "refused", connection_id, op=method.lower(),
                            status=status, reason=json.loads(text)["message"])
            return caller
        running = caller.invocation
        if running is not None:
            function = running.function
            if running.frozen:
                self.log.record(self._now(), "manage", connection_id, op=method.lower(),
                                status="refused: after timeout", function=function.name)
                if caller.on_its_thread:
                    raise FrozenInvocation(f"{method} @connections/{connection_id} after "
                                           "the function's timeout: its sandbox is frozen")
                return connections_api.frozen(connection_id)
            role = getattr(function, "role", None)
            if role:
                refused = self._role_refusal(role, function.name, method, connection_id, url,
                                             source_ip)
                if refused is not None:
                    return refused
        if self._loop is None or not self.running:
            return connections_api.gone(connection_id)
        return self._management(method, connection_id, body)

    def _role_refusal(self, role: str, function_name: str, method: str, connection_id: str,
                      url: str, source_ip: str) -> Answer | None:
        config = self.config
        resource = connections_api.resource_arn(config.region, config.account_id,
                                                config.api_id, config.stage, method,
                                                connection_id)
        problem = callers.role_refusal(role, resource, lambda: callers.request_context(
            role, config.region, self.clock.time(), url, source_ip=source_ip))
        if problem is None:
            return None
        self.log.record(self._now(), "refused", connection_id, op=method.lower(), status=403,
                        function=function_name, reason=problem)
        principal = connections_api.assumed_role_arn(role, function_name)
        return connections_api.access_denied(principal, resource, problem)

    # Event loop thread ------------------------------------------------------------------

    def _run(self, ready: concurrent.futures.Future) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(self._loop_error)  # asyncio would print to stderr
        self._loop_thread = threading.get_ident()
        self._invoker = Invoker(loop=loop, loop_thread=self._loop_thread, pool=self._pool,
                                log=self.log, now=self.clock.time, on_error=self._internal,
                                reclaim=Reclaim(self.clock.time, self.environment_idle_lifetime))
        try:
            self._server = loop.run_until_complete(
                loop.create_server(self._new_transport, self.host, self._requested_port)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as error:
            ready.set_exception(error)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def _new_transport(self) -> Transport:
        tcp = Transport(self, self._loop, self._loop_thread)
        self._tcps.add(tcp)
        return tcp

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        error = context.get("exception")
        if error is None or isinstance(error, ConnectionError | OSError):
            text = f"{type(error).__name__}: {error}" if error else context.get("message", "")
            self.log.record(self._now(), "internal", "", error=text)
        else:
            self._internal(error)

    def _internal(self, error: BaseException, connection_id: str = "") -> None:
        """A bug in the gateway: visible in the log and to tests, never printed."""
        self.log.record(self._now(), "internal", connection_id,
                        error=f"{type(error).__name__}: {error}")
        self.internal_errors.append(error)

    async def _shutdown(self) -> None:
        self._server.close()
        sessions = list(self._open.values())
        for session in sessions:
            self._feed(session, Connection.close_by_gateway, rules.GOING_AWAY)
        waits = [asyncio.wrap_future(s.disconnected) for s in sessions]
        if waits:
            await asyncio.wait(waits, timeout=8)
        for tcp in list(self._tcps):
            tcp.abort()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 1)

    def _now(self) -> float:
        return self.clock.time()

    # The machine's actions -------------------------------------------------------------

    def _feed(self, session: _Session, event: Callable[..., list[Action]], *args: Any) -> None:
        """Give the session's machine one event and carry out what it answers. Any thread."""
        with session.tcp.lock:
            try:
                session.machine.config = self.config  # routes as deployed right now
            except Exception as error:  # the API vanished from moto: keep what we had
                self.log.record(self._now(), "internal", session.id, error=str(error))
            now = self.clock.time()
            self._execute(session, event(session.machine, *args, now), now)

    def _finished(self, session: _Session, finished: Finished) -> None:
        """An integration call ended (on a worker, or on the loop for a deadline).

        Finished calls queue up, and whoever gets the connection's lock answers all that
        are queued, in the order they finished: so a burst of fast answers keeps its order
        even when the workers reach the lock in another.
        """
        session.finished.append(finished)
        with session.tcp.lock:
            self._answer_finished(session)

    def _answer_finished(self, session: _Session) -> None:
        """Lock held."""
        queue = session.finished
        while queue:
            finished = queue.popleft()
            now = self.clock.time()
            self._execute(session, session.machine.invocation_finished(finished, now), now)

    def _execute(self, session: _Session, actions: list[Action], now: float) -> None:
        """Lock held: do what the machine asked, in its order."""
        tcp = session.tcp
        for action in actions:
            kind = type(action)
            if kind is Record:
                # A refused handshake has no connection: its entry carries no id to label.
                cid = "" if action.kind == "reject" else session.id
                self.log.add(now, action.kind, cid, action.detail)
            elif kind is Send:
                data = action.data
                tcp.send(data, binary=isinstance(data, bytes) and not is_text(data))
            elif kind is Invoke:
                self._invoker.submit(action.call, session.id, session.finish)
            elif kind is Accept:
                self._open[session.id] = session
                tcp.accept(action.headers)
            elif kind is Reject:
                tcp.reject(action.status, action.message)
            elif kind is Close:
                tcp.send_close(action.code, action.reason)
            elif kind is Schedule:
                self._schedule(session, action.deadline, action.delay)
            elif kind is Cancel:
                timer = session.timers.pop(action.deadline, None)
                if timer is not None:
                    timer.cancel()
            elif kind is Hold:
                with contextlib.suppress(RuntimeError):  # the loop closed: the gateway stopped
                    self._loop.call_soon_threadsafe(self._loop.call_later, action.seconds,
                                                    self._feed, session, Connection.release_held)
            elif kind is Gone:
                self._open.pop(session.id, None)
            elif kind is Ended and not session.disconnected.done():
                session.disconnected.set_result(None)

    def _schedule(self, session: _Session, deadline: Deadline, delay: float) -> None:
        async def reached() -> None:
            try:
                self._feed(session, Connection.deadline_reached, deadline)
                if session.machine.state is State.CLOSED:  # a VirtualClock's advance waits
                    await asyncio.wrap_future(session.disconnected)  # for $disconnect too
            except Exception as error:
                self._internal(error, session.id)

        session.timers[deadline] = self.clock.call_later(delay, reached, self._loop)

    # Transport events (lock held) ------------------------------------------------------

    def http_request(self, method: str, target: str, body: bytes,
                     headers: Iterable[tuple[str, str]], source_ip: str) -> Answer:
        """Plain HTTP on the gateway's port: `@connections` (from the client at `source_ip`),
        or the 426 for the stage."""
        stage = self.config.stage
        connection_id = connections_api.parse_path(target, stage)
        if connection_id is not None:
            lowered = sigv4.lower_headers(headers)
            url = f"http://{lowered.get('host') or f'{self.host}:{self.port}'}{target}"
            caller = callers.over_http(method, url, lowered, body, self.clock.elapsed_since)
            return self._authorized(caller, method, connection_id, body, url, source_ip)
        if target.split("?", 1)[0].rstrip("/") == f"/{stage}":
            return rules.upgrade_required()
        return connections_api.not_found(target, stage)

    def upgrade_requested(self, tcp: Transport, request: Request) -> None:
        path, _, query_string = request.path.partition("?")
        handshake = Handshake(path=path, headers=list(request.headers.raw_items()),
                              query=parse_qsl(query_string, keep_blank_values=True),
                              source_ip=tcp.peer_ip, user_agent=request.headers.get("User-Agent"))
        try:
            config = self.config
        except Exception as error:  # the stage or API vanished from moto
            tcp.reject(500, "Internal server error")
            self.log.record(self._now(), "reject", "", status=500,
                            message="Internal server error", problem=str(error))
            return
        connect = config.routes.get("$connect")
        if connect is not None and connect.iam_auth:
            handshake = replace(handshake, iam_refusal=self._iam_refusal(config, request, tcp))
        machine = Connection(config, handshake, self.idle_timeout, self.max_lifetime)
        tcp.session = session = _Session(tcp, machine)
        session.finish = partial(self._finished, session)
        self._feed(session, Connection.start, not self._admit())

    def _iam_refusal(self, config: ApiConfig, request: Request,
                     tcp: Transport) -> tuple[int, str, str] | None:
        """AuthorizationType AWS_IAM on `$connect` (docs/aws-behaviour.md §7.3)."""
        headers = sigv4.lower_headers(request.headers.raw_items())
        url = f"http://{headers.get('host') or f'{self.host}:{self.port}'}{request.path}"
        resource = (f"arn:aws:execute-api:{config.region}:{config.account_id}:"
                    f"{config.api_id}/{config.stage}/$connect")
        return callers.connect_refusal(url, headers, resource, config.region,
                                       self.clock.time(), tcp.peer_ip, self.clock.elapsed_since)

    def text_received(self, tcp: Transport, data: bytes) -> None:
        if tcp.session is not None:
            self._feed(tcp.session, Connection.text_received, data)

    def binary_received(self, tcp: Transport) -> None:
        if tcp.session is not None:
            self._feed(tcp.session, Connection.binary_received)

    def close_received(self, tcp: Transport, code: int | None, reason: str) -> None:
        if tcp.session is not None:
            self._feed(tcp.session, Connection.close_received, code, reason)

    def failed(self, tcp: Transport, code: int, reason: str) -> None:
        if tcp.session is not None:
            self._feed(tcp.session, Connection.failed, code, reason)

    def lost(self, tcp: Transport) -> None:
        self._tcps.discard(tcp)
        if tcp.session is not None:
            self._feed(tcp.session, Connection.tcp_lost)

    def _admit(self) -> bool:
        """The connect-rate quota (docs/aws-behaviour.md §5), on the gateway's clock."""
        limit = self.max_connections_per_second
        if limit is None:
            return True
        if self._quota is None or self._quota.per_second != limit:
            self._quota = ConnectQuota(limit)
        return self._quota.admit(self._now())

    # @connections (docs/aws-behaviour.md §6) -------------------------------------------

    def _management(self, method: str, connection_id: str, body: bytes) -> Answer:
        session = self._open.get(connection_id)
        op = method.lower()
        if method == "POST" and len(body) > defaults.MAX_POST_BYTES:
            return connections_api.payload_too_large(len(body), defaults.MAX_POST_BYTES)
        if method not in ("POST", "GET", "DELETE"):
            return connections_api.method_not_allowed(method)
        if session is None:
            return self._gone(op, connection_id)
        with session.tcp.lock:
            machine = session.machine
            if not machine.postable:
                return self._gone(op, connection_id)
            now = self._now()
            if method == "POST":
                self._execute(session, machine.post(body, now), now)
                return connections_api.ok(200)
            if method == "GET":
                ctx = machine.context
                self.log.record(now, "manage", connection_id, op="get", status=200)
                return connections_api.ok(200, {
                    "connectedAt": ids.iso8601(ctx.connected_at),
                    "identity": {"sourceIp": ctx.source_ip, "userAgent": ctx.user_agent},
                    "lastActiveAt": ids.iso8601(machine.last_active),
                })
            self.log.record(now, "manage", connection_id, op="delete", status=204)
            self._execute(session, machine.delete(now), now)
            return connections_api.ok(204)

    def _gone(self, op: str, connection_id: str) -> Answer:
        if op != "get":
            self.log.record(self._now(), "manage", connection_id, op=op, status=410)
        return connections_api.gone(connection_id)


#: Set while the course runs on a real AWS account (helpers.lessons.real_aws): `from_api`
#: then returns ``factory(api_id, stage, **options)``, the deployed stage's stand-in.
_serve_elsewhere: Callable[..., Any] | None = None


def serve_elsewhere(factory: Callable[..., Any] | None) -> None:
    """Make `LocalGateway.from_api` answer with `factory` (None: serve locally again)."""
    global _serve_elsewhere
    _serve_elsewhere = factory


@atexit.register
def stop_all() -> None:
    """Stop every running gateway (at exit, and when a notebook restarts moto)."""
    for gateway in list(_running.values()):
        with contextlib.suppress(Exception):
            gateway.stop(timeout=2)
