"""How fast is the local gateway, next to a raw `websockets` server and to boto3 itself?

    .venv/bin/python -m benchmarks.gateway_bench            # full run (a minute or two)
    .venv/bin/python -m benchmarks.gateway_bench --quick    # smoke run (seconds)

Everything runs in this one process, on 127.0.0.1, in the same run, so the ratios compare
like with like (same machine load, same GIL): a raw `websockets.asyncio.server` echo server
on its own loop and thread (the baseline), and the gateway serving an API deployed through
moto with boto3, whose handler pushes with a module-level `apigatewaymanagementapi` client
as real Lambda code would. Two phases put their clients in child processes: idle memory (so
the clients' memory is not counted as the server's) and the connect rate (so the clients'
handshake code does not share the gateway's GIL). Targets print PASS/MISS; the exit status
is 0 either way, because speed is measured here, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import http.server
import json
import os
import resource
import selectors
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import websocket

REGION = "us-east-1"
STAGE = "dev"

#: One function for every route (like AWS's Python chat sample): the `$connect`/`$disconnect`
#: branches keep the table of connections (`connection_store`) the fan-out branch loops over.
BENCH_HANDLER = """
    import os
    import boto3

    from benchmarks import connection_store  # shared by every execution environment
    _management = None  # built once, reused by every warm invocation


    def management(ctx):
        global _management
        if _management is None:
            _management = boto3.client(
                "apigatewaymanagementapi",
                endpoint_url=f"https://{ctx['domainName']}/{ctx['stage']}",
            )
        return _management


    def lambda_handler(event, context):
        ctx = event["requestContext"]
        route, me = ctx["routeKey"], ctx["connectionId"]
        if route == "$connect":
            connection_store.add(me)
        elif route == "$disconnect":
            connection_store.discard(me)
        elif route == "echo":
            return {"statusCode": 200, "body": event["body"]}
        elif route == "push":
            management(ctx).post_to_connection(ConnectionId=me, Data=event["body"].encode())
        elif route == "fanout":
            api = management(ctx)
            for other in connection_store.snapshot():
                try:
                    api.post_to_connection(ConnectionId=other, Data=event["body"].encode())
                except api.exceptions.GoneException:
                    connection_store.discard(other)
        return {"statusCode": 200}
"""


@dataclass(frozen=True)
class Sizes:
    echo: int
    warmup: int
    clients: int
    per_client: int
    push: int
    floor: int
    connects: int
    fanout: int
    fanout_rounds: int
    idle: int
    connect_rate: int
    chat_clients: int
    chat_messages: int


FULL = Sizes(echo=2000, warmup=200, clients=10, per_client=300, push=1000, floor=1000,
             connects=200, fanout=1000, fanout_rounds=5, idle=2000, connect_rate=1000,
             chat_clients=30, chat_messages=40)
QUICK = Sizes(echo=200, warmup=30, clients=10, per_client=20, push=100, floor=100,
              connects=20, fanout=100, fanout_rounds=2, idle=100, connect_rate=40,
              chat_clients=5, chat_messages=5)

PHASE_SECONDS = 120.0  # every measuring loop also stops at this deadline
SOCKET_TIMEOUT = 10.0


# --------------------------------------------------------------------------- small tools


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _bounded(count: int, seconds: float = PHASE_SECONDS) -> Iterator[int]:
    """range(count) that also stops at a deadline, so no loop can run away."""
    deadline = time.perf_counter() + seconds
    for i in range(count):
        if time.perf_counter() > deadline:
            print(f"  (stopped after {i} of {count}: {seconds:.0f} s deadline)", flush=True)
            return
        yield i


def _rss_kb() -> int:
    """This process's resident set (VmRSS), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def raise_nofile(wanted: int) -> int:
    """Lift the soft open-files limit (thousands of sockets); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def _connect(url: str) -> websocket.WebSocket:
    return websocket.create_connection(url, timeout=SOCKET_TIMEOUT)


def _wait_until(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# --------------------------------------------------------------------------- servers


class RawEcho:
    """The baseline: a `websockets` asyncio echo server on its own loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                       name="bench-raw-echo")
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("raw echo server did not start")

    def _run(self, ready: threading.Event) -> None:
        from websockets.asyncio.server import serve

        async def echo(ws) -> None:
            async for message in ws:
                await ws.send(message)

        async def main() -> None:
            async with serve(echo, "127.0.0.1", 0) as server:
                self.port = server.sockets[0].getsockname()[1]
                self._stopped = asyncio.Event()
                ready.set()
                await self._stopped.wait()

        self.loop.run_until_complete(main())

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stopped.set)
        self.thread.join(10)


