"""The real-account code path of lessons 02-09, run against moto with no local gateway.

Never AWS: moto answers every call. The switch is off unless COURSE_REAL_AWS=1; the real path
must confirm the account before creating anything, tag everything it creates, and find and
delete it all again by tag. For lessons 02-08 the tests here run the notebooks' own setup
and deploy cells; tests/test_real_aws_notebooks.py runs every cell. Deployed stages answer at
their AWS URLs through tests/aws_data_plane.py (moto has no data plane).
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from IPython.display import display

from helpers.aws import deploy_websocket_api
from helpers.gateway import LocalGateway, VirtualClock, registry, server
from helpers.lessons import real_aws
from helpers.lessons.capstone import deploy_chat
from helpers.lessons.real_aws import (
    CONFIRM,
    SWITCH,
    TAGS,
    NotConfirmed,
    course_resources,
    delete_course_resources,
    now_ms,
    offline_only,
    open_account,
    real_requested,
    recent_logs,
    retry_unassumable_role,
    start_course,
)
from helpers.lessons.real_stage import (
    OfflineOnly,
    RealStage,
    invocations_in,
    route_functions,
    stage_answers,
    wait_until_served,
)
from tests.aws_data_plane import serving

MOTO_ACCOUNT = "123456789012"
REAL = {SWITCH: "1", CONFIRM: MOTO_ACCOUNT}


@pytest.mark.parametrize("value", [None, "", "0", "true", "yes"])
def test_the_switch_is_off_unless_exactly_1(value):
    assert not real_requested({} if value is None else {SWITCH: value})
    assert real_requested({SWITCH: "1"})


def test_the_real_path_creates_nothing_until_the_account_is_confirmed(aws):
    with pytest.raises(NotConfirmed, match=f"account {MOTO_ACCOUNT}.*{CONFIRM}={MOTO_ACCOUNT}"):
        open_account({SWITCH: "1"})
    with pytest.raises(NotConfirmed):
        open_account({SWITCH: "1", CONFIRM: "999999999999"})
    assert course_resources() == []
    assert boto3.client("dynamodb").list_tables()["TableNames"] == []


def test_the_real_path_refuses_to_run_under_ci(aws):
    with pytest.raises(NotConfirmed, match="CI"):
        open_account({**REAL, "CI": "true"})


def test_the_real_path_deploys_tagged_resources_and_deletes_them_by_tag(aws):
    account = open_account(REAL)
    assert account.real and account.account_id == MOTO_ACCOUNT and account.mock is None
    chat = deploy_chat("course-chat", tags=TAGS)
    assert registry.lookup(chat.api_id, chat.stage) is None  # no local gateway on this path
    found = course_resources()
    kinds = sorted(r["kind"] for r in found)
    assert kinds == ["API", "function", "function", "function", "function", "function",
                     "function", "role", "table", "table"]
    deleted = delete_course_resources()
    assert sorted(r["name"] for r in deleted) == sorted(r["name"] for r in found)
    assert course_resources() == []
    assert delete_course_resources() == []  # safe to run again
    assert boto3.client("apigatewayv2").get_apis()["Items"] == []


def test_cleanup_leaves_untagged_resources_alone(aws):
    open_account(REAL)
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(TableName="not-ours", BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
    deploy_chat("course-chat", tags=TAGS)
    delete_course_resources()
    assert dynamodb.list_tables()["TableNames"] == ["not-ours"]


def test_recent_logs_reads_the_functions_log_group_with_filter_log_events(aws):
    logs, start = boto3.client("logs"), now_ms() - 60_000  # CloudWatch refuses very old events
    assert recent_logs("chat-sendmessage", 0) == []  # no group yet: nothing, no error
    logs.create_log_group(logGroupName="/aws/lambda/chat-sendmessage")
    logs.create_log_stream(logGroupName="/aws/lambda/chat-sendmessage", logStreamName="s1")
    logs.put_log_events(logGroupName="/aws/lambda/chat-sendmessage", logStreamName="s1",
                        logEvents=[{"timestamp": start, "message": "stale connection x\n"},
                                   {"timestamp": start + 1000, "message": "hello\n"}])
    assert recent_logs("chat-sendmessage", start) == ["stale connection x", "hello"]
    assert recent_logs("chat-sendmessage", start + 500) == ["hello"]


# Lessons 02-08: start_course, the tagging hook, the stage stand-in ---------------------

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"

#: Per lesson, the cells that set up and deploy (run up to their first client connection).
DEPLOY_CELLS = {
    "02": ["co-224d7a3a", "co-71ef7c66", "co-a09ff3fe", "co-05eaa090", "co-50efa178",
           "co-aa9c5b68", "co-f95c6fea", "co-1b6d40a3", "co-2e7e5e02", "co-86560a99",
           "co-c144d9fc"],
    "03": ["co-f76e91e1", "co-975de337", "co-669261c5", "co-ff8dd7b4"],
    "04": ["co-6e0db553", "co-54a06517", "co-b40943aa"],
    "05": ["co-3a4d9ea7", "co-dea76efa"],
    "06": ["co-3fe92a08", "co-3a0e8e7c", "co-fa80bcfb"],
    "07": ["co-dbdd4d88", "co-4034a376"],
    "08": ["co-f740fde8", "co-7266f7f8", "co-710ab4e3", "co-57f743f7"],
}


def notebook(lesson: str) -> dict:
    (path,) = SOLUTIONS.glob(f"{lesson}_*.ipynb")
    return json.loads(path.read_text())


def deploy_part(source: str) -> str:
    """A cell's source up to its first top-level statement that opens a client."""
    lines = source.splitlines()
    for number, line in enumerate(lines):
        if not line[:1].isspace() and ("Client(" in line or "create_connection(" in line):
            return "\n".join(lines[:number])
    return source


