"""The gateway's answers (reference §2.3, §4, §5, §7): limits, close codes, error frames and
how handler and authorizer results are read."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponseWebSocket,
)

from helpers.gateway import defaults
from helpers.gateway import protocol_rules as rules

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123defg/prod/$connect"
CID, RID = "VNRUSeldSwMCIRQ=", "VNRXVFJOywMF3-Q="


# --- limits and close codes (§4.3, §5) -------------------------------------------------------


def test_limits_match_the_quota_table():
    assert defaults.MAX_FRAME_BYTES == 32768
    assert defaults.MAX_MESSAGE_BYTES == 131072
    assert defaults.MAX_POST_BYTES == 131072
    assert defaults.IDLE_TIMEOUT == 600
    assert defaults.MAX_LIFETIME == 7200
    assert (defaults.INTEGRATION_TIMEOUT, defaults.FUNCTION_TIMEOUT) == (29, 3)


def test_documented_close_codes_and_reasons():
    assert rules.GOING_AWAY == (1001, "Going away")
    assert rules.LIFETIME_EXCEEDED == (1001, "Going away")
    assert rules.CLOSED_BY_BACKEND == (1000, "Connection Closed Normally")
    assert rules.NO_CLIENT_STATUS == (1005, "Client-side close frame status not set")
    assert rules.BINARY_NOT_SUPPORTED.code == 1003
    assert rules.MESSAGE_TOO_BIG.code == 1009


@pytest.mark.parametrize(
    "close",
    [
        rules.GOING_AWAY,
        rules.CLOSED_BY_BACKEND,
        rules.NO_CLIENT_STATUS,
        rules.BINARY_NOT_SUPPORTED,
        rules.MESSAGE_TOO_BIG,
    ],
)
def test_close_reasons_fit_in_a_close_frame(close):
    assert len(close.reason.encode()) <= 123


def test_emulator_reasons_name_cause_and_fix():
    assert "text" in rules.BINARY_NOT_SUPPORTED.reason
    assert "32 KB" in rules.MESSAGE_TOO_BIG.reason
    assert "128 KB" in rules.MESSAGE_TOO_BIG.reason


def test_client_close_without_status_reports_1005():
    assert rules.client_close(None) == rules.NO_CLIENT_STATUS
    assert rules.client_close(1005, "") == rules.NO_CLIENT_STATUS


def test_client_close_copies_code_and_reason():
    assert rules.client_close(1001, "") == (1001, "")
    assert rules.client_close(4000, "bye") == (4000, "bye")


# --- error frames (§2.3, §4.2) ---------------------------------------------------------------


def test_forbidden_frame_has_aws_spacing():
    assert (
        rules.error_frame(rules.FORBIDDEN, CID, RID)
        == '{"message": "Forbidden", "connectionId":"VNRUSeldSwMCIRQ=", '
        '"requestId":"VNRXVFJOywMF3-Q="}'
    )


def test_internal_server_error_frame_matches_observed_frame():
    assert (
        rules.error_frame(rules.INTERNAL_SERVER_ERROR, CID, RID)
        == '{"message": "Internal server error", "connectionId":"VNRUSeldSwMCIRQ=", '
        '"requestId":"VNRXVFJOywMF3-Q="}'
    )


def test_timeout_frame_starts_like_the_observed_prefix():
    frame = rules.error_frame(rules.ENDPOINT_TIMED_OUT, CID, RID)
    assert frame.startswith('{"message": "Endpoint request timed out",')
    assert json.loads(frame) == {
        "message": "Endpoint request timed out",
        "connectionId": CID,
        "requestId": RID,
    }


# --- $connect (§4.1) -------------------------------------------------------------------------


def test_connect_2xx_accepts_with_its_headers():
    result = {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "chat"}}
    assert rules.connect_outcome(result) == (True, 101, {"Sec-WebSocket-Protocol": "chat"}, None)
    assert rules.connect_outcome({"statusCode": 204}) == (True, 101, {}, None)


def test_connect_multi_value_headers_are_joined():
    result = {"statusCode": 200, "multiValueHeaders": {"X-A": ["1", "2"]}, "headers": {"X-B": 3}}
    assert rules.connect_outcome(result)[2] == {"X-A": "1, 2", "X-B": "3"}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503, 302])
def test_connect_non_2xx_fails_handshake_with_that_status(status):
    accepted, got, _, problem = rules.connect_outcome({"statusCode": status, "body": "no"})
    assert (accepted, got, problem) == (False, status, None)


@pytest.mark.parametrize(
    ("result", "words"),
    [
        (None, "returned None"),
        ("ok", "returned a str"),
        ([200], "returned a list"),
        ({"body": "Connected."}, "no statusCode"),
        ({"statusCode": "200"}, "not an integer"),
        ({"statusCode": True}, "not an integer"),
        ({"statusCode": 42}, "not an integer"),
        ({"statusCode": 101}, "cannot end a handshake"),
        ({"statusCode": 200, "headers": ["x"]}, "headers must be a dict"),
    ],
)
def test_connect_garbage_gives_502_with_a_fix(result, words):
    accepted, status, headers, problem = rules.connect_outcome(result)
    assert (accepted, status, headers) == (False, 502, {})
    assert words in problem
    assert "e.g. {'" in problem  # the fix, as an example return value


def test_connect_none_problem_names_cause_and_fix():
    problem = rules.connect_outcome(None)[3]
    assert problem == (
        "the $connect handler returned None; return {'statusCode': 200} to accept, "
        "or e.g. {'statusCode': 403} to refuse"
    )


# --- message replies (§4.4) ------------------------------------------------------------------


def _reply(result, two_way=True):
    return rules.message_reply(result, two_way, connection_id=CID, request_id=RID)


@pytest.mark.parametrize(
    "result", [{"statusCode": 200, "body": "hi"}, None, "garbage", [1], {"body": {"a": 1}}]
)
def test_one_way_route_sends_nothing(result):
    assert _reply(result, two_way=False) == (None, None)


def test_two_way_route_sends_the_body():
    assert _reply({"statusCode": 200, "body": '{"ok": true}'}) == ('{"ok": true}', None)


def test_two_way_status_code_does_not_change_delivery():
    assert _reply({"statusCode": 500, "body": "oops"}) == ("oops", None)
    assert _reply({"body": "no status"}) == ("no status", None)


def test_two_way_without_body_sends_nothing():
    assert _reply({"statusCode": 200}) == (None, None)
    assert _reply({"statusCode": 200, "body": None}) == (None, None)


def test_two_way_empty_body_is_sent():
    assert _reply({"statusCode": 200, "body": ""}) == ("", None)


@pytest.mark.parametrize(
    ("result", "words"),
    [
        (None, "returned None"),
        ("hello", "returned a str"),
        (["a"], "returned a list"),
        ({"statusCode": 200, "body": {"a": 1}}, "body is a dict"),
        ({"statusCode": 200, "body": 3}, "body is a int"),
    ],
)
def test_two_way_garbage_sends_internal_server_error(result, words):
    frame, problem = _reply(result)
    assert frame == rules.error_frame(rules.INTERNAL_SERVER_ERROR, CID, RID)
    assert words in problem
    assert "json.dumps" in problem


# --- authorizer (§4.1, §7) ---------------------------------------------------------------------


def _policy(effect="Allow", action="execute-api:Invoke", resource=ARN, **extra):
    return {
        "principalId": "alice",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": action, "Effect": effect, "Resource": resource}],
        },
        **extra,
    }


def test_unauthorized_error_gives_401():
    assert rules.authorizer_outcome(None, "Unauthorized", method_arn=ARN) == (401, None)


@pytest.mark.parametrize("error", ["unauthorized", "Unauthorized.", "boom", ""])
def test_other_authorizer_errors_give_500(error):
    assert rules.authorizer_outcome(None, error, method_arn=ARN) == (500, None)


def test_allow_gives_principal_and_stringified_context():
    result = _policy(context={"role": "admin", "level": 3, "beta": True, "off": False,
                              "ratio": 0.5, "nothing": None})
    assert rules.authorizer_outcome(result, None, method_arn=ARN) == (
        None,
        {"principalId": "alice", "role": "admin", "level": "3", "beta": "true",
         "off": "false", "ratio": "0.5", "nothing": None},
    )


def test_allow_without_context_gives_principal_only():
    assert rules.authorizer_outcome(_policy(), None, method_arn=ARN) == (
        None,
        {"principalId": "alice"},
    )


def test_explicit_deny_gives_403():
    assert rules.authorizer_outcome(_policy("Deny"), None, method_arn=ARN) == (403, None)


def test_any_matching_deny_wins_over_allow():
    result = _policy()
    result["policyDocument"]["Statement"].append(
        {"Action": "execute-api:*", "Effect": "Deny", "Resource": ["arn:aws:execute-api:*"]}
    )
    assert rules.authorizer_outcome(result, None, method_arn=ARN)[0] == 403


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("execute-api:Invoke", ARN.replace("/prod/", "/dev/")),
        ("execute-api:ManageConnections", ARN),
        ("execute-api:Invoke", "arn:aws:execute-api:us-east-1:123456789012:other/*"),
    ],
)
def test_allow_for_something_else_gives_403(action, resource):
    result = _policy(action=action, resource=resource)
    assert rules.authorizer_outcome(result, None, method_arn=ARN) == (403, None)


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("*", "*"),
        ("execute-api:*", "arn:aws:execute-api:*:*:*"),
        (["s3:GetObject", "EXECUTE-API:invoke"], ["arn:x", ARN]),
        ("execute-api:Invoke", "arn:aws:execute-api:us-east-1:123456789012:abc123defg/*"),
        ("execute-api:Invoke", "arn:aws:execute-api:us-east-1:123456789012:abc123defg/pro?/*"),
    ],
)
def test_wildcards_in_action_and_resource_allow(action, resource):
    result = _policy(action=action, resource=resource)
    assert rules.authorizer_outcome(result, None, method_arn=ARN)[0] is None


def test_statement_may_be_a_single_object():
    result = _policy()
    result["policyDocument"]["Statement"] = result["policyDocument"]["Statement"][0]
    assert rules.authorizer_outcome(result, None, method_arn=ARN)[0] is None


@pytest.mark.parametrize(
    "result",
    [
        None,
        "Allow",
        {"policyDocument": _policy()["policyDocument"]},
        {"principalId": 7, "policyDocument": _policy()["policyDocument"]},
        {"principalId": "alice"},
        _policy(context={"nested": {"a": 1}}),
        _policy(context={"list": [1]}),
        _policy(context={"nested": {}}),
        _policy(context={"ratio": float("nan")}),
        _policy(context={"big": float("inf")}),
        _policy(context="role=admin"),
    ],
)
def test_malformed_authorizer_answer_gives_500(result):
    assert rules.authorizer_outcome(result, None, method_arn=ARN) == (500, None)


def test_context_cannot_replace_principal_id():
    result = _policy(context={"principalId": "mallory"})
    assert rules.authorizer_outcome(result, None, method_arn=ARN)[1] == {"principalId": "alice"}


def test_powertools_websocket_policy_is_understood():
    allow = APIGatewayAuthorizerResponseWebSocket.from_route_arn(ARN, "alice", {"role": "x"})
    allow.allow_all_routes()
    assert rules.authorizer_outcome(allow.asdict(), None, method_arn=ARN) == (
        None,
        {"principalId": "alice", "role": "x"},
    )
    deny = APIGatewayAuthorizerResponseWebSocket.from_route_arn(ARN, "alice")
    deny.deny_all_routes()
    assert rules.authorizer_outcome(deny.asdict(), None, method_arn=ARN) == (403, None)


# --- identity sources (§7) -------------------------------------------------------------------

HEADERS = [("Host", "h"), ("Auth", "secret"), ("X-Empty", "")]
QUERY = [("token", "t1"), ("Token", "T"), ("token", "t2")]


def test_identity_values_in_source_order():
    sources = ["route.request.querystring.token", "route.request.header.Auth"]
    assert rules.identity_values(sources, HEADERS, QUERY) == ["t2", "secret"]


def test_header_sources_match_case_insensitively():
    assert rules.identity_values(["route.request.header.auth"], HEADERS, QUERY) == ["secret"]


def test_querystring_sources_match_case_sensitively():
    assert rules.identity_values(["route.request.querystring.Token"], HEADERS, QUERY) == ["T"]
    assert rules.identity_values(["route.request.querystring.TOKEN"], HEADERS, QUERY) is None


@pytest.mark.parametrize(
    "source",
    ["route.request.header.Missing", "route.request.header.X-Empty", "route.request.querystring.x"],
)
def test_missing_or_empty_identity_source_means_401_without_invoking(source):
    assert rules.identity_values(["route.request.header.Auth", source], HEADERS, QUERY) is None


def test_no_identity_sources_gives_empty_list():
    assert rules.identity_values([], HEADERS, QUERY) == []


def test_stage_variable_sources_read_stage_variables():
    sources = ["stageVariables.env"]
    assert rules.identity_values(sources, [], [], stage_variables={"env": "dev"}) == ["dev"]
    assert rules.identity_values(sources, [], []) is None


def test_http_api_identity_source_form_is_rejected():
    with pytest.raises(ValueError):
        rules.identity_values(["$request.header.Auth"], HEADERS, QUERY)


# --- Lambda resource policy (reference §1.7) ---------------------------------------------

ROUTE_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/$connect"


def _grant(source_arn=None, effect="Allow", service="apigateway.amazonaws.com"):
    statement = {"Effect": effect, "Action": "lambda:InvokeFunction",
                 "Principal": {"Service": service}}
    if source_arn is not None:
        statement["Condition"] = {"ArnLike": {"AWS:SourceArn": source_arn}}
    return statement


def test_invoke_needs_a_statement_for_api_gateway():
    assert not rules.invoke_allowed([], ROUTE_ARN)
    assert not rules.invoke_allowed([_grant(service="sns.amazonaws.com")], ROUTE_ARN)


def test_invoke_source_arn_wildcards_match_stage_and_route():
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/*/$connect"
    assert rules.invoke_allowed([_grant(arn)], ROUTE_ARN)
    assert not rules.invoke_allowed([_grant(arn.replace("$connect", "$default"))], ROUTE_ARN)


def test_invoke_without_source_arn_condition_is_allowed_and_deny_wins():
    assert rules.invoke_allowed([_grant()], ROUTE_ARN)
    assert not rules.invoke_allowed([_grant(), _grant(effect="Deny")], ROUTE_ARN)
