"""What `LocalGateway.from_api` gives while the course runs on a real AWS account.

There is no local gateway to start there: API Gateway serves the deployed stage at its
`wss://` URL. The stand-in keeps the few parts of a gateway that mean something on AWS
(`url`, `start`/`stop`, `show_log`, `log.wait_for_invocations`), reads the functions'
CloudWatch Logs for them, and answers anything else (the local event log, the virtual
clock, forced drops) with `OfflineOnly`, which says what to do on AWS instead.
"""

from __future__ import annotations

import time
from typing import Any

import boto3

from helpers.gateway.clock import VirtualClock
from helpers.lessons.real_aws import now_ms, recent_logs

#: How long to wait for CloudWatch Logs: lines arrive seconds after the function ran.
LOG_DELAY = 60.0

_NO_VIRTUAL_TIME = (
    "a virtual clock drives the local gateway only: on AWS time passes for real (10 idle "
    "minutes, 2 hours), so this demonstration is offline only; leave a wscat session open "
    "that long to see it")


class OfflineOnly(RuntimeError):
    """A local-gateway feature with no AWS counterpart; the message says what to do there."""


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

    def wait_for_invocations(self, route: str, count: int = 1,
                             timeout: float = 5.0) -> list[str]:
        """Block until `route`'s function has started `count` times (its `START RequestId`
        lines in CloudWatch, which arrive late: at least `LOG_DELAY` s are allowed)."""
        deadline = time.monotonic() + max(timeout, LOG_DELAY)
        while True:
            starts = [line for line in self.lines(route) if line.startswith("START ")]
            if len(starts) >= count:
                return starts
            if time.monotonic() > deadline:
                raise TimeoutError(f"CloudWatch Logs shows {len(starts)} run(s) of {route!r}, "
                                   f"not {count}, after {max(timeout, LOG_DELAY):.0f} s")
            time.sleep(3)  # polling an outside service: CloudWatch has no push

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy, pickle, IPython's display probes
            raise AttributeError(name)
        raise OfflineOnly(
            f"gateway.log.{name} reads the local gateway's own record, which AWS does not "
            "keep: gateway.show_log(logs=True) prints what the functions wrote to CloudWatch "
            "Logs (enable the stage's execution logging to see API Gateway's side)")


class RealStage:
    """A deployed stage on AWS, in the shape of the `LocalGateway` the lessons start."""

    def __init__(self, api_id: str, stage: str, *, redactor: Any = None,
                 clock: Any = None, **_options: Any):
        endpoint = boto3.client("apigatewayv2").get_api(ApiId=api_id)["ApiEndpoint"]
        self.api_id, self.stage, self.redactor = api_id, stage, redactor
        self.url = f"{endpoint}/{stage}"
        self.callback_url = self.url.replace("wss://", "https://", 1)
        self.log = CloudWatchLog(api_id)
        if isinstance(clock, VirtualClock):
            clock.refuse(_NO_VIRTUAL_TIME)  # the cell's own `clock` drives nothing here
        self.clock = clock

    def start(self) -> RealStage:
        return self  # API Gateway serves a deployed stage already

    def stop(self, timeout: float = 10.0) -> None:
        """Nothing to stop: the clean-up cell deletes the API itself."""

    def show_log(self, *kinds: str, logs: bool = False, title: str | None = None) -> None:
        """Print each function's CloudWatch Logs lines since the stage was served."""
        print(title or f"CloudWatch Logs of {self.url}")
        for route, function in route_functions(self.api_id).items():
            lines = recent_logs(function, self.log.since)
            print(f"  {route} (/aws/lambda/{function}): {len(lines)} line(s)")
            for line in lines[-20:]:
                print("    " + (self.redactor.text(line) if self.redactor else line))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise OfflineOnly(
            f"gateway.{name} belongs to the local gateway; on AWS, API Gateway runs the stage "
            f"at {self.url}: connect to it, and read the functions' logs with "
            "gateway.show_log(logs=True)")

    def __repr__(self) -> str:
        return f"RealStage({self.url})"


__all__ = ["LOG_DELAY", "CloudWatchLog", "OfflineOnly", "RealStage", "route_functions"]