def run_cells(lesson: str, namespace: dict) -> dict:
    cells = {c["id"]: "".join(c["source"]) for c in notebook(lesson)["cells"]}
    for cell_id in DEPLOY_CELLS[lesson]:
        exec(compile(deploy_part(cells[cell_id]), f"{lesson}:{cell_id}", "exec"), namespace)
    return namespace


def everything() -> list[tuple[str, str]]:
    """Every API, function, table and role in the (moto) account, tagged or not."""
    found = [("API", a["Name"]) for a in boto3.client("apigatewayv2").get_apis()["Items"]]
    found += [("function", f["FunctionName"])
              for f in boto3.client("lambda").list_functions()["Functions"]]
    found += [("table", t) for t in boto3.client("dynamodb").list_tables()["TableNames"]]
    found += [("role", r["RoleName"]) for r in boto3.client("iam").list_roles()["Roles"]]
    return sorted(found)


@pytest.fixture
def switched_on(aws, monkeypatch):
    """The switch on and the (moto) account confirmed, as a learner would set them; deployed
    stages answer at their AWS URLs (tests/aws_data_plane.py)."""
    monkeypatch.setenv(SWITCH, "1")
    monkeypatch.setenv(CONFIRM, MOTO_ACCOUNT)
    monkeypatch.delenv("CI", raising=False)  # moto answers: this is the path CI exercises
    with serving(monkeypatch) as plane:
        yield plane
    real_aws._unhook()