class _NoopHandler(http.server.BaseHTTPRequestHandler):
    """Answers 200 to any POST (e.g. /dev/@connections/x): the cost of HTTP, nothing else."""

    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    posts = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).posts += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:  # silence the per-request stderr line
        pass


def measure_boto3_floor(count: int) -> list[float]:
    """One `post_to_connection` (reused client) to a do-nothing local HTTP server, in s."""
    import boto3

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoopHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="bench-noop-http")
    thread.start()
    try:
        client = boto3.client(
            "apigatewaymanagementapi", region_name=REGION,
            endpoint_url=f"http://127.0.0.1:{server.server_address[1]}/{STAGE}",
        )
        for _ in _bounded(max(20, count // 10)):  # warm up: connection pool, parsers
            client.post_to_connection(ConnectionId="x", Data=b"warm")
        _NoopHandler.posts = 0
        times = []
        for i in _bounded(count):
            started = time.perf_counter()
            client.post_to_connection(ConnectionId="x", Data=f"{i}".encode())
            times.append(time.perf_counter() - started)
        if _NoopHandler.posts != len(times):
            raise RuntimeError("the boto3 floor did not reach the local HTTP server")
        return times
    finally:
        server.shutdown()
        server.server_close()


def deploy_bench_api() -> str:
    """The benchmark API, made the lessons' way: boto3 against moto. Returns its ApiId."""
    import boto3

    from helpers.aws import allow_api_gateway, handler_zip, lambda_integration_uri, lambda_role

    lam = boto3.client("lambda", region_name=REGION)
    v2 = boto3.client("apigatewayv2", region_name=REGION)
    arn = lam.create_function(
        FunctionName="bench", Runtime="python3.11", Role=lambda_role(),
        Handler="app.lambda_handler", Code={"ZipFile": handler_zip(BENCH_HANDLER)},
        Timeout=30,
    )["FunctionArn"]
    api_id = v2.create_api(Name="bench", ProtocolType="WEBSOCKET",
                           RouteSelectionExpression="$request.body.action")["ApiId"]
    allow_api_gateway(arn, api_id)  # API Gateway may invoke it for every route
    integration = v2.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationMethod="POST",
        IntegrationUri=lambda_integration_uri(arn, REGION),
    )["IntegrationId"]
    for key in ("$connect", "$disconnect", "echo", "push", "fanout"):
        extra = {"RouteResponseSelectionExpression": "$default"} if key == "echo" else {}
        route_id = v2.create_route(ApiId=api_id, RouteKey=key,
                                   Target=f"integrations/{integration}", **extra)["RouteId"]
        if extra:
            v2.create_route_response(ApiId=api_id, RouteId=route_id, RouteResponseKey="$default")
    v2.create_stage(ApiId=api_id, StageName=STAGE)
    v2.create_deployment(ApiId=api_id, StageName=STAGE)
    return api_id


# --------------------------------------------------------------------------- measurements

ECHO_MESSAGE = json.dumps({"action": "echo", "data": "x" * 64})


def echo_round_trips(url: str, count: int, warmup: int) -> list[float]:
    ws = _connect(url)
    try:
        for _ in _bounded(warmup):
            ws.send(ECHO_MESSAGE)
            ws.recv()
        times = []
        for _ in _bounded(count):
            started = time.perf_counter()
            ws.send(ECHO_MESSAGE)
            reply = ws.recv()
            times.append(time.perf_counter() - started)
            if reply != ECHO_MESSAGE:
                raise RuntimeError(f"unexpected echo: {reply[:80]!r}")
        return times
    finally:
        ws.close()


def throughput(url: str, clients: int, per_client: int) -> float:
    """Messages per second with `clients` threads, each awaiting every reply."""
    sockets = [_connect(url) for _ in range(clients)]
    for ws in sockets:  # warm up each connection (and the gateway's workers)
        for _ in range(5):
            ws.send(ECHO_MESSAGE)
            ws.recv()
    barrier = threading.Barrier(clients + 1)
    done = [0] * clients

    def run(index: int, ws: websocket.WebSocket) -> None:
        barrier.wait()
        for _ in _bounded(per_client):
            ws.send(ECHO_MESSAGE)
            ws.recv()
            done[index] += 1

    threads = [threading.Thread(target=run, args=(i, ws), daemon=True)
               for i, ws in enumerate(sockets)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(PHASE_SECONDS)
    elapsed = time.perf_counter() - started
    for ws in sockets:
        ws.close()
    return sum(done) / elapsed


def push_latencies(url: str, count: int, warmup: int) -> list[float]:
    ws = _connect(url)
    try:
        times = []
        for i in _bounded(warmup + count):
            message = json.dumps({"action": "push", "n": i})
            started = time.perf_counter()
            ws.send(message)
            pushed = ws.recv()
            elapsed = time.perf_counter() - started
            if pushed != message:
                raise RuntimeError(f"unexpected push: {pushed[:80]!r}")
            if i >= warmup:
                times.append(elapsed)
        return times
    finally:
        ws.close()


def connect_times(url: str, count: int, warmup: int) -> list[float]:
    """Handshake time (TCP + upgrade + the `$connect` handler); sockets stay open meanwhile."""
    opened, times = [], []
    try:
        for i in _bounded(warmup + count):
            started = time.perf_counter()
            ws = _connect(url)
            elapsed = time.perf_counter() - started
            opened.append(ws)
            if i >= warmup:
                times.append(elapsed)
        return times
    finally:
        for ws in opened:
            ws.close()


def connect_rate(url: str, count: int, parallel: int = 2) -> float:
    """New connections per second, each through the `$connect` Lambda (and `$disconnect` after).

    The clients open and close connections one after another in `parallel` child processes:
    in this process they would share the gateway's GIL, and the figure would mostly measure
    websocket-client's own handshake code. (On AWS the clients are never in the gateway.)
    The clock starts once every child has imported and is ready.
    """
    each = count // parallel
    children = [subprocess.Popen(
        [sys.executable, "-m", "benchmarks.gateway_bench", "--open-close", url, str(each)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    ) for _ in range(parallel)]
    try:
        for child in children:
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("connect-rate helper did not start")
        started = time.perf_counter()
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            if child.stdout.readline().strip() != "done":
                raise RuntimeError("connect-rate helper failed")
        return each * parallel / (time.perf_counter() - started)
    finally:
        for child in children:
            child.kill()
            child.wait(10)


def open_close(url: str, count: int) -> None:
    """The connect-rate child: say "ready", wait for "go", open and close `count`
    connections one after another, say "done"."""
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(count):
        _connect(url).close()
    print("done", flush=True)


def chat_load(url: str, clients: int, messages: int) -> tuple[Counter[str], int, float]:
    """Every client sends `messages` unpaced `fanout` messages; each is pushed to everyone.

    Returns (the error frames' messages, counted; lost broadcasts; RSS growth in MB)."""
    sockets = [_connect(url) for _ in range(clients)]
    expected = clients * messages
    errors: list[Counter[str]] = [Counter() for _ in range(clients)]
    received = [0] * clients
    rss_before = _rss_kb()

    def read(i: int) -> None:
        ws, deadline = sockets[i], time.monotonic() + PHASE_SECONDS
        while received[i] < expected and time.monotonic() < deadline:
            try:
                text = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if '"message": ' in text and '"requestId":' in text:  # an API Gateway error frame
                errors[i][json.loads(text)["message"]] += 1
            else:
                received[i] += 1

    readers = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(clients)]
    for reader in readers:
        reader.start()
    for n in range(messages):
        for i, ws in enumerate(sockets):
            ws.send(json.dumps({"action": "fanout", "from": i, "n": n}))
    for reader in readers:
        reader.join(PHASE_SECONDS)
    growth = (_rss_kb() - rss_before) / 1024
    for ws in sockets:
        ws.close()
    return sum(errors, Counter()), clients * expected - sum(received), growth


def fan_out(url: str, clients: int, rounds: int) -> list[float]:
    """Seconds from one `fanout` message until every one of `clients` sockets has the push."""
    sockets = [_connect(url) for _ in _bounded(clients)]
    selector = selectors.DefaultSelector()
    for ws in sockets:
        selector.register(ws.sock, selectors.EVENT_READ, ws)
    times = []
    try:
        for round_ in _bounded(rounds + 1):  # round 0 warms up
            message = json.dumps({"action": "fanout", "round": round_})
            received = 0
            started = time.perf_counter()
            sockets[0].send(message)
            deadline = started + PHASE_SECONDS
            while received < len(sockets) and time.perf_counter() < deadline:
                for key, _ in selector.select(timeout=1.0):
                    if key.data.recv() == message:
                        received += 1
            elapsed = time.perf_counter() - started
            if received < len(sockets):
                print(f"  (fan-out round {round_}: only {received}/{len(sockets)} arrived)")
            if round_ > 0:
                times.append(elapsed)
        return times
    finally:
        selector.close()
        for ws in sockets:
            ws.close()


def idle_memory(url: str, count: int, settle: Callable[[], bool]) -> tuple[float, float]:
    """KiB of this process's RSS per idle connection, and the clients' own KiB each.

    The clients run in a child process, so none of their memory is in this RSS: the
    growth is the server's (asyncio transports, protocol objects, the gateway's per-connection
    state, its event log entries and the `$connect` invocations' leftovers).
    """
    gc.collect()
    before = _rss_kb()
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.gateway_bench", "--hold", url, str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        selector = selectors.DefaultSelector()
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=PHASE_SECONDS):
            raise RuntimeError("idle clients did not connect in time")
        line = child.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError(f"idle-client helper failed: {line}")
        opened, client_kb = int(line[1]), float(line[2])
        _wait_until(settle, 10)
        time.sleep(0.5)
        gc.collect()
        after = _rss_kb()
    finally:
        child.stdin.close()
        child.wait(30)
    return (after - before) / opened, client_kb


def hold_clients(url: str, count: int) -> None:
    """Child-process side of `idle_memory`: open `count` sockets, report, wait for EOF."""
    raise_nofile(count + 256)
    before = _rss_kb()
    sockets = [_connect(url) for _ in _bounded(count)]
    per_client = (_rss_kb() - before) / max(1, len(sockets))
    print(f"ready {len(sockets)} {per_client:.2f}", flush=True)
    sys.stdin.read()
    for ws in sockets:
        with contextlib.suppress(Exception):
            ws.close()


# --------------------------------------------------------------------------- report


@dataclass
class Row:
    metric: str
    raw: str
    gateway: str
    ratio: str
    target: str
    ok: bool | None


def _latency(times: list[float]) -> str:
    return f"median {_ms(statistics.median(times)):.3f} ms  p95 {_ms(p95(times)):.3f} ms"


def _line(label: str, text: str) -> None:
    print(f"{label:<24} {text}", flush=True)


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "MISS")


