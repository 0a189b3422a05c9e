"""`python -m helpers.gateway`: serve the demo chat API for wscat, a browser or websocket-client.

The API is built in moto exactly as the lessons build one (see `demo_chat`), then served by a
`LocalGateway`. Only this main thread prints; the gateway's threads never do, so the event
log is polled from here. Arguments are checked before anything heavy is imported, so
``--help`` and a mistake answer at once; a busy port is found before moto starts.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import re
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from helpers.gateway import defaults  # numbers only: nothing heavy

PROG = "python -m helpers.gateway"
#: AWS stage names: letters, digits, hyphens and underscores, at most 128 characters.
STAGE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
BODY_SHOWN = 120  # characters of a message body that --log prints before shortening it
EXIT_USAGE, EXIT_PORT_BUSY, EXIT_INTERRUPTED = 2, 1, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (cause and fix) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see --help)\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port {text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"port {port} is out of range: use 1-65535, or 0 for any free port")
    return port


def _stage(text: str) -> str:
    if not STAGE_NAME.match(text):
        raise argparse.ArgumentTypeError(
            f"stage name {text!r} is invalid: use 1-128 letters, digits, '-' or '_' (e.g. dev)")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"{text} seconds is not a positive, finite duration (e.g. 600)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Serve a demo WebSocket chat API (built with boto3 in moto) on a local "
        "API Gateway emulator. Connect with wscat, a browser or websocket-client.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=_port, default=8080,
                        help="port to bind; 0 picks a free one (default %(default)s)")
    parser.add_argument("--stage", type=_stage, default="dev",
                        help="stage name (default %(default)s)")
    parser.add_argument("--idle-timeout", type=_seconds, default=None, metavar="SECONDS",
                        help="close idle connections after this long (AWS: 600)")
    parser.add_argument("--max-lifetime", type=_seconds, default=None, metavar="SECONDS",
                        help="close every connection after this long (AWS: 7200)")
    parser.add_argument("--environment-idle-lifetime", type=_seconds,
                        default=defaults.ENVIRONMENT_IDLE_LIFETIME, metavar="SECONDS",
                        help="reclaim a handler's execution environment left idle this long, "
                        "so that its next call is a cold start (default %(default)g, as "
                        "observed on AWS)")
    parser.add_argument("--log", action="store_true",
                        help="print the gateway's event log as it happens, with the handlers' "
                        "own log lines")
    return parser


def port_problem(host: str, port: int) -> str | None:
    """Why the gateway could not listen on ``host:port``, or None: found by binding a probe
    socket first, so a mistake is reported before moto starts and the API is built."""
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server
        probe.bind((host, port))
    except socket.gaierror:
        return (f"Cannot listen on {host}: no such address. Use an address of this machine, "
                "e.g. --host 127.0.0.1 (the default) or --host 0.0.0.0 for every interface.")
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return (f"Cannot listen on {host}:{port}: the port is busy (another program, or "
                    "another gateway, listens there). Pick another with --port N, or use "
                    "--port 0 for any free port.")
        if error.errno == errno.EACCES:
            return (f"Cannot listen on {host}:{port}: permission denied (ports below 1024 need "
                    "privileges). Use --port 0 for any free port, or a port above 1023.")
        return (f"Cannot listen on {host}:{port}: {error.strerror or error}. Check --host, or "
                "use --port 0 for any free port.")
    finally:
        probe.close()
    return None


def shorten(text: str, limit: int = BODY_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _value(value: Any) -> str:
    value = getattr(value, "value", value)  # an enum shows as its value
    if isinstance(value, str):
        return json.dumps(shorten(value))
    if isinstance(value, float):
        return f"{value:.1f}"
    return shorten(json.dumps(value, default=str))


def log_lines(entry: Any) -> list[str]:
    """One event for ``--log``: a summary line, then the handler's own log lines indented."""
    detail = " ".join(f"{key}={_value(value)}" for key, value in entry.detail.items()
                      if key not in ("logs", "result") and value is not None)
    lines = [f"[{entry.kind:<8}] {entry.connection_id} {detail}".rstrip()]
    for line in entry.detail.get("logs") or ():
        for part in str(line).rstrip("\n").splitlines():
            lines.append(f"           | {shorten(part, 200)}")
    return lines


