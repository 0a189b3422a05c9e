"""One WebSocket connection through API Gateway, as a state machine without I/O.

Handshake, authorizer, `$connect`, open, messages, close and `$disconnect` exactly once, with
the idle and lifetime deadlines (docs/aws-behaviour.md §2.3, §3, §4, §5, §7). In the shape of
python-websockets' `Protocol`: the I/O shell (`server`) feeds in what happened (a handshake,
a message, an integration's answer, a deadline, a close) and carries out the actions each
call returns (`Invoke`, `Send`, `Close`, `Accept`, `Reject`, `Schedule`, ...). Nothing here
reads a socket, a clock or a thread: times come in as arguments, so every rule is tested
without a network (tests/test_connection_state.py).

The shell serialises calls on one connection (one lock); the machine itself is not
thread-safe.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from helpers.gateway import defaults, ids
from helpers.gateway import protocol_rules as rules
from helpers.gateway.config import ApiConfig, Route
from helpers.gateway.events import (
    ConnectionContext,
    authorizer_event,
    connect_event,
    disconnect_event,
    message_event,
)
from helpers.gateway.routing import select_route

Pairs = Sequence[tuple[str, str]]


class State(enum.Enum):
    """Where a connection is in its life.

    Invariant: `$disconnect` is invoked exactly once, on the one transition out of OPEN, and
    never for a connection that did not reach OPEN. Only OPEN routes messages and accepts
    `@connections` posts; every message received while OPEN is invoked.
    """

    AUTHORIZING = enum.auto()  # the Lambda authorizer runs
    CONNECTING = enum.auto()  # the $connect integration runs
    OPEN = enum.auto()  # the 101 went out: messages are routed, posts delivered
    CLOSED = enum.auto()  # closed by either side, or the TCP connection dropped
    REFUSED = enum.auto()  # the handshake ended without a 101 (or the client left first)


class CallKind(enum.StrEnum):
    """The four kinds of integration call a connection makes."""

    AUTHORIZER = "authorizer"
    CONNECT = "$connect"
    MESSAGE = "message"
    DISCONNECT = "$disconnect"


class Outcome(enum.StrEnum):
    """How an integration call ended, as the gateway saw it (the log's `outcome`)."""

    OK = "ok"
    ERROR = "error"  # the handler raised, or its answer could not be marshalled
    CONFIG_ERROR = "config-error"  # API Gateway may not invoke the function (§1.7)
    INTEGRATION_TIMEOUT = "integration-timeout"  # TimeoutInMillis passed first (§4.2)
    FUNCTION_TIMEOUT = "function-timeout"  # the function's own Timeout passed first
    SATURATED = "machine-saturated"  # the call never got the CPU or a worker: not the handler


#: The members the per-message methods test, as module globals: in Python 3.11 reading a
#: member off its Enum class (`State.OPEN`) costs ten global reads (EnumType.__getattr__).
_OPEN, _MESSAGE, _OK = State.OPEN, CallKind.MESSAGE, Outcome.OK


class Deadline(enum.Enum):
    IDLE = enum.auto()  # no data message for IDLE_TIMEOUT (§5)
    LIFETIME = enum.auto()  # MAX_LIFETIME after the 101 (§5)


# Call, Invoke, Send and Record are made for every message, so they are not frozen: a frozen
# dataclass's __init__ sets each field through object.__setattr__, a call apiece. Like the
# other actions they are never changed once made.


@dataclass(slots=True)
class Call:
    """One integration call: which route, with which event."""

    kind: CallKind
    route: Route
    event: dict[str, Any]
    request_id: str  # the API Gateway request id (the error frame's `requestId`)


@dataclass(slots=True)
class Finished:
    """An integration call's end: its outcome and what the function returned, if it did."""

    call: Call
    outcome: Outcome
    result: Any = None
    error: str | None = None  # Lambda's errorMessage, when the function failed


# --- Actions: what the shell must do ----------------------------------------------------------


@dataclass(slots=True)
class Invoke:
    call: Call


@dataclass(slots=True)
class Send:
    """Send one message (text, or bytes pushed through `@connections`)."""

    data: str | bytes
    via: str  # reply | error | push


@dataclass(frozen=True, slots=True)
class Close:
    """Send a close frame from the gateway's side."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Accept:
    """Answer the handshake 101, with these extra headers (e.g. Sec-WebSocket-Protocol)."""

    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Reject:
    """Answer the handshake with an HTTP error: `{"message": message}`."""

    status: int
    message: str


@dataclass(frozen=True, slots=True)
class Schedule:
    deadline: Deadline
    delay: float  # seconds of the gateway's clock


@dataclass(frozen=True, slots=True)
class Cancel:
    deadline: Deadline


@dataclass(frozen=True, slots=True)
class Gone:
    """The connection left OPEN: `@connections` answers 410 from now on."""


@dataclass(frozen=True, slots=True)
class Hold:
    """Call `release_held` after `seconds` of real time: answers wait for earlier ones."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Ended:
    """`$disconnect` has finished (or there is none): the connection's story is complete."""


@dataclass(slots=True)
class Record:
    """Add an entry to the gateway's event log."""

    kind: str
    detail: dict[str, Any]


Action = (Invoke | Send | Close | Accept | Reject | Schedule | Cancel | Gone | Hold | Ended
          | Record)

#: What `$disconnect` reports for a TCP connection that vanished without a close frame:
#: RFC 6455 reserves 1006 for exactly this and AWS documents nothing.
VANISHED = rules.Close(1006, "")


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the shell read from the client's upgrade request."""

    path: str  # without the query string
    headers: Pairs
    query: Pairs
    source_ip: str
    user_agent: str | None
    # AuthorizationType AWS_IAM on $connect (§7.3): the shell checks the signature and the
    # signer's execute-api:Invoke; a refusal is (status, message, why), else None.
    iam_refusal: tuple[int, str, str] | None = None


@dataclass(eq=False)
class Connection:
    """The gateway's side of one WebSocket connection (see the module docstring).

    Every method takes the gateway clock's time `now` and returns the actions to carry out,
    in order. The shell keeps `config` up to date with the deployed stage, so a redeployment
    changes the routes of connections already open, as on AWS.
    """

    config: ApiConfig
    handshake: Handshake
    idle_timeout: float
    max_lifetime: float
    context: ConnectionContext = field(init=False)
    state: State = field(init=False, default=State.CONNECTING)
    last_active: float = field(init=False, default=0.0)
    answer_hold: float = defaults.ANSWER_HOLD
    # Message calls in arrival order: None while running, then how it finished. An answer
    # goes out once every earlier message is answered, or after `answer_hold` seconds.
    calls: dict[str, Finished | None] = field(init=False, default_factory=dict)
    holding: bool = field(init=False, default=False)

    @property
    def id(self) -> str:
        return self.context.connection_id

    @property
    def postable(self) -> bool:
        return self.state is State.OPEN

    # Handshake -----------------------------------------------------------------------------

    def start(self, too_many: bool, now: float) -> list[Action]:
        """The upgrade request arrived: check stage and rate, then authorize or `$connect`."""
        config, request = self.config, self.handshake
        self.context = ConnectionContext(
            connection_id=ids.new_id(), connected_at=now, source_ip=request.source_ip,
            user_agent=request.user_agent, api_id=config.api_id, stage=config.stage,
            domain_name=config.request_domain,
        )
        self.state, self.last_active = State.CONNECTING, now
        if request.path.rstrip("/") != f"/{config.stage}":
            return self._refuse(403, "Forbidden",
                                f"no stage at {request.path}: connect to /{config.stage}")
        if too_many:
            return self._refuse(429, "Too Many Requests",
                                "more new connections per second than the gateway allows")
        route = config.routes.get("$connect")
        if route is not None and route.iam_auth and request.iam_refusal is not None:
            return self._refuse(*request.iam_refusal)
        if route is None or route.authorizer is None:
            return self._connect(now)
        authorizer = route.authorizer
        if rules.identity_values(authorizer.identity_sources, request.headers,
                                 request.query) is None:
            return self._refuse(401, "Unauthorized",
                                "an identity source is missing: the authorizer was not called")
        self.state = State.AUTHORIZING
        event = authorizer_event(self.context, headers=request.headers, query=request.query,
                                 request_id=ids.new_id(), now=now)
        auth_route = Route("$connect (authorizer)", authorizer.function,
                           timeout=authorizer.function.timeout)
        return [Invoke(Call(CallKind.AUTHORIZER, auth_route, event, ids.new_id()))]

    def _connect(self, now: float) -> list[Action]:
        self.state = State.CONNECTING
        route = self.config.routes.get("$connect")
        if route is None or route.function is None:
            return self._open({}, now)
        request = self.handshake
        event = connect_event(self.context, headers=request.headers, query=request.query,
                              request_id=ids.new_id(), now=now)
        return [Invoke(Call(CallKind.CONNECT, route, event, ids.new_id()))]

    def _authorized(self, finished: Finished, now: float) -> list[Action]:
        error = None if finished.outcome is Outcome.OK else (finished.error or finished.outcome)
        status, principal = rules.authorizer_outcome(
            finished.result, error, method_arn=finished.call.event["methodArn"])
        if status is not None:
            message = {401: "Unauthorized", 403: "Forbidden"}.get(status, "Internal server error")
            return self._refuse(status, message, f"authorizer answered {status}")
        self.context = replace(self.context, authorizer=principal)
        return self._connect(now)

    def _connected(self, finished: Finished, now: float) -> list[Action]:
        if finished.outcome is not Outcome.OK:  # timeout 504; missing permission 500; else 502
            status = {Outcome.INTEGRATION_TIMEOUT: 504, Outcome.SATURATED: 504,
                      Outcome.CONFIG_ERROR: 500}.get(finished.outcome, 502)
            return self._refuse(status, "Internal server error", f"$connect {finished.outcome}")
        accepted, status, headers, problem = rules.connect_outcome(finished.result)
        if not accepted:
            return self._refuse(status, "Forbidden" if status == 403 else "Connection refused",
                                problem)
        return self._open(headers, now)

    def _open(self, headers: dict[str, str], now: float) -> list[Action]:
        self.state, self.last_active = State.OPEN, now
        query = dict(self.handshake.query)
        return [  # logged and timed before the 101 goes out: the client may act at once
            Record("connect", {"status": 101, "query": query,
                               "authorizer": self.context.authorizer}),
            Schedule(Deadline.IDLE, self.idle_timeout),
            Schedule(Deadline.LIFETIME, self.max_lifetime),
            Accept(headers),
        ]

    def _refuse(self, status: int, message: str, problem: str | None) -> list[Action]:
        self.state = State.REFUSED
        return [Reject(status, message),
                Record("reject", {"status": status, "message": message, "problem": problem})]

    # Messages ------------------------------------------------------------------------------

    def text_received(self, data: bytes, now: float) -> list[Action]:
        """A complete text message: route it (§2.3) and invoke its integration at once.

        Each message is its own call (§4.3a): nothing waits for an earlier one to finish.
        """
        if self.state is not _OPEN:
            return []
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return self._close_by_gateway(rules.Close(1007, "Invalid UTF-8 in a text frame"),
                                          now)
        self.last_active = now
        config = self.config
        route_key = select_route(config.route_selection_expression, text, config.routes)
        route = config.routes.get(route_key) if route_key is not None else None
        function = route.function if route is not None else None
        request_id = ids.new_id()
        # One entry for the message and the call it starts (`function`): the hot path logs as
        # little as it can.
        logged = Record("message", {"route": route_key, "body": text, "request_id": request_id,
                                    "function": function and function.name})
        if function is None:  # no route and no $default: Forbidden (§2.3 step 5)
            problem = rules.FORBIDDEN if route is None else rules.INTERNAL_SERVER_ERROR
            return [logged, *self._answer(rules.error_frame(problem, self.id, request_id),
                                          "error", now)]
        event = message_event(self.context, route_key=route_key, body=text,
                              request_id=request_id, message_id=ids.new_id(), now=now)
        self.calls[request_id] = None
        return [logged, Invoke(Call(_MESSAGE, route, event, request_id))]

    def binary_received(self, now: float) -> list[Action]:
        """API Gateway does not route binary frames: it closes 1003 (§2.3 step 1)."""
        if self.state is not State.OPEN:
            return []
        return self._close_by_gateway(rules.BINARY_NOT_SUPPORTED, now)

    def _answered(self, finished: Finished, now: float) -> list[Action]:
        call = finished.call
        if finished.outcome is _OK:
            frame, _problem = rules.message_reply(finished.result, call.route.two_way,
                                                  connection_id=self.id,
                                                  request_id=call.request_id)
            via = "reply"
        else:
            timed_out = finished.outcome in (Outcome.INTEGRATION_TIMEOUT, Outcome.SATURATED)
            message = rules.ENDPOINT_TIMED_OUT if timed_out else rules.INTERNAL_SERVER_ERROR
            frame, via = rules.error_frame(message, self.id, call.request_id), "error"
        if frame is None:
            return []
        return self._answer(frame, via, now, request_id=call.request_id)

    def _answer(self, frame: str, via: str, now: float, *, request_id: str = "") -> list[Action]:
        if self.state is not _OPEN:  # the client left: nobody to answer (§4.3a)
            return [Record("drop", {"via": via, "body": frame, "request_id": request_id,
                                    "why": "the connection closed before the answer"})]
        self.last_active = now
        return [Record("send", {"via": via, "body": frame}), Send(frame, via)]

    def _in_order(self, finished: Finished, now: float) -> list[Action]:
        """Answer in arrival order when calls finish close together, never waiting long.

        AWS does not promise order (§4.3a), but its fast handlers answer in order in
        practice; here threads finishing a few milliseconds apart could swap two answers.
        So an answer waits for earlier messages' answers, at most `answer_hold` seconds: a
        slow handler never holds back the next message's answer for longer.
        """
        self.calls[finished.call.request_id] = finished
        actions: list[Action] = []
        while self.calls:
            first = next(iter(self.calls))
            done = self.calls[first]
            if done is None:
                break
            del self.calls[first]
            actions += self._answered(done, now)
        if any(self.calls.values()) and not self.holding:
            self.holding = True
            actions.append(Hold(self.answer_hold))
        return actions

    def release_held(self, now: float) -> list[Action]:
        """The hold is over: answers that finished go out now, still in arrival order."""
        self.holding = False
        actions: list[Action] = []
        for request_id, done in list(self.calls.items()):
            if done is not None:
                del self.calls[request_id]
                actions += self._answered(done, now)
        return actions

    # Integration calls ---------------------------------------------------------------------

    def invocation_finished(self, finished: Finished, now: float) -> list[Action]:
        """An integration call ended (answered, failed or timed out)."""
        kind = finished.call.kind
        if kind is _MESSAGE:
            return self._in_order(finished, now)
        if kind is CallKind.DISCONNECT:
            return [Ended()]
        if self.state is State.REFUSED:  # the client left during the handshake
            return []
        if kind is CallKind.AUTHORIZER:
            return self._authorized(finished, now)
        return self._connected(finished, now)

    # @connections (§6) ---------------------------------------------------------------------

    def post(self, data: bytes, now: float) -> list[Action]:
        """A backend's post_to_connection: the caller checked `postable` under the same lock."""
        self.last_active = now
        shown = data.decode("utf-8", "replace") if is_text(data) else f"<{len(data)} bytes>"
        return [Record("send", {"via": "push", "body": shown}), Send(data, "push")]

    def delete(self, now: float) -> list[Action]:
        """A backend's delete_connection: close 1000 and run `$disconnect`."""
        return self._close_by_gateway(rules.CLOSED_BY_BACKEND, now)

    # Closing -------------------------------------------------------------------------------

    def deadline_reached(self, deadline: Deadline, now: float) -> list[Action]:
        if self.state is not State.OPEN:
            return []
        if deadline is Deadline.LIFETIME:
            return self._close_by_gateway(rules.LIFETIME_EXCEEDED, now)
        idle_for = now - self.last_active
        if idle_for + 1e-6 >= self.idle_timeout:
            return self._close_by_gateway(rules.GOING_AWAY, now)
        return [Schedule(Deadline.IDLE, self.idle_timeout - idle_for)]

    def close_by_gateway(self, close: rules.Close, now: float) -> list[Action]:
        """The gateway closes (idle, lifetime, stopping): send the close, run `$disconnect`."""
        if self.state is not State.OPEN:
            return []
        return self._close_by_gateway(close, now)

    def _close_by_gateway(self, close: rules.Close, now: float) -> list[Action]:
        record, *rest = self._closed(close, "gateway", close.code, close.reason, now)
        return [record, Close(close.code, close.reason), *rest]  # logged before it is seen

    def close_received(self, code: int | None, reason: str, now: float) -> list[Action]:
        """The client's close frame: every message before it has been fed in already."""
        if self.state is not State.OPEN:
            return []
        return self._closed(rules.client_close(code, reason), "client", code, reason, now)

    def failed(self, code: int, reason: str, now: float) -> list[Action]:
        """The framing layer closed the connection itself (e.g. 1009: too big, §5)."""
        if self.state is not State.OPEN:
            return []
        return self._closed(rules.Close(code, reason), "gateway", code, reason, now)

    def tcp_lost(self, now: float) -> list[Action]:
        """The TCP connection dropped. During the handshake the client simply left."""
        if self.state in (State.AUTHORIZING, State.CONNECTING):
            self.state = State.REFUSED
            return []
        if self.state is not State.OPEN:
            return []
        return self._closed(VANISHED, "network", 1006, "", now)

    def _closed(self, close: rules.Close, by: str, code: int | None, reason: str,
                now: float) -> list[Action]:
        """Leave OPEN (the only way out): 410 from now on, and `$disconnect` once (§3.3)."""
        self.state = State.CLOSED
        actions: list[Action] = [
            Record("close", {"code": code, "reason": reason, "by": by}),
            Gone(), Cancel(Deadline.IDLE), Cancel(Deadline.LIFETIME),
        ]
        route = self.config.routes.get("$disconnect")
        if route is None or route.function is None:
            return [*actions, Ended()]
        event = disconnect_event(self.context, status_code=close.code, reason=close.reason,
                                 request_id=ids.new_id(), now=now)
        return [*actions, Invoke(Call(CallKind.DISCONNECT, route, event, ids.new_id()))]


def is_text(data: bytes) -> bool:
    """Whether a post goes out as a text frame: AWS documents no frame type for posts, so
    valid UTF-8 goes as text and anything else as binary."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
