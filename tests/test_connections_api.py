"""The @connections wire format for IAM refusals (docs/aws-behaviour.md §6.3), without I/O."""

from __future__ import annotations

import json

import botocore.session
from botocore.awsrequest import HeadersDict
from botocore.parsers import RestJSONParser

from helpers.gateway import connections_api, iam_policy


def test_resource_arn_names_method_stage_and_connection():
    assert connections_api.resource_arn("eu-west-1", "123456789012", "abc", "dev", "POST",
                                        "Zx9=") == (
        "arn:aws:execute-api:eu-west-1:123456789012:abc/dev/POST/@connections/Zx9=")


def test_a_function_is_its_role_assumed_for_a_session_named_after_it():
    role = "arn:aws:iam::123456789012:role/service-role/chat-role"
    assert connections_api.assumed_role_arn(role, "chat-send") == (
        "arn:aws:sts::123456789012:assumed-role/chat-role/chat-send")


def test_access_denied_is_what_botocore_parses_as_access_denied_exception():
    status, headers, body = connections_api.access_denied(
        "arn:aws:sts::1:assumed-role/r/f", "arn:aws:execute-api:x", "add a policy")
    model = botocore.session.get_session().get_service_model("apigatewaymanagementapi")
    shape = model.operation_model("PostToConnection").output_shape
    parsed = RestJSONParser().parse(
        {"status_code": status, "headers": HeadersDict(headers), "body": body}, shape)
    assert status == 403
    assert parsed["Error"]["Code"] == "AccessDeniedException"
    assert parsed["Error"]["Message"] == json.loads(body)["Message"]
    assert parsed["Error"]["Message"].startswith(
        "User: arn:aws:sts::1:assumed-role/r/f is not authorized to perform: "
        "execute-api:ManageConnections on resource: arn:aws:execute-api:x")


def test_why_refused_names_the_role_and_the_policy_that_would_fix_it():
    resource = connections_api.resource_arn("us-east-1", "1", "abc", "dev", "POST", "a/b=")
    role = "arn:aws:iam::1:role/chat-role"
    nothing = iam_policy.evaluate([], connections_api.MANAGE_CONNECTIONS, resource)
    assert connections_api.why_refused(nothing, role, resource) == (
        "no policy of role chat-role allows it: attach one that allows "
        "execute-api:ManageConnections on arn:aws:execute-api:us-east-1:1:abc/dev/*/@connections/*")
    deny = {"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}}
    denied = iam_policy.evaluate([deny], connections_api.MANAGE_CONNECTIONS, resource)
    assert "explicit Deny" in connections_api.why_refused(denied, role, resource)