def failure_line(entry: Any) -> str | None:
    """The one line printed without ``--log`` when a handler fails or a call is refused."""
    detail = entry.detail
    outcome = getattr(detail.get("outcome"), "value", detail.get("outcome"))
    if entry.kind == "invoke" and outcome not in (None, "ok"):
        error = str(detail.get("error") or outcome).strip().splitlines()
        return (f"handler failed: {detail.get('function')} on route {detail.get('route')}: "
                f"{shorten(error[-1] if error else str(outcome), 160)} (--log shows its logs)")
    if entry.kind == "refused":
        return (f"call refused: {detail.get('function')} {detail.get('op')} "
                f"{entry.connection_id}: {shorten(str(detail.get('reason')), 160)}")
    return None


class StopSignals:
    """Ctrl-C (SIGINT), from the very start, and SIGTERM once serving: the CLI's own handler.

    Installed before anything heavy is imported, so Ctrl-C always works the same way, even when
    the CLI inherited SIGINT ignored (a background job of a script, or of a test runner that
    was one): while the API is being built, it interrupts the build (KeyboardInterrupt); once
    the gateway serves, it only asks the main loop to stop. A Ctrl-C that some library caught
    during start-up is remembered all the same (`requested`).

    The handler takes no lock: Python runs it in the main thread between any two bytecodes,
    also while that thread holds the lock it would take (a `threading.Event`'s, inside
    `Event.wait`), which then never returns. So `requested` is a plain flag that `wait` polls.
    """

    def __init__(self) -> None:
        self.requested = False
        self.serving = False
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        self.requested = True
        if not self.serving:
            raise KeyboardInterrupt

    def serve(self) -> None:
        """From now on a signal only sets `requested`; raises KeyboardInterrupt if one came
        during start-up."""
        self.serving = True
        signal.signal(signal.SIGTERM, self._handle)
        if self.requested:
            raise KeyboardInterrupt

    def wait(self, seconds: float) -> bool:
        """Whether a stop was asked for, looking again after `seconds` if not yet."""
        if not self.requested:
            time.sleep(seconds)
        return self.requested


def serve(args: argparse.Namespace, signals: StopSignals) -> int:
    """Build the API, serve it until SIGINT/SIGTERM, and stop cleanly (exit status 0)."""
    from helpers.aws import start_moto
    from helpers.gateway import LocalGateway
    from helpers.gateway.demo_chat import create_chat_api
    from helpers.gateway.server import stop_all

    options = {"environment_idle_lifetime": args.environment_idle_lifetime}
    if args.idle_timeout is not None:
        options["idle_timeout"] = args.idle_timeout
    if args.max_lifetime is not None:
        options["max_lifetime"] = args.max_lifetime
    mock = start_moto()
    try:
        api_id = create_chat_api(stage=args.stage)
        gateway = LocalGateway.from_api(
            api_id, args.stage, host=args.host, port=args.port, **options
        ).start()
        signals.serve()
    except OSError as error:  # the port was taken between our check and the gateway's bind
        print(f"Cannot listen on {args.host}:{args.port}: {error}. Try --port 0.",
              file=sys.stderr)
        mock.stop()
        return EXIT_PORT_BUSY
    except BaseException:
        stop_all()  # the gateway, if it started before the interruption
        mock.stop()
        raise

    example = json.dumps({"action": "sendmessage", "data": "hello"})
    print(f"WebSocket URL:   {gateway.url}", flush=True)
    print(f"@connections:    {gateway.http_url}/@connections/{{connectionId}}", flush=True)
    print(f"Try:             wscat -c '{gateway.url}?name=ada'   then send {example}",
          flush=True)
    print("Press Ctrl-C to stop.", flush=True)

    seen = 0
    try:
        while not signals.wait(0.2):
            for entry in gateway.log:
                if entry.seq <= seen:
                    continue
                seen = entry.seq
                lines = log_lines(entry) if args.log else [failure_line(entry)]
                for line in filter(None, lines):
                    print(line, flush=True)
    finally:
        gateway.stop(timeout=3)
        mock.stop()
    print("Gateway stopped. Bye.", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        signals = StopSignals()
        problem = port_problem(args.host, args.port)
        if problem is not None:
            print(problem, file=sys.stderr)
            return EXIT_PORT_BUSY
        return serve(args, signals)
    except KeyboardInterrupt:  # Ctrl-C while moto and the API were being built
        print("Interrupted before the gateway started.", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
