"""A handler's @connections calls obey its execution role's IAM policies (docs §6.3).

Real gateway, real sockets, functions and roles in moto: the handler pushes with a boto3
client built the AWS way and replies with what happened.
"""

from __future__ import annotations

import json

import boto3
import pytest

from helpers.aws import deploy_websocket_api
from helpers.client import Client
from helpers.gateway import LocalGateway

PUSH = """
import json
import boto3
from botocore.exceptions import ClientError

def lambda_handler(event, context):
    ctx = event["requestContext"]
    api = boto3.client("apigatewaymanagementapi",
                       endpoint_url=f"https://{ctx['domainName']}/{ctx['stage']}")
    try:
        api.post_to_connection(ConnectionId=ctx["connectionId"], Data=b"pushed")
        answer = "ok"
    except ClientError as error:
        answer = [error.response["ResponseMetadata"]["HTTPStatusCode"],
                  error.response["Error"]["Code"], error.response["Error"]["Message"]]
    return {"statusCode": 200, "body": json.dumps(answer)}
"""


@pytest.fixture
def chat(aws):
    """A deployed API whose $default handler pushes to its caller, served locally."""
    api = deploy_websocket_api("iam", {"$default": PUSH}, two_way=["$default"])
    gateway = LocalGateway.from_api(api.api_id, api.stage).start()
    yield api, gateway
    gateway.stop()
    assert gateway.internal_errors == []


def role_name(api) -> str:
    return api.role.rsplit("/", 1)[-1]


def set_policy(api, name: str, effect: str, resource: str, action="execute-api:*") -> None:
    document = {"Version": "2012-10-17",
                "Statement": [{"Effect": effect, "Action": action, "Resource": resource}]}
    boto3.client("iam").put_role_policy(RoleName=role_name(api), PolicyName=name,
                                        PolicyDocument=json.dumps(document))


def revoke_manage_connections(api) -> None:
    boto3.client("iam").delete_role_policy(RoleName=role_name(api),
                                           PolicyName=f"manage-connections-{api.api_id}")


def push_once(gateway) -> tuple[object, list[str]]:
    """Send one message; return the handler's answer and anything pushed before it."""
    with Client(gateway.url) as client:
        client.send("go")
        received = [client.recv(timeout=10)]
        while received[-1] == "pushed":
            received.append(client.recv(timeout=10))
    return json.loads(received[-1]), received[:-1]


def test_the_role_deploy_websocket_api_makes_may_push(chat):
    _, gateway = chat
    assert push_once(gateway) == ("ok", ["pushed"])


def test_without_the_permission_the_push_is_refused_with_aws_403(chat):
    api, gateway = chat
    revoke_manage_connections(api)
    answer, pushed = push_once(gateway)
    assert pushed == []
    status, code, message = answer
    assert (status, code) == (403, "AccessDeniedException")
    assert message.startswith(
        f"User: arn:aws:sts::123456789012:assumed-role/{role_name(api)}/iam-default is not "
        "authorized to perform: execute-api:ManageConnections on resource: "
        f"arn:aws:execute-api:us-east-1:123456789012:{api.api_id}/dev/POST/@connections/")
    [refused] = gateway.log.entries("refused")
    assert (refused["op"], refused["status"], refused["function"]) == ("post", 403,
                                                                       "iam-default")
    assert "no policy of role" in refused["reason"]


def test_an_explicit_deny_wins_over_the_allow(chat):
    api, gateway = chat
    set_policy(api, "no-pushing", "Deny",
               f"arn:aws:execute-api:*:*:{api.api_id}/*/POST/@connections/*")
    answer, pushed = push_once(gateway)
    assert (answer[:2], pushed) == ([403, "AccessDeniedException"], [])
    assert "explicit Deny" in gateway.log.entries("refused")[0]["reason"]