@pytest.mark.parametrize("lesson", sorted(DEPLOY_CELLS))
def test_each_lessons_cells_create_only_tagged_resources_and_clean_up_by_tag(
        switched_on, lesson, capsys):
    namespace = run_cells(lesson, {"display": display})
    course = namespace["course"]
    assert course.real and "REAL AWS account: account 123456789012" in capsys.readouterr().out
    assert not [v for v in namespace.values() if isinstance(v, LocalGateway)]  # none local
    stages = [v for v in namespace.values() if isinstance(v, RealStage)]
    assert stages and all(s.url.startswith("wss://") and ".execute-api." in s.url
                          and route_functions(s.api_id) for s in stages)  # logs to read
    created = everything()
    assert created, "the deploy cells created nothing"
    assert sorted((r["kind"], r["name"]) for r in course_resources()) == created  # all tagged
    course.stop()
    assert "deleted" in capsys.readouterr().out
    assert everything() == []
    course.stop()  # the clean-up cell run again: nothing left, no error
    assert everything() == []
    assert server._serve_elsewhere is None  # from_api serves locally again


def test_running_a_lessons_setup_again_starts_from_an_empty_account(switched_on):
    run_cells("02", {"display": display})
    first = everything()
    namespace = run_cells("02", {"display": display})  # Run All again, no clean-up between
    assert everything() == first  # the leftovers went, the same resources came back
    namespace["course"].stop()
    assert everything() == []


@pytest.mark.parametrize("lesson", sorted(DEPLOY_CELLS))
def test_nothing_is_created_before_the_account_is_confirmed(aws, monkeypatch, lesson):
    monkeypatch.setenv(SWITCH, "1")
    monkeypatch.delenv(CONFIRM, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(NotConfirmed, match=f"{CONFIRM}={MOTO_ACCOUNT}"):
        run_cells(lesson, {"display": display})
    assert everything() == []
    assert server._serve_elsewhere is None


@pytest.mark.parametrize("lesson", sorted(DEPLOY_CELLS))
def test_every_lessons_clean_up_cell_ends_the_course_account(lesson):
    code = [c for c in notebook(lesson)["cells"] if c["cell_type"] == "code"]
    setup = next(c for c in code if "start_course()" in "".join(c["source"]))
    assert "course = start_course()" in "".join(setup["source"])
    assert "course.stop()" in "".join(code[-1]["source"])  # deletes by tag on a real account
    assert not any("start_moto" in "".join(c["source"]) for c in code)


def test_the_hook_tags_plain_create_calls_in_every_spelling(switched_on):
    start_course()
    boto3.client("dynamodb").create_table(  # Tags: a list of Key/Value pairs
        TableName="plain", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        Tags=[{"Key": "owner", "Value": "me"}])
    api = boto3.client("apigatewayv2").create_api(  # Tags: a map
        Name="plain", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action")
    boto3.client("logs").create_log_group(logGroupName="plain")  # tags, lower case
    arn = boto3.client("dynamodb").describe_table(TableName="plain")["Table"]["TableArn"]
    assert boto3.client("dynamodb").list_tags_of_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "owner", "Value": "me"}, {"Key": "course", "Value": "apigw-websockets"}]
    assert api["Tags"] == TAGS
    assert boto3.client("logs").list_tags_log_group(logGroupName="plain")["tags"] == TAGS


def test_offline_start_course_is_start_moto_and_adds_nothing(aws, monkeypatch, capsys):
    monkeypatch.delenv(SWITCH, raising=False)
    course = start_course()
    try:
        assert not course.real and course.mock is not None
        api = deploy_websocket_api("offline", {"$default": "def lambda_handler(e, c): pass"})
        assert boto3.client("apigatewayv2").get_api(ApiId=api.api_id).get("Tags") in (None, {})
        assert isinstance(LocalGateway.from_api(api.api_id, api.stage), LocalGateway)
        assert offline_only("wait two hours") is True
        assert capsys.readouterr().out == ""  # offline outputs unchanged: silent
    finally:
        course.stop()


