"""`python -m helpers.gateway`: serve the demo chat API for wscat, a browser or websocket-client.

The API is built in moto exactly as the lessons build one (see `demo_chat`), then served by a
`LocalGateway`. Only this main thread prints; the gateway's threads never do, so `--log`
polls the event log from here.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence

from helpers.aws import start_moto
from helpers.gateway import LocalGateway
from helpers.gateway.demo_chat import create_chat_api
from helpers.gateway.eventlog import Entry


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.gateway",
        description="Serve a demo WebSocket chat API (built with boto3 in moto) on a local "
        "API Gateway emulator. Connect with wscat, a browser or websocket-client.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8080,
                        help="port to bind; 0 picks a free one (default %(default)s)")
    parser.add_argument("--stage", default="dev", help="stage name (default %(default)s)")
    parser.add_argument("--idle-timeout", type=float, default=None, metavar="SECONDS",
                        help="close idle connections after this long (AWS: 600)")
    parser.add_argument("--max-lifetime", type=float, default=None, metavar="SECONDS",
                        help="close every connection after this long (AWS: 7200)")
    parser.add_argument("--log", action="store_true",
                        help="print the gateway's event log as it happens")
    return parser


def _line(entry: Entry) -> str:
    detail = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in entry.detail.items()
                      if k != "logs")
    return f"[{entry.kind:<8}] {entry.connection_id} {detail}".rstrip()


def main(argv: Sequence[str] | None = None) -> int:
    """Build the API, serve it until SIGINT/SIGTERM, and stop cleanly (exit status 0)."""
    args = _parser().parse_args(argv)
    options = {}
    if args.idle_timeout is not None:
        options["idle_timeout"] = args.idle_timeout
    if args.max_lifetime is not None:
        options["max_lifetime"] = args.max_lifetime

    mock = start_moto()
    api_id = create_chat_api(stage=args.stage)
    try:
        gateway = LocalGateway.from_api(
            api_id, args.stage, host=args.host, port=args.port, **options
        ).start()
    except OSError as error:
        print(f"Cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        mock.stop()
        return 1

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()  # only set a flag: the main loop below does the stopping

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    example = json.dumps({"action": "sendmessage", "data": "hello"})
    print(f"WebSocket URL:   {gateway.url}", flush=True)
    print(f"@connections:    {gateway.http_url}/@connections/{{connectionId}}", flush=True)
    print(f"Try:             wscat -c '{gateway.url}?name=ada'   then send {example}",
          flush=True)
    print("Press Ctrl-C to stop.", flush=True)

    seen = 0
    try:
        while not stop.wait(0.2):
            if args.log:
                for entry in gateway.log:
                    if entry.seq > seen:
                        seen = entry.seq
                        print(_line(entry), flush=True)
    finally:
        gateway.stop(timeout=3)
        mock.stop()
    print("Gateway stopped. Bye.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