def run(sizes: Sizes) -> list[Row]:
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION})
    limit = raise_nofile(sizes.idle + sizes.fanout + 512)
    rows: list[Row] = []
    print(f"RLIMIT_NOFILE soft limit: {limit}; python {sys.version.split()[0]}; "
          f"{os.cpu_count()} CPUs", flush=True)

    floor = measure_boto3_floor(sizes.floor)
    floor_median = statistics.median(floor)
    _line("boto3 floor", f"{_latency(floor)}  (post_to_connection, reused client, "
          "to a do-nothing local HTTP server)")
    rows.append(Row("boto3 floor (1 post)", "", _latency(floor), "", "reference", None))

    from helpers.aws import start_moto
    from helpers.gateway import LocalGateway

    raw = RawEcho()
    mock = start_moto(REGION)
    gateway = None
    try:
        api_id = deploy_bench_api()
        gateway = LocalGateway.from_api(api_id, STAGE, port=0).start()

        # 6 first: the memory the other phases free would otherwise be reused, hiding growth.
        for _ in range(3):  # warm up: module import, worker threads, first allocations
            connect_times(gateway.url, 20, 0)
        _wait_until(lambda: not gateway.connections, 10)
        gw_kb, client_kb = idle_memory(gateway.url, sizes.idle,
                                       lambda: len(gateway.connections) >= sizes.idle)
        _wait_until(lambda: not gateway.connections, 30)
        raw_kb, _ = idle_memory(raw.url, sizes.idle, lambda: True)
        _line("memory per idle conn", f"gateway {gw_kb:.1f} KiB  raw websockets {raw_kb:.1f} KiB "
              f"(server RSS only; clients in a child process, {client_kb:.1f} KiB each there)")
        rows.append(Row(f"memory/idle conn ({sizes.idle})", f"{raw_kb:.1f} KiB",
                        f"{gw_kb:.1f} KiB", f"{gw_kb / raw_kb:.1f}x" if raw_kb > 0 else "n/a",
                        "<= 50 KB", gw_kb * 1024 <= 50_000))

        raw_echo = echo_round_trips(raw.url, sizes.echo, sizes.warmup)
        gw_echo = echo_round_trips(gateway.url, sizes.echo, sizes.warmup)
        ratio = statistics.median(gw_echo) / statistics.median(raw_echo)
        _line("echo round trip", f"raw {_latency(raw_echo)} | gateway {_latency(gw_echo)} | "
              f"median ratio {ratio:.2f}x")
        rows.append(Row(f"echo round trip ({sizes.echo})", _latency(raw_echo), _latency(gw_echo),
                        f"{ratio:.2f}x", "<= 1.5x raw", ratio <= 1.5))

        raw_rate = throughput(raw.url, sizes.clients, sizes.per_client)
        gw_rate = throughput(gateway.url, sizes.clients, sizes.per_client)
        ratio = gw_rate / raw_rate
        _line("throughput", f"raw {raw_rate:,.0f} msg/s | gateway {gw_rate:,.0f} msg/s | "
              f"ratio {ratio:.2f}x ({sizes.clients} clients x {sizes.per_client})")
        rows.append(Row(f"throughput ({sizes.clients} clients)", f"{raw_rate:,.0f} msg/s",
                        f"{gw_rate:,.0f} msg/s", f"{ratio:.2f}x", ">= 0.6x raw", ratio >= 0.6))

        pushes = push_latencies(gateway.url, sizes.push, sizes.warmup)
        ratio = statistics.median(pushes) / floor_median
        _line("push latency", f"gateway {_latency(pushes)} | vs boto3 floor median "
              f"{_ms(floor_median):.3f} ms: {ratio:.2f}x")
        rows.append(Row(f"push latency ({sizes.push})", "", _latency(pushes),
                        f"{ratio:.2f}x floor", "<= boto3 floor", ratio <= 1.0))

        raw_conn = connect_times(raw.url, sizes.connects, 10)
        gw_conn = connect_times(gateway.url, sizes.connects, 10)
        ratio = statistics.median(gw_conn) / statistics.median(raw_conn)
        _line("connect time", f"raw {_latency(raw_conn)} | gateway {_latency(gw_conn)} | "
              f"median ratio {ratio:.2f}x")
        rows.append(Row(f"connect ({sizes.connects})", _latency(raw_conn), _latency(gw_conn),
                        f"{ratio:.2f}x", "reported", None))

        _wait_until(lambda: not gateway.connections, 30)
        rate = connect_rate(gateway.url, sizes.connect_rate)
        _line("connect rate", f"{rate:,.0f} connections/s through the $connect Lambda")
        rows.append(Row(f"connect rate ({sizes.connect_rate})", "", f"{rate:,.0f}/s", "",
                        ">= 500/s", rate >= 500))

        _wait_until(lambda: not gateway.connections, 30)
        kinds, lost, growth = chat_load(gateway.url, sizes.chat_clients, sizes.chat_messages)
        errors = kinds.total()
        which = "".join(f" ({n} x {text!r})" for text, n in kinds.most_common())
        _line("chat load", f"{sizes.chat_clients} clients x {sizes.chat_messages} broadcasts: "
              f"{errors} error frames{which}, {lost} lost, RSS +{growth:.0f} MB")
        rows.append(Row(f"chat ({sizes.chat_clients}x{sizes.chat_messages}, to all)", "",
                        f"{errors} errors, {lost} lost, +{growth:.0f} MB", "",
                        "0, 0, <= 100 MB", errors == 0 and lost == 0 and growth <= 100))

        _wait_until(lambda: not gateway.connections, 30)
        fan = fan_out(gateway.url, sizes.fanout, sizes.fanout_rounds)
        budget = sizes.fanout * floor_median
        ratio = statistics.median(fan) / budget
        _line("fan-out", f"{sizes.fanout} clients: median {_ms(statistics.median(fan)):.1f} ms "
              f"p95 {_ms(p95(fan)):.1f} ms | {sizes.fanout} x floor = {_ms(budget):.1f} ms: "
              f"{ratio:.2f}x")
        rows.append(Row(f"fan-out ({sizes.fanout} conns)", "",
                        f"median {_ms(statistics.median(fan)):.1f} ms  "
                        f"p95 {_ms(p95(fan)):.1f} ms", f"{ratio:.2f}x budget",
                        f"<= {sizes.fanout} x floor", ratio <= 1.0))

        scan = dynamodb_scan_cost(sizes.fanout)
        _line("dynamodb scan (moto)", f"{sizes.fanout} items: {_latency(scan)} (not in the "
              "fan-out above, which reads an in-memory table; a handler that scans adds this)")
        rows.append(Row(f"moto DynamoDB scan ({sizes.fanout})", "", _latency(scan), "",
                        "reference", None))
        if gateway.internal_errors:
            print(f"gateway internal errors: {gateway.internal_errors[:3]}", flush=True)
    finally:
        if gateway is not None:
            gateway.stop(timeout=10)
        raw.stop()
        mock.stop()
    return rows


