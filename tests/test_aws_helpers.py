"""helpers.aws: the set-up conveniences the lessons call."""

from __future__ import annotations

import gc
import io
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from moto.core.models import MockAWS

from helpers import aws
from helpers.gateway.moto_source import lambda_arn_from_uri

REGION = "us-east-1"


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with moto.mock_aws():
        yield


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """start_moto edits os.environ; let monkeypatch put every key back afterwards."""
    for key in (*aws._FAKE_CREDENTIALS, "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(key, "before")
    yield
    if aws._running is not None:
        aws._running.stop()
        aws._running = None


def test_start_moto_restarts_cleanly_and_stops_once(clean_env: None) -> None:
    import os

    first = aws.start_moto("eu-west-1")
    boto3.client("sqs").create_queue(QueueName="q")
    assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert os.environ["AWS_ACCESS_KEY_ID"] != "before"
    second = aws.start_moto("eu-west-1")  # re-running the cell: previous mock stopped first
    queues = boto3.client("sqs").list_queues().get("QueueUrls", [])
    second.stop()
    second.stop()  # a second clean-up is harmless
    first.stop()
    assert queues == []
    assert MockAWS._nested_count == 0


def test_start_moto_collects_garbage_less_often(clean_env: None) -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's default, as in a fresh kernel
    try:
        aws.start_moto().stop()
        assert gc.get_threshold() == aws.GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)


def test_handler_zip_dedents_the_source_and_adds_files() -> None:
    package = aws.handler_zip(
        """
        def lambda_handler(event, context):
            return {"statusCode": 200}
        """,
        util_py="X = 1\n",
    )
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        files = {name: archive.read(name).decode() for name in archive.namelist()}
    assert files == {
        "app.py": 'def lambda_handler(event, context):\n    return {"statusCode": 200}\n',
        "util.py": "X = 1\n",
    }


def test_lambda_role_is_what_create_function_needs(mocked: None) -> None:
    lam: Any = boto3.client("lambda")
    code = {"ZipFile": aws.handler_zip("def lambda_handler(e, c):\n    return 1\n")}
    missing = "arn:aws:iam::123456789012:role/missing"
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_function(FunctionName="f", Runtime="python3.11", Role=missing,
                            Handler="app.lambda_handler", Code=code)
    role = aws.lambda_role()
    assert aws.lambda_role() == role  # idempotent
    created = lam.create_function(FunctionName="f", Runtime="python3.11", Role=role,
                                  Handler="app.lambda_handler", Code=code)
    assert role == "arn:aws:iam::123456789012:role/websocket-lambda-role"
    assert created["Role"] == role


def test_lambda_role_grants_logs_connections_and_the_table(mocked: None) -> None:
    iam: Any = boto3.client("iam")
    aws.lambda_role("chat-role", api_id="abc123", table="connections")
    names = set(iam.list_role_policies(RoleName="chat-role")["PolicyNames"])
    assert names == {"basic-execution", "manage-connections-abc123", "dynamodb-connections"}
    manage = iam.get_role_policy(RoleName="chat-role", PolicyName="manage-connections-abc123")
    [statement] = manage["PolicyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:ManageConnections"
    assert statement["Resource"] == (
        "arn:aws:execute-api:us-east-1:123456789012:abc123/*/*/@connections/*")


def test_policies_name_the_region_of_the_session_the_clients_use(
    mocked: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # put back afterwards
    boto3.setup_default_session(region_name="eu-west-2")
    api = aws.deploy_websocket_api("regional", {"$default": "def lambda_handler(e, c): pass"})
    assert api.region == "eu-west-2"
    iam: Any = boto3.client("iam")
    manage = iam.get_role_policy(RoleName="regional-role",
                                 PolicyName=f"manage-connections-{api.api_id}")
    [statement] = manage["PolicyDocument"]["Statement"]
    assert statement["Resource"].startswith("arn:aws:execute-api:eu-west-2:")


def test_deploy_websocket_api_gives_its_functions_a_role_scoped_to_the_api(
    mocked: None,
) -> None:
    api = aws.deploy_websocket_api("scoped", {"$default": "def lambda_handler(e, c): pass"})
    lam: Any = boto3.client("lambda")
    assert lam.get_function(FunctionName="scoped-default")["Configuration"]["Role"] == api.role
    iam: Any = boto3.client("iam")
    names = iam.list_role_policies(RoleName="scoped-role")["PolicyNames"]
    assert f"manage-connections-{api.api_id}" in names


def test_lambda_integration_uri_wraps_the_function_arn() -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:chat"
    uri = aws.lambda_integration_uri(arn, "eu-west-1")
    assert uri == (
        "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/"
        "arn:aws:lambda:eu-west-1:123456789012:function:chat/invocations"
    )
    assert lambda_arn_from_uri(uri) == arn
