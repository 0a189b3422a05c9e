"""What `LocalGateway.from_api` gives while the course runs on a real AWS account.

There is no local gateway to start there: API Gateway serves the deployed stage at its
`wss://` URL. The stand-in keeps the few parts of a gateway that mean something on AWS
(`url`, `callback_url`, `config`, `start`/`stop`, `show_log`, `log.invocations`,
`log.wait_for_invocations`), reads the functions' CloudWatch Logs for them, waits until a new
stage answers (`wait_until_served`), and answers anything else (the local event log, open
connections, the virtual clock, forced drops) with `OfflineOnly`, which says what to do on
AWS instead.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from types import SimpleNamespace
from typing import Any

import boto3

from helpers.gateway.clock import VirtualClock
from helpers.lessons.real_aws import now_ms, recent_logs

#: How long to wait for CloudWatch Logs: lines arrive seconds after the function ran.
LOG_DELAY = 60.0

#: How long a new stage or deployment may take to answer (docs/aws-behaviour.md §1.5a).
PROPAGATION_TIMEOUT = 60.0

_NO_VIRTUAL_TIME = (
    "a virtual clock drives the local gateway only: on AWS time passes for real (10 idle "
    "minutes, 2 hours), so this demonstration is offline only; leave a wscat session open "
    "that long to see it")


class OfflineOnly(RuntimeError):
    """A local-gateway feature with no AWS counterpart; the message says what to do there.

    `note`, if given, is the short reason a graded check prints when it cannot run on AWS
    (helpers.checks.checking)."""

    def __init__(self, message: str, *, note: str | None = None):
        super().__init__(message)
        self.note = note


def route_functions(api_id: str) -> dict[str, str]:
    """Route key -> the Lambda function behind it (`$connect (authorizer)` included)."""
    apigw = boto3.client("apigatewayv2")
    integrations = {i["IntegrationId"]: i.get("IntegrationUri", "")
                    for i in apigw.get_integrations(ApiId=api_id)["Items"]}
    uris = {}
    for route in apigw.get_routes(ApiId=api_id)["Items"]:
        uris[route["RouteKey"]] = integrations.get(route.get("Target", "").split("/")[-1], "")
        if route.get("AuthorizerId"):
            uris[f"{route['RouteKey']} (authorizer)"] = apigw.get_authorizer(
                ApiId=api_id, AuthorizerId=route["AuthorizerId"]).get("AuthorizerUri", "")
    return {key: _function_name(uri) for key, uri in sorted(uris.items())
            if ":function:" in uri}


def _function_name(integration_uri: str) -> str:
    # arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function arn}/invocations
    return integration_uri.split(":function:", 1)[1].split("/")[0].split(":")[0]


def stage_answers(url: str) -> bool:
    """Whether API Gateway serves the stage at `url` (wss:// or https://) yet.

    A plain GET without `Upgrade` gets 426 from a live WebSocket stage (docs/aws-behaviour.md
    §1.6), and runs no route: no `$connect`, nothing in the functions' logs. Before the stage
    is served: 403 or 404, or no DNS name yet for a new API.
    """
    try:
        urllib.request.urlopen(url.replace("wss://", "https://", 1), timeout=10).close()
    except urllib.error.HTTPError as answer:
        return answer.code == 426
    except OSError:  # URLError included: DNS, refused, timed out
        return False
    return True


def wait_until_served(url: str, timeout: float = PROPAGATION_TIMEOUT) -> bool:
    """Poll `stage_answers` with backoff (0.5 s, doubling, at most 8 s) for up to `timeout` s.

    A stage or deployment just created can take seconds to answer (§1.5a). False if it
    never did: the caller says so, and a connection made then may be refused.
    """
    deadline, pause = time.monotonic() + timeout, 0.5
    while not stage_answers(url):
        if time.monotonic() + pause > deadline:
            return False
        time.sleep(pause)  # polling an outside service that has no "ready" event
        pause = min(pause * 2, 8.0)
    return True


class Invocation(dict):
    """One run of a function as CloudWatch Logs shows it: `route`, `function`,
    `request_id`, `logs` (START to REPORT), and `error`: the runtime's `[ERROR]` line for an
    unhandled exception, "function-timeout" for "Task timed out", else None. The local log's
    other keys (result, outcome, connection id) are not in CloudWatch: asking for one
    raises `OfflineOnly`."""

    def __missing__(self, key: str) -> Any:
        raise OfflineOnly(
            f"an invocation's {key!r} is in the local gateway's record only; on AWS, "
            "CloudWatch Logs keeps what the function printed (its 'logs'), and the "
            "stage's execution logging (when enabled) what API Gateway did")


def invocations_in(lines: list[str], route: str, function: str) -> list[Invocation]:
    """Split a function's log lines into runs, at each `START RequestId: ...`."""
    runs: list[Invocation] = []
    for line in lines:
        if line.startswith("START RequestId: "):
            request_id = line.split()[2]
            runs.append(Invocation(route=route, function=function, request_id=request_id,
                                   logs=[]))
        if runs:
            runs[-1]["logs"].append(line)
    for run in runs:
        errors = [line.removeprefix("[ERROR] ") for line in run["logs"]
                  if line.startswith("[ERROR] ")]
        timed_out = any("Task timed out after" in line for line in run["logs"])
        run["error"] = "function-timeout" if timed_out else (errors[0] if errors else None)
    return runs


class CloudWatchLog:
    """The stage's functions' log lines since it was served (or since `clear`)."""

    def __init__(self, api_id: str):
        self._api_id = api_id
        self.since = now_ms()

    def clear(self) -> None:
        self.since = now_ms()

    def lines(self, route: str) -> list[str]:
        function = route_functions(self._api_id).get(route)
        return recent_logs(function, self.since) if function else []

    def invocations(self, route: str | None = None) -> list[Invocation]:
        """The runs of `route`'s function (None: every route's) CloudWatch Logs shows now.

        Lines arrive seconds late: `wait_for_invocations` first, to count on them."""
        functions = route_functions(self._api_id)
        keys = [route] if route is not None else list(functions)
        return [run for key in keys if key in functions
                for run in invocations_in(recent_logs(functions[key], self.since), key,
                                          functions[key])]

    def wait_for_invocations(self, route: str, count: int = 1,
                             timeout: float = 5.0) -> list[str]:
        """Block until `route`'s function has finished `count` runs, and return them (their
        `END RequestId` lines in CloudWatch arrive late: at least `LOG_DELAY` s allowed)."""
        deadline = time.monotonic() + max(timeout, LOG_DELAY)
        while True:
            finished = [run for run in self.invocations(route)
                        if any(line.startswith("END RequestId") for line in run["logs"])]
            if len(finished) >= count:
                return finished
            if time.monotonic() > deadline:
                raise TimeoutError(f"CloudWatch Logs shows {len(finished)} run(s) of {route!r}, "
                                   f"not {count}, after {max(timeout, LOG_DELAY):.0f} s")
            time.sleep(3)  # polling an outside service: CloudWatch has no push

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy, pickle, IPython's display probes
            raise AttributeError(name)
        raise self._local_only(f"gateway.log.{name}")

    def __iter__(self) -> Any:
        raise self._local_only("the entries of gateway.log")

    def __len__(self) -> int:
        raise self._local_only("the length of gateway.log")

    @staticmethod
    def _local_only(what: str) -> OfflineOnly:
        return OfflineOnly(
            f"{what}: the local gateway's own record, which AWS does not keep: "
            "gateway.show_log(logs=True) prints what the functions wrote to CloudWatch "
            "Logs (enable the stage's execution logging to see API Gateway's side)")


class RealStage:
    """A deployed stage on AWS, in the shape of the `LocalGateway` the lessons start."""

    idle_timeout = 600.0  # AWS's quotas, not settable (docs/aws-behaviour.md §5)
    max_lifetime = 7200.0

    def __init__(self, api_id: str, stage: str, *, redactor: Any = None,
                 clock: Any = None, **_options: Any):
        endpoint = boto3.client("apigatewayv2").get_api(ApiId=api_id)["ApiEndpoint"]
        self.api_id, self.stage, self.redactor = api_id, stage, redactor
        self.url = f"{endpoint}/{stage}"
        self.callback_url = self.url.replace("wss://", "https://", 1)
        self.http_url = self.callback_url  # on AWS, @connections over HTTP is this URL
        self.config = SimpleNamespace(api_id=api_id, stage=stage,
                                      callback_url=self.callback_url)
        self.log = CloudWatchLog(api_id)
        if isinstance(clock, VirtualClock):
            clock.refuse(_NO_VIRTUAL_TIME)  # the cell's own `clock` drives nothing here
        self.clock = clock

    def start(self) -> RealStage:
        """API Gateway serves a deployed stage: wait until it answers (a new one takes a
        few seconds, §1.5a)."""
        if not wait_until_served(self.url):
            print(f"{self._shown(self.url)} did not answer within {PROPAGATION_TIMEOUT:.0f} s "
                  "of deployment; if a connection is refused, wait a minute and run it again")
        return self

    def __enter__(self) -> RealStage:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _shown(self, text: str) -> str:
        return self.redactor.text(text) if self.redactor else text

    def stop(self, timeout: float = 10.0) -> None:
        """Nothing to stop: the clean-up cell deletes the API itself."""

    def show_log(self, *kinds: str, logs: bool = False, title: str | None = None) -> None:
        """Print each function's CloudWatch Logs lines since the stage was served."""
        print(title or f"CloudWatch Logs of {self._shown(self.url)}")
        for route, function in route_functions(self.api_id).items():
            lines = recent_logs(function, self.log.since)
            print(f"  {route} (/aws/lambda/{function}): {len(lines)} line(s)")
            for line in lines[-20:]:
                print("    " + self._shown(line))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise OfflineOnly(
            f"gateway.{name} belongs to the local gateway; on AWS, API Gateway runs the stage "
            f"at {self.url}: connect to it, and read the functions' logs with "
            "gateway.show_log(logs=True)")

    def __repr__(self) -> str:
        return f"RealStage({self.url})"


__all__ = ["LOG_DELAY", "PROPAGATION_TIMEOUT", "CloudWatchLog", "Invocation", "OfflineOnly",
           "RealStage", "invocations_in", "route_functions", "stage_answers",
           "wait_until_served"]