def test_the_stage_stand_in_reads_cloudwatch_and_names_the_aws_way(switched_on, capsys):
    start_course()
    api = deploy_websocket_api("standin", {"$connect": "def lambda_handler(e, c): pass",
                                           "sendmessage": "def lambda_handler(e, c): pass"})
    clock = VirtualClock()
    stage = LocalGateway.from_api(api.api_id, api.stage, clock=clock).start()
    assert route_functions(api.api_id) == {"$connect": "standin-connect",
                                           "sendmessage": "standin-sendmessage"}
    logs, group = boto3.client("logs"), "/aws/lambda/standin-sendmessage"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    lines = ["START RequestId: 1 Version: $LATEST", "hello from the handler",
             "END RequestId: 1", "REPORT RequestId: 1\tDuration: 1.00 ms"]
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": now_ms(), "message": line + "\n"} for line in lines[:2]])
    assert stage.log.invocations("sendmessage") == [  # started, not finished yet
        {"route": "sendmessage", "function": "standin-sendmessage", "request_id": "1",
         "logs": lines[:2], "error": None}]
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": now_ms(), "message": line + "\n"} for line in lines[2:]])
    (run,) = stage.log.wait_for_invocations("sendmessage", 1)
    assert run["logs"] == lines
    with pytest.raises(OfflineOnly, match="'result' is in the local gateway's record only"):
        _ = run["result"]  # what the function returned: CloudWatch does not keep it
    stage.show_log(logs=True)
    shown = capsys.readouterr().out
    assert "sendmessage (/aws/lambda/standin-sendmessage): 4 line(s)" in shown
    assert "hello from the handler" in shown
    with pytest.raises(OfflineOnly, match="show_log"):
        stage.log.entries("message")
    with pytest.raises(OfflineOnly, match=stage.url):
        _ = stage.connections
    with pytest.raises(RuntimeError, match="time passes for real"):
        clock.advance(minutes=10)
    stage.stop()  # nothing to stop; the API stays until the clean-up cell
    assert boto3.client("apigatewayv2").get_api(ApiId=api.api_id)


def test_offline_only_cells_say_what_to_do_on_aws_instead(switched_on, capsys):
    start_course()
    assert offline_only("leave wscat open for 2 hours") is False
    assert "skipped on AWS: leave wscat open for 2 hours" in capsys.readouterr().out


def test_create_function_waits_for_a_role_iam_has_not_spread_yet():
    class Operation:
        name = "CreateFunction"

    refused = (None, {"Error": {"Code": "InvalidParameterValueException", "Message":
                                "The role defined for the function cannot be assumed by Lambda."}})
    other = (None, {"Error": {"Code": "InvalidParameterValueException", "Message": "bad zip"}})
    assert retry_unassumable_role(refused, Operation(), attempts=1) == 2.0
    assert retry_unassumable_role(refused, Operation(), attempts=10) is None  # gives up
    assert retry_unassumable_role(other, Operation(), attempts=1) is None
    assert retry_unassumable_role(None, Operation(), attempts=1) is None


#: Cells whose demonstration exists only offline: a virtual clock's jumps, a lowered quota.
OFFLINE_ONLY_CELLS = {"06": ["co-899ff4a5", "co-b65ff095", "co-2a703d2a"],  # idle, 2 hours
                      "08": ["co-4213d2fa"]}  # a connect storm against a quota of 2 a second


@pytest.mark.parametrize("lesson", sorted(OFFLINE_ONLY_CELLS))
def test_offline_only_cells_skip_themselves_on_a_real_account_saying_what_to_do(
        switched_on, lesson, capsys):
    namespace = run_cells(lesson, {"display": display})
    cells = {c["id"]: "".join(c["source"]) for c in notebook(lesson)["cells"]}
    capsys.readouterr()
    for cell_id in OFFLINE_ONLY_CELLS[lesson]:
        exec(compile(cells[cell_id], cell_id, "exec"), namespace)
    shown = capsys.readouterr().out.splitlines()
    assert len(shown) == len(OFFLINE_ONLY_CELLS[lesson])
    assert all(line.startswith("offline only, skipped on AWS: ") for line in shown)
    namespace["course"].stop()