@pytest.mark.parametrize("resource", [
    "arn:aws:execute-api:us-east-1:123456789012:{api}/d?v/POST/@connections/*",
    "arn:aws:execute-api:*:*:*",
    "*",
])
def test_wildcard_resources_allow(chat, resource):
    api, gateway = chat
    revoke_manage_connections(api)
    set_policy(api, "wide", "Allow", resource.format(api=api.api_id),
               action="execute-api:Manage*")
    assert push_once(gateway) == ("ok", ["pushed"])


def test_an_allow_for_another_method_or_stage_does_not_allow_post(chat):
    api, gateway = chat
    revoke_manage_connections(api)
    set_policy(api, "delete-only", "Allow",
               f"arn:aws:execute-api:us-east-1:123456789012:{api.api_id}/dev/DELETE/*")
    set_policy(api, "prod-only", "Allow",
               f"arn:aws:execute-api:us-east-1:123456789012:{api.api_id}/prod/*")
    assert push_once(gateway)[0][0] == 403


def test_an_attached_managed_policy_counts(chat):
    api, gateway = chat
    revoke_manage_connections(api)
    iam = boto3.client("iam")
    document = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "execute-api:ManageConnections",
        "Resource": f"arn:aws:execute-api:us-east-1:123456789012:{api.api_id}/*"}]}
    arn = iam.create_policy(PolicyName="push", PolicyDocument=json.dumps(document))
    iam.attach_role_policy(RoleName=role_name(api), PolicyArn=arn["Policy"]["Arn"])
    assert push_once(gateway) == ("ok", ["pushed"])


def test_calls_from_outside_any_handler_are_the_account_owners(chat):
    api, gateway = chat
    revoke_manage_connections(api)
    with Client(gateway.url) as client:
        [connection_id] = gateway.connections
        management = boto3.client("apigatewaymanagementapi", endpoint_url=gateway.callback_url)
        management.post_to_connection(ConnectionId=connection_id, Data=b"from the owner")
        assert client.recv(timeout=10) == "from the owner"
    assert gateway.log.entries("refused") == []


def set_conditional_policy(api, condition) -> None:
    document = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "execute-api:ManageConnections",
        "Resource": f"arn:aws:execute-api:us-east-1:123456789012:{api.api_id}/*",
        "Condition": condition}]}
    boto3.client("iam").put_role_policy(RoleName=role_name(api), PolicyName="conditional",
                                        PolicyDocument=json.dumps(document))


def test_a_condition_on_keys_the_call_carries_is_evaluated(chat):
    """docs §7.4: the statement applies only when its Condition holds for the request."""
    api, gateway = chat
    revoke_manage_connections(api)
    set_conditional_policy(api, {"StringEquals": {"aws:RequestedRegion": "us-east-1"},
                                 "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/iam-*"},
                                 "Bool": {"aws:SecureTransport": "true"}})
    assert push_once(gateway) == ("ok", ["pushed"])
    set_conditional_policy(api, {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}})
    assert push_once(gateway)[0][:2] == [403, "AccessDeniedException"]
    assert "Condition did not hold" in gateway.log.entries("refused")[-1]["reason"]


def test_a_condition_on_a_key_the_call_lacks_fails_unless_if_exists(chat):
    api, gateway = chat
    revoke_manage_connections(api)
    set_conditional_policy(api, {"StringEquals": {"aws:SourceVpc": "vpc-1"}})
    assert push_once(gateway)[0][0] == 403
    set_conditional_policy(api, {"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}})
    assert push_once(gateway) == ("ok", ["pushed"])


def test_a_handlers_boto3_call_comes_from_this_machine(chat):
    """docs §7.4: `aws:SourceIp` is in every request context; a call answered in-process
    comes from 127.0.0.1 (inferred: on AWS, the address the function's calls leave from)."""
    api, gateway = chat
    revoke_manage_connections(api)
    set_conditional_policy(api, {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}})
    assert push_once(gateway) == ("ok", ["pushed"])
    set_conditional_policy(api, {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})
    assert push_once(gateway)[0][:2] == [403, "AccessDeniedException"]
    assert "Condition did not hold" in gateway.log.entries("refused")[-1]["reason"]
