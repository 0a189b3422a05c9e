"""Lesson 09's switch between the offline course (moto) and a real AWS account.

Off by default, and never on in CI: only `COURSE_REAL_AWS=1` in the environment of the
Jupyter server turns it on. Then nothing is faked: boto3 takes credentials from its standard
chain (environment, `~/.aws`, SSO, instance roles), the region from the profile, and nothing
is created until `COURSE_CONFIRM_ACCOUNT` names the account id that `open_account` shows.
Everything the course creates carries the tag `course=apigw-websockets`, and
`delete_course_resources` finds it again by that tag, in any order, as often as you like.

Lessons 02-08 use the same switch through `helpers.aws.start_course`: while it is on, every
boto3 `Create*` call that accepts tags gets the course's tag added on its way out (a botocore
`before-parameter-build` hook, `add_course_tags`), so the cells stay the plain boto3 calls
they teach; calls that leave a resource not yet usable on AWS (a new table or function, a
function update, a role Lambda cannot assume yet, a new deployment) return once it is
(`settle`, `retry_unassumable_role`, `settle_deployment`); and `LocalGateway.from_api` returns
the deployed stage's stand-in (`helpers.lessons.real_stage`) instead of starting a local
gateway.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

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
        """End the lesson's account. Offline: moto forgets everything. Real: everything the
        course tagged is deleted (`delete_course_resources`), and the switch's hooks come
        off. Safe to call again."""
        if self.mock is not None:
            self.mock.stop()
            return
        deleted = delete_course_resources()
        print(f"deleted {len(deleted)} resource(s) tagged {_tag_text()}:",
              ", ".join(f"{r['kind']} {r['name']}" for r in deleted) or "none left")
        _unhook()


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


# While the switch is on: tags on everything, waits for what AWS makes ready later ------

def _tag_text() -> str:
    return ", ".join(f"{k}={v}" for k, v in TAGS.items())


def add_course_tags(params: dict, model: Any, **_: Any) -> None:
    """botocore `before-parameter-build` handler: put the course's tags on a Create* call.

    Whatever the service spells them (`Tags` or `tags`, a map or a list of Key/Value
    pairs), if the operation's input has such a member; tags the call already has win.
    Other shapes (a list of `key`/`value`, of strings) are left alone.
    """
    shape = model.input_shape
    if not model.name.startswith("Create") or shape is None:
        return
    for key in ("Tags", "tags"):
        member = shape.members.get(key)
        if member is None:
            continue
        if member.type_name == "map":
            params[key] = {**TAGS, **params.get(key, {})}
        elif member.type_name == "list" and {"Key", "Value"} <= set(
                getattr(member.member, "members", {})):
            present = params.get(key, [])
            have = {tag.get("Key") for tag in present}
            params[key] = [*present, *({"Key": k, "Value": v}
                                       for k, v in TAGS.items() if k not in have)]


def retry_unassumable_role(response: Any, operation: Any, attempts: int,
                           **_: Any) -> float | None:
    """botocore `needs-retry` handler: wait 2 s and retry `CreateFunction` while Lambda
    cannot yet assume a role created a moment ago (IAM is eventually consistent:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html), up to
    10 attempts. moto never refuses, so offline this never fires."""
    if operation.name != "CreateFunction" or response is None or attempts >= 10:
        return None
    error = response[1].get("Error", {})
    refused = error.get("Code") == "InvalidParameterValueException" \
        and "cannot be assumed" in error.get("Message", "")
    return 2.0 if refused else None


#: (service, operation) -> the waiter that says the resource is ready, its argument, and the
#: answer's field and value that already say so.
_SETTLE = {
    ("dynamodb", "CreateTable"): ("table_exists", "TableName", ("TableStatus", "ACTIVE")),
    ("lambda", "CreateFunction"): ("function_active_v2", "FunctionName", ("State", "Active")),
    ("lambda", "UpdateFunctionCode"): ("function_updated_v2", "FunctionName",
                                       ("LastUpdateStatus", "Successful")),
    ("lambda", "UpdateFunctionConfiguration"): ("function_updated_v2", "FunctionName",
                                                ("LastUpdateStatus", "Successful")),
}


def settle(parsed: dict, model: Any, **_: Any) -> None:
    """botocore `after-call` handler: return only once what the call made is ready.

    On AWS a new table is CREATING, a new function Pending, an updated one InProgress for a
    few seconds (the answer says so); a cell that uses it at once (a handler writing to the
    table, a second update of the function) would fail. An answer that already says ACTIVE,
    Active or Successful (moto's, always) needs no waiter.
    """
    service = model.service_model.service_name
    waiter, key, (field, ready) = _SETTLE[(service, model.name)]
    described = parsed.get("TableDescription") or parsed
    name = described.get(key)
    if "Error" not in parsed and name and described.get(field) != ready:
        boto3.client(service).get_waiter(waiter).wait(**{key: name})


def note_deployment(params: dict, model: Any, context: dict, **_: Any) -> None:
    """botocore `before-parameter-build` handler: remember which stage a `CreateDeployment`
    deploys to, for `settle_deployment` (its answer names only the deployment)."""
    if model.name == "CreateDeployment" and params.get("StageName"):
        context["course_stage"] = (params["ApiId"], params["StageName"])


def settle_deployment(parsed: dict, context: dict, **_: Any) -> None:
    """botocore `after-call` handler: return once the stage serves the new deployment.

    A stage answers a few seconds after it is created or redeployed (docs/aws-behaviour.md
    §1.5a): first `get_stage` must name the new deployment, then the stage's URL must
    answer (`wait_until_served`), both polled with backoff, bounded. A redeployed stage
    already answered with the old deployment, so its first seconds may still serve it.
    """
    from helpers.lessons.real_stage import PROPAGATION_TIMEOUT, wait_until_served

    if "Error" in parsed or "course_stage" not in context:
        return
    api_id, stage = context["course_stage"]
    apigw = boto3.client("apigatewayv2")
    deadline, pause = time.monotonic() + PROPAGATION_TIMEOUT, 0.5
    while apigw.get_stage(ApiId=api_id, StageName=stage).get("DeploymentId") \
            != parsed.get("DeploymentId") and time.monotonic() < deadline:
        time.sleep(pause)  # polling AWS: the stage has no "updated" event
        pause = min(pause * 2, 8.0)
    endpoint = apigw.get_api(ApiId=api_id)["ApiEndpoint"]
    wait_until_served(f"{endpoint}/{stage}", max(deadline - time.monotonic(), 1.0))


_real_on = False  # the hooks are on: lessons 02-08 run on the confirmed real account


def on_real_account() -> bool:
    """Whether lessons 02-08 run on the confirmed real account now (the hooks are on)."""
    return _real_on


#: How long a cell waits, at most, for IAM to apply a policy change (docs §6.3a).
IAM_SETTLE_TIMEOUT = 60.0


def until_iam_applies(timeout: float = IAM_SETTLE_TIMEOUT) -> Iterator[int]:
    """Attempts at something that depends on a policy change just made:
    ``for attempt in until_iam_applies(): ...; if it_applied: break``.

    Offline a change applies at once: one attempt. On a real account IAM is eventually
    consistent (docs/aws-behaviour.md §6.3a): attempts follow with pauses doubling from 0.5 s
    to 8 s, for at most `timeout` seconds."""
    yield 0
    if not _real_on:
        return
    deadline, pause, attempt = time.monotonic() + timeout, 0.5, 0
    while time.monotonic() + pause <= deadline:
        time.sleep(pause)
        attempt += 1
        yield attempt
        pause = min(pause * 2, 8.0)


def offline_only(on_aws: str) -> bool:
    """For a cell whose demonstration exists only offline (a virtual clock, a forced drop).

    Offline: True, run the cell. On a real account: prints what to do on AWS instead and
    returns False, so ``if offline_only("..."):`` skips the cell's body visibly.
    """
    if _real_on:
        print("offline only, skipped on AWS:", on_aws)
    return not _real_on


_HOOKS = (("before-parameter-build", add_course_tags, "course-tags"),
          ("needs-retry.lambda.CreateFunction", retry_unassumable_role, "course-role-retry"),
          ("before-parameter-build.apigatewayv2.CreateDeployment", note_deployment,
           "course-note-deployment"),
          ("after-call.apigatewayv2.CreateDeployment", settle_deployment,
           "course-settle-deployment"),
          *((f"after-call.{service}.{operation}", settle, f"course-settle-{operation}")
            for service, operation in _SETTLE))


def _hook() -> None:
    """Register the switch's hooks on boto3's default session (what `boto3.client` uses)."""
    from helpers.gateway import server
    from helpers.lessons.real_stage import RealStage

    global _real_on
    boto3.setup_default_session()  # a fresh session: clients made from now on carry the hooks
    for event, handler, unique_id in _HOOKS:
        boto3.DEFAULT_SESSION.events.register(event, handler, unique_id=unique_id)
    server.serve_elsewhere(RealStage)
    _real_on = True


def _unhook() -> None:
    global _real_on
    from helpers.gateway import server

    _real_on = False
    if boto3.DEFAULT_SESSION is not None:
        for event, _handler, unique_id in _HOOKS:
            boto3.DEFAULT_SESSION.events.unregister(event, unique_id=unique_id)
    server.serve_elsewhere(None)


def start_course(environ: dict[str, str] | None = None) -> Account:
    """The setup cell's account for lessons 02-08: moto offline, or the confirmed real one.

    Real: prints which account and region (nothing is created before `COURSE_CONFIRM_ACCOUNT`
    names it), deletes what an earlier run of the course left there (as the offline setup
    starts from an empty account), and turns the hooks on: every Create* call tagged, and
    `LocalGateway.from_api` answering with the real stage's stand-in. Offline: exactly
    `start_moto()`, and silent.
    """
    from helpers.offline import allow_online

    if not real_requested(environ):
        _unhook()
        return open_account(environ)
    account = open_account(environ)  # raises NotConfirmed (creating nothing) until confirmed
    allow_online()  # an earlier clean-up cell blocked AWS hosts: this is the way back in
    print(account.describe())
    print("cost: API Gateway per message and connection-minute, Lambda per request, DynamoDB "
          "on demand; cents for a lesson, nothing once the clean-up cell has run")
    left = delete_course_resources()
    if left:
        print(f"deleted {len(left)} resource(s) an earlier run left, tagged {_tag_text()}")
    _hook()
    return account


# Finding and deleting what the course made --------------------------------------------

def _tagged(tags: dict[str, str] | None) -> bool:
    return bool(tags) and all(tags.get(k) == v for k, v in TAGS.items())


@dataclass
class _Clients:
    """The clients that find and delete the course's resources, made once per call (a boto3
    client takes milliseconds of CPU to build). The API client retries throttled calls with
    backoff (botocore's standard mode, 10 retries): deleting a dozen APIs at once can be
    throttled (TooManyRequestsException)."""

    apigw: Any = field(default_factory=lambda: boto3.client(
        "apigatewayv2", config=Config(retries={"mode": "standard", "max_attempts": 10})))
    lam: Any = field(default_factory=lambda: boto3.client("lambda"))
    dynamodb: Any = field(default_factory=lambda: boto3.client("dynamodb"))
    iam: Any = field(default_factory=lambda: boto3.client("iam"))


def course_resources() -> list[dict[str, str]]:
    """Every resource carrying the course's tag: APIs, functions, tables, roles."""
    return _find(_Clients())


def _find(clients: _Clients) -> list[dict[str, str]]:
    found = []
    apigw, lam, dynamodb, iam = clients.apigw, clients.lam, clients.dynamodb, clients.iam
    for api in apigw.get_apis().get("Items", []):
        if _tagged(api.get("Tags")):
            found.append({"kind": "API", "name": api["Name"], "id": api["ApiId"]})
    for page in lam.get_paginator("list_functions").paginate():
        for fn in page["Functions"]:
            if _tagged(lam.list_tags(Resource=fn["FunctionArn"]).get("Tags")):
                found.append({"kind": "function", "name": fn["FunctionName"],
                              "id": fn["FunctionArn"]})
    for page in dynamodb.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
            tags = dynamodb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])
            if _tagged({t["Key"]: t["Value"] for t in tags}):
                found.append({"kind": "table", "name": name, "id": arn})
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            tags = iam.list_role_tags(RoleName=role["RoleName"]).get("Tags", [])
            if _tagged({t["Key"]: t["Value"] for t in tags}):
                found.append({"kind": "role", "name": role["RoleName"], "id": role["Arn"]})
    return found


def delete_course_resources() -> list[dict[str, str]]:
    """Delete everything `course_resources` finds (APIs first: they call the functions)."""
    deleted = []
    clients = _Clients()
    apigw, lam, dynamodb, iam = clients.apigw, clients.lam, clients.dynamodb, clients.iam
    logs = None
    order = {"API": 0, "function": 1, "table": 2, "role": 3}
    for resource in sorted(_find(clients), key=lambda r: order[r["kind"]]):
        kind, name = resource["kind"], resource["name"]
        if kind == "API":
            apigw.delete_api(ApiId=resource["id"])
        elif kind == "function":
            lam.delete_function(FunctionName=name)
            logs = logs or boto3.client("logs")
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


__all__ = ["CONFIRM", "SWITCH", "TAGS", "Account", "NotConfirmed", "add_course_tags",
           "course_resources", "delete_course_resources", "now_ms", "offline_only",
           "on_real_account",
           "open_account", "real_requested", "recent_logs",
           "retry_unassumable_role", "settle", "settle_deployment", "start_course",
           "until_iam_applies"]