#: What AWS answers for a resource that is not ready yet (moto's answers say it is).
NOT_READY = {"dynamodb.CreateTable": ("TableDescription", "TableStatus", "CREATING"),
             "lambda.CreateFunction": (None, "State", "Pending"),
             "lambda.UpdateFunctionConfiguration": (None, "LastUpdateStatus", "InProgress")}


def answer_as_aws_does(parsed, model, **_):
    """botocore `after-call` handler, run before the switch's: the answer says "not ready"."""
    part, field, value = NOT_READY[f"{model.service_model.service_name}.{model.name}"]
    (parsed[part] if part else parsed)[field] = value


TABLE = {"TableName": "ready", "BillingMode": "PAY_PER_REQUEST",
         "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
         "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}]}


def calls_made() -> list[str]:
    """The names of the API calls boto3's default session makes from now on (botocore's
    own `before-call` event)."""
    calls: list[str] = []
    boto3.DEFAULT_SESSION.events.register(
        "before-call", lambda model, **_: calls.append(model.name), unique_id="test-calls")
    return calls


def test_the_switch_waits_until_new_tables_and_functions_are_ready(switched_on):
    start_course()
    calls = calls_made()
    for event in NOT_READY:
        boto3.DEFAULT_SESSION.events.register_first(
            f"after-call.{event}", answer_as_aws_does, unique_id=f"test-not-ready-{event}")
    dynamodb, lam = boto3.client("dynamodb"), boto3.client("lambda")
    dynamodb.create_table(**TABLE)
    assert calls == ["CreateTable", "DescribeTable"]  # the table_exists waiter
    calls.clear()
    api = deploy_websocket_api("ready", {"$default": "def lambda_handler(e, c): pass"})
    assert calls[calls.index("CreateFunction") + 1] == "GetFunction"  # function_active_v2
    function = api.functions["$default"]
    calls.clear()
    lam.update_function_configuration(FunctionName=function, Timeout=5)
    lam.update_function_configuration(FunctionName=function, Timeout=6)  # AWS: no conflict
    assert calls == ["UpdateFunctionConfiguration", "GetFunction"] * 2  # function_updated_v2


def test_an_answer_that_says_ready_needs_no_waiter(switched_on):
    """moto's answers (and AWS's, once a resource is ready) say ACTIVE, Active, Successful."""
    start_course()
    calls = calls_made()
    boto3.client("dynamodb").create_table(**TABLE)
    api = deploy_websocket_api("ready", {"$default": "def lambda_handler(e, c): pass"})
    boto3.client("lambda").update_function_configuration(
        FunctionName=api.functions["$default"], Timeout=5)
    assert not {"DescribeTable", "GetFunction"} & set(calls), calls


def test_the_hook_leaves_tag_shapes_it_does_not_know_alone(switched_on):
    start_course()
    ecs = boto3.client("ecs")  # tags are lower-case key/value pairs there: not for the hook
    arn = ecs.create_cluster(clusterName="other")["cluster"]["clusterArn"]
    assert ecs.list_tags_for_resource(resourceArn=arn).get("tags", []) == []


def test_a_stage_answers_once_a_get_without_upgrade_gets_426():
    gateway = LocalGateway.from_handlers({"$default": lambda e, c: {"statusCode": 200}}).start()
    try:
        assert stage_answers(gateway.http_url)  # 426: the stage serves WebSockets
        assert wait_until_served(gateway.http_url, timeout=5)
    finally:
        gateway.stop()
    assert not stage_answers(gateway.http_url)  # nothing listens there now
    assert not wait_until_served(gateway.http_url, timeout=1)  # bounded: gives up


def test_create_deployment_returns_once_the_stage_serves_it(switched_on):
    start_course()
    api = deploy_websocket_api("propagation", {"$default": "def lambda_handler(e, c): pass"})
    switched_on.stop()  # forget the stage the deploy above made answer
    switched_on.gateways.clear()
    calls = []
    boto3.DEFAULT_SESSION.events.register(
        "before-call", lambda model, **_: calls.append(model.name), unique_id="test-calls")
    deployment = boto3.client("apigatewayv2").create_deployment(ApiId=api.api_id,
                                                                StageName=api.stage)
    assert calls[:3] == ["CreateDeployment", "GetStage", "GetApi"]  # it names the new one
    assert boto3.client("apigatewayv2").get_stage(
        ApiId=api.api_id, StageName=api.stage)["DeploymentId"] == deployment["DeploymentId"]
    assert (api.api_id, api.stage) in switched_on.gateways  # its URL was asked until it answered


def test_a_check_that_needs_the_local_gateway_says_so_in_one_line_and_lets_run_all_go_on(
        switched_on, capsys):
    from helpers.checks import NOT_CHECKED_MARK, checking
    from helpers.lessons.chat_lesson import ReconnectRoom

    start_course()
    capsys.readouterr()
    with checking("reconnect", "back after the cut"), ReconnectRoom():
        raise AssertionError("not reached: the room refuses before deploying anything")
    with checking("connections", "listed"):
        raise OfflineOnly("gateway.connections belongs to the local gateway")
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith(f"{NOT_CHECKED_MARK} reconnect: not checked on a real AWS account")
    assert "2 real hours (docs/aws-behaviour.md §5)" in first
    assert second.startswith(f"{NOT_CHECKED_MARK} connections: not checked")
    assert course_resources() == []  # the reconnect room created nothing


def test_an_invocation_in_cloudwatch_says_how_it_failed():
    crashed, timed_out, fine = invocations_in([
        "START RequestId: a Version: $LATEST", "[ERROR] ValueError: something broke",
        "Traceback (most recent call last):", "END RequestId: a", "REPORT RequestId: a",
        "START RequestId: b Version: $LATEST",
        "2026-12-05T08:00:03Z b Task timed out after 3.00 seconds", "END RequestId: b",
        "START RequestId: c Version: $LATEST", "hello", "END RequestId: c"], "r", "f")
    assert crashed["error"] == "ValueError: something broke"
    assert timed_out["error"] == "function-timeout"
    assert fine["error"] is None and fine["logs"][1] == "hello"


LIFECYCLE_TABLE = ('import os\nimport boto3\n'
                   'table = boto3.resource("dynamodb").Table(os.environ["TABLE"])\n')


@pytest.mark.parametrize("disconnect, verdict", [
    ("table.delete_item(Key={'connectionId': event['requestContext']['connectionId']})", None),
    ("pass", "that connection id is still in the table"),
    ("[table.delete_item(Key={'connectionId': i['connectionId']}) "
     "for i in table.scan()['Items']]", "should hold only the others' ids"),
])
def test_lesson03s_disconnect_check_grades_on_aws_through_connections(
        switched_on, disconnect, verdict):
    from helpers.checks import CheckFailed
    from helpers.lessons.lesson03 import STAND_IN, check_lifecycle_handlers

    start_course()
    switched_on.listen()  # the functions' output reaches CloudWatch Logs, as on AWS
    source = LIFECYCLE_TABLE + ("def lambda_handler(event, context):\n"
                                f"    {disconnect}\n    return {{'statusCode': 200}}\n")
    grade = lambda: check_lifecycle_handlers(  # noqa: E731
        STAND_IN["$connect"], source, STAND_IN["$default"], "disconnect",
        clients=("ann", "ben", "cat"), leaving=1)
    if verdict is None:
        grade()
    else:
        with pytest.raises(CheckFailed, match=verdict):
            grade()


def test_clean_up_retries_throttled_api_calls_with_backoff(aws):
    """Deleting a dozen APIs at once can be throttled (TooManyRequestsException): the API
    client retries with botocore's standard backoff: 10 retries, 11 attempts in all."""
    retries = real_aws._Clients().apigw.meta.config.retries
    assert retries == {"mode": "standard", "total_max_attempts": 11}
