"""AWS's data plane for tests of the real-account code path: moto has none.

moto answers the control plane (create_api, create_deployment, ...). On AWS a deployed stage
is then served at `wss://{api}.execute-api.{region}.amazonaws.com/{stage}`, `@connections`
answers, and Lambda writes what a function prints to CloudWatch Logs. `AwsDataPlane` plays
that part for a test: it serves each stage with a local gateway started by the test (never by
the notebook, which gets `RealStage`), and `serving` sends websocket-client connections and
urllib requests for a stage URL there, as DNS and TLS would send them to AWS. It can also
play IAM's eventual consistency (`iam_lag`): a role's policy change that applies only once
the notebook has waited that long.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest
import websocket
from moto.iam.models import Role

from helpers.gateway import LocalGateway, moto_source
from helpers.gateway.clock import RealClock

_STAGE_URL = re.compile(
    r"^(?:wss|https)://(?P<api>[a-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com"
    r"/(?P<stage>[^/?#]+)(?P<rest>[/?#].*)?$")


class AwsClock(RealClock):
    """AWS's time for the stand-in stages: real time plus what the test skipped, so a cell
    that waits for the next real minute (lesson 08's rate limit) needs no real minute."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def time(self) -> float:  # type: ignore[override]
        return time.time() + self.skipped


class AwsDataPlane:
    """AWS's side of a deployed stage, for the test: a local gateway per stage, started on
    first use, its functions' output written to CloudWatch Logs (moto) as Lambda does."""

    def __init__(self) -> None:
        self.gateways: dict[tuple[str, str], LocalGateway] = {}
        self._copied: dict[int, int] = {}  # id(gateway) -> log entries copied so far
        self.clock = AwsClock()
        #: IAM's eventual consistency: a role's policy change ("put_policy", "delete_policy")
        #: applies once the notebook's thread has waited (time.sleep) this many seconds more
        #: (other threads' sleeps do not count: they would make it apply early); a change
        #: not named here applies at once, as moto does.
        self.iam_lag: dict[str, float] = {}
        self.waited = 0.0
        self._pending: list[tuple[float, Callable[[], None]]] = []

    def after_iam_lag(self, kind: str, change: Callable[[], None]) -> None:
        self._pending.append((self.waited + self.iam_lag.get(kind, 0.0), change))
        self.apply_due()

    def apply_due(self) -> None:
        due = [change for when, change in self._pending if when <= self.waited]
        self._pending = [(when, change) for when, change in self._pending if when > self.waited]
        for change in due:
            change()

    def serve(self, url: str) -> str | None:
        """The local URL answering for an AWS stage URL (None: not a stage URL)."""
        match = _STAGE_URL.match(url)
        if match is None:
            return None
        key = (match["api"], match["stage"])
        gateway = self.gateways.get(key)
        if gateway is None or not gateway.running:
            api_id, stage = key
            gateway = LocalGateway(lambda: moto_source.api_config(api_id, stage),
                                   revision=lambda: moto_source.revision(api_id, stage),
                                   clock=self.clock)
            self.gateways[key] = gateway.start()
        scheme = "ws" if url.startswith("wss") else "http"
        return f"{scheme}://{gateway.host}:{gateway.port}/{key[1]}{match['rest'] or ''}"

    def write_logs(self, **_: object) -> None:
        """Copy every finished invocation to `/aws/lambda/{function}` (botocore `before-call`
        handler for FilterLogEvents: CloudWatch has the lines before they are searched)."""
        logs = None  # made only when there is something to copy
        for gateway in list(self.gateways.values()):
            entries = gateway.log.invocations()
            for entry in entries[self._copied.get(id(gateway), 0):]:
                logs = logs or boto3.client("logs")
                group = f"/aws/lambda/{entry['function']}"
                with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                    logs.create_log_group(logGroupName=group)
                with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                    logs.create_log_stream(logGroupName=group, logStreamName="stream")
                # the runtime's lines (START, the output, END, REPORT), stamped when the
                # run started, as Lambda stamps them (the entry is made when it ends)
                started = int(entry.time * 1000 - entry.get("duration_ms", 0))
                logs.put_log_events(logGroupName=group, logStreamName="stream", logEvents=[
                    {"timestamp": started, "message": line + "\n"}
                    for line in _as_lambda_logs(entry["logs"])])
            self._copied[id(gateway)] = len(entries)

    def listen(self) -> None:
        """Hook `write_logs` into boto3's current default session (start_course makes one)."""
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.register(
                "before-call.cloudwatch-logs.FilterLogEvents", self.write_logs,
                unique_id="test-aws-data-plane-logs")

    def stop(self) -> None:
        for gateway in self.gateways.values():
            gateway.stop()


def _as_lambda_logs(lines: list[str]) -> list[str]:
    """A run's lines as CloudWatch Logs has them: the local gateway logs a timed-out run as
    its one "Task timed out" line, where Lambda writes it between START and END."""
    if not lines or lines[0].startswith("START RequestId: "):
        return lines
    request_id = str(uuid.uuid4())
    return [f"START RequestId: {request_id} Version: $LATEST",
            *(f"{request_id} {line}" for line in lines), f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}"]


class _StageHandler(urllib.request.BaseHandler):
    """urllib's https requests to a stage URL go to its local gateway (a probe's GET)."""

    def __init__(self, plane: AwsDataPlane):
        self.plane = plane

    def https_request(self, request: urllib.request.Request) -> urllib.request.Request:
        local = self.plane.serve(request.full_url)
        if local is not None:
            request.full_url = local
        return request

    https_open_order = 100


@contextlib.contextmanager
def serving(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsDataPlane]:
    """Connections and probes to stage URLs reach the data plane while this lasts."""
    plane = AwsDataPlane()
    connect = websocket.create_connection

    def create_connection(url: str, *args: object, **kwargs: object) -> websocket.WebSocket:
        return connect(plane.serve(url) or url, *args, **kwargs)

    monkeypatch.setattr(websocket, "create_connection", create_connection)
    real_sleep = time.sleep
    notebook_thread = threading.get_ident()  # the one whose waits let IAM catch up

    def sleep(seconds: float) -> None:
        """A notebook's wait of a minute or more (for AWS's clock) skips it instead."""
        if seconds >= 30:
            plane.clock.skipped += seconds
        else:
            real_sleep(seconds)
        if threading.get_ident() == notebook_thread:  # not the gateway's or a client's
            plane.waited += seconds
            plane.apply_due()

    monkeypatch.setattr(time, "sleep", sleep)
    put_policy, delete_policy = Role.put_policy, Role.delete_policy
    monkeypatch.setattr(Role, "put_policy", lambda role, name, document: plane.after_iam_lag(
        "put_policy", lambda: put_policy(role, name, document)))
    monkeypatch.setattr(Role, "delete_policy", lambda role, name: (
        plane.after_iam_lag("delete_policy", lambda: delete_policy(role, name))
        if name in role.policies
        else delete_policy(role, name)))  # moto's NoSuchEntity at once
    urllib.request.install_opener(urllib.request.build_opener(_StageHandler(plane)))
    try:
        yield plane
    finally:
        urllib.request.install_opener(None)
        plane.stop()
