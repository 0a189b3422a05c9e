"""Lesson 09's switch between the offline course (moto) and a real AWS account.

Off by default, and never on in CI: only `COURSE_REAL_AWS=1` in the environment of the
Jupyter server turns it on. Then nothing is faked: boto3 takes credentials from its standard
chain (environment, `~/.aws`, SSO, instance roles), the region from the profile, and nothing
is created until `COURSE_CONFIRM_ACCOUNT` names the account id that `open_account` shows.
Everything the course creates carries the tag `course=apigw-websockets`, and
`delete_course_resources` finds it again by that tag, in any order, as often as you like.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

import boto3

SWITCH = "COURSE_REAL_AWS"
CONFIRM = "COURSE_CONFIRM_ACCOUNT"
TAGS = {"course": "apigw-websockets"}


class NotConfirmed(RuntimeError):
    """The real account was not confirmed: nothing has been created."""


@dataclass
class Account:
    """Where the lesson's boto3 calls go."""

    real: bool
    account_id: str
    region: str
    mock: object | None = field(default=None, repr=False)  # moto's mock when offline

    def describe(self) -> str:
        where = "a REAL AWS account" if self.real else "moto, in memory (offline)"
        return f"boto3 talks to {where}: account {self.account_id}, region {self.region}"

    def stop(self) -> None:
        if self.mock is not None:
            self.mock.stop()


def real_requested(environ: dict[str, str] | None = None) -> bool:
    """Whether the learner switched the real account on (exactly `COURSE_REAL_AWS=1`)."""
    return (environ if environ is not None else os.environ).get(SWITCH) == "1"


def open_account(environ: dict[str, str] | None = None) -> Account:
    """Offline: start moto. Real: identify the account and insist on its confirmation."""
    environ = environ if environ is not None else dict(os.environ)
    if not real_requested(environ):
        from helpers.aws import start_moto

        mock = start_moto()
        region = boto3.session.Session().region_name
        account_id = boto3.client("sts").get_caller_identity()["Account"]
        return Account(False, account_id, region, mock)
    if environ.get("CI"):
        raise NotConfirmed(f"{SWITCH}=1 under CI: the course never touches a real account in "
                           "CI; unset it (CI runs this code path against moto instead)")
    session = boto3.session.Session()
    if session.region_name is None:
        raise NotConfirmed("no region: set AWS_DEFAULT_REGION (e.g. eu-west-1) or a profile's "
                           "region, then run this cell again")
    identity = session.client("sts").get_caller_identity()
    account_id = identity["Account"]
    if environ.get(CONFIRM) != account_id:
        raise NotConfirmed(
            f"about to create resources in account {account_id} ({identity['Arn']}), region "
            f"{session.region_name}. If that is right, set {CONFIRM}={account_id} for the "
            "Jupyter server and run this cell again; nothing has been created.")
    return Account(True, account_id, session.region_name)


# Finding and deleting what the course made --------------------------------------------

def _tagged(tags: dict[str, str] | None) -> bool:
    return bool(tags) and all(tags.get(k) == v for k, v in TAGS.items())


def course_resources() -> list[dict[str, str]]:
    """Every resource carrying the course's tag: APIs, functions, tables, roles."""
    found = []
    apigw = boto3.client("apigatewayv2")
    for api in apigw.get_apis().get("Items", []):
        if _tagged(api.get("Tags")):
            found.append({"kind": "API", "name": api["Name"], "id": api["ApiId"]})
    lam = boto3.client("lambda")
    for page in lam.get_paginator("list_functions").paginate():
        for fn in page["Functions"]:
            if _tagged(lam.list_tags(Resource=fn["FunctionArn"]).get("Tags")):
                found.append({"kind": "function", "name": fn["FunctionName"],
                              "id": fn["FunctionArn"]})
    dynamodb = boto3.client("dynamodb")
    for page in dynamodb.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
            tags = dynamodb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])
            if _tagged({t["Key"]: t["Value"] for t in tags}):
                found.append({"kind": "table", "name": name, "id": arn})
    iam = boto3.client("iam")
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            tags = iam.list_role_tags(RoleName=role["RoleName"]).get("Tags", [])
            if _tagged({t["Key"]: t["Value"] for t in tags}):
                found.append({"kind": "role", "name": role["RoleName"], "id": role["Arn"]})
    return found


def delete_course_resources() -> list[dict[str, str]]:
    """Delete everything `course_resources` finds (APIs first: they call the functions)."""
    deleted = []
    apigw, lam = boto3.client("apigatewayv2"), boto3.client("lambda")
    dynamodb, iam, logs = boto3.client("dynamodb"), boto3.client("iam"), boto3.client("logs")
    order = {"API": 0, "function": 1, "table": 2, "role": 3}
    for resource in sorted(course_resources(), key=lambda r: order[r["kind"]]):
        kind, name = resource["kind"], resource["name"]
        if kind == "API":
            apigw.delete_api(ApiId=resource["id"])
        elif kind == "function":
            lam.delete_function(FunctionName=name)
            with contextlib.suppress(logs.exceptions.ResourceNotFoundException):
                logs.delete_log_group(logGroupName=f"/aws/lambda/{name}")  # Lambda made it
        elif kind == "table":
            dynamodb.delete_table(TableName=name)
        else:
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                iam.delete_role_policy(RoleName=name, PolicyName=policy)
            for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
            iam.delete_role(RoleName=name)
        deleted.append({"kind": kind, "name": name})
    return deleted


def recent_logs(function_name: str, since_ms: int, pattern: str = "") -> list[str]:
    """What a function printed since `since_ms` (epoch ms), from CloudWatch Logs.

    On AWS, Lambda writes to the log group `/aws/lambda/{function}`; `filter_log_events`
    searches all its streams. Offline there is no such group (the local gateway keeps the
    lines in `gateway.show_log(logs=True)`), and the answer is empty.
    """
    logs = boto3.client("logs")
    try:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=f"/aws/lambda/{function_name}", startTime=since_ms,
            filterPattern=pattern)
        return [event["message"].rstrip("\n") for page in pages for event in page["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


def now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["CONFIRM", "SWITCH", "TAGS", "Account", "NotConfirmed", "course_resources",
           "delete_course_resources", "now_ms", "open_account", "real_requested", "recent_logs"]
