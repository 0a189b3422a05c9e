"""Lesson 09's real-account code path, run against moto with no local gateway (never AWS).

The switch is off unless COURSE_REAL_AWS=1; the real path must confirm the account before
creating anything, tag everything it creates, and find and delete it all again by tag.
"""

from __future__ import annotations

import boto3
import pytest

from helpers.gateway import registry
from helpers.lessons.capstone import deploy_chat
from helpers.lessons.real_aws import (
    CONFIRM,
    SWITCH,
    TAGS,
    NotConfirmed,
    course_resources,
    delete_course_resources,
    now_ms,
    open_account,
    real_requested,
    recent_logs,
)

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