def dynamodb_scan_cost(items: int, repeats: int = 5) -> list[float]:
    """What a `scan` of `items` connection ids costs under moto (the samples' way)."""
    import boto3

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="bench_connections",
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in _bounded(items):
        dynamodb.put_item(TableName="bench_connections",
                          Item={"connectionId": {"S": f"conn-{i:05d}"}})
    times = []
    for _ in _bounded(repeats):
        started = time.perf_counter()
        dynamodb.scan(TableName="bench_connections", ProjectionExpression="connectionId")
        times.append(time.perf_counter() - started)
    return times


def print_table(rows: list[Row]) -> None:
    headers = ("metric", "raw websockets", "gateway", "ratio", "target", "result")
    table = [headers] + [(r.metric, r.raw, r.gateway, r.ratio, r.target, _verdict(r.ok))
                         for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    print()
    for n, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * width for width in widths))
    missed = [r.metric for r in rows if r.ok is False]
    print(f"\n{sum(r.ok is True for r in rows)} PASS, {len(missed)} MISS"
          + (f" ({', '.join(missed)})" if missed else ""), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway_bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--hold", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--open-close", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hold:
        hold_clients(args.hold[0], int(args.hold[1]))
        return 0
    if args.open_close:
        open_close(args.open_close[0], int(args.open_close[1]))
        return 0
    sizes = QUICK if args.quick else FULL
    print(f"gateway benchmark ({'quick' if args.quick else 'full'} run)", flush=True)
    started = time.perf_counter()
    rows = run(sizes)
    print_table(rows)
    print(f"took {time.perf_counter() - started:.1f} s; speed is reported, not asserted.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
