"""IAM policy evaluation (pure): Allow/Deny, wildcards, string-or-list, NotAction, Condition."""

from __future__ import annotations

import json

import pytest

from helpers.gateway.iam_policy import Effect, conditions_hold, evaluate, wildcard_match

MANAGE = "execute-api:ManageConnections"
ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/POST/@connections/Zx9_AbC="


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action=MANAGE, resource=ARN, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action=MANAGE, resource=ARN, **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def test_no_policy_is_an_implicit_deny():
    assert evaluate([], MANAGE, ARN).effect is Effect.IMPLICIT_DENY


def test_an_allow_allows():
    assert evaluate([policy(allow())], MANAGE, ARN).allowed


def test_an_explicit_deny_wins_over_any_allow_in_any_document():
    decision = evaluate([policy(allow("*", "*")), policy(deny())], MANAGE, ARN)
    assert decision.effect is Effect.EXPLICIT_DENY


def test_documents_may_be_json_text_as_iam_stores_them():
    assert evaluate([json.dumps(policy(allow()))], MANAGE, ARN).allowed
    assert not evaluate(["not json", None], MANAGE, ARN).allowed


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("execute-api:*", ARN),
        ("EXECUTE-API:manageconnections", ARN),  # actions are case-insensitive
        (["s3:GetObject", MANAGE], ["arn:aws:s3:::x", ARN]),
        (MANAGE, "arn:aws:execute-api:us-east-1:123456789012:abc123/*"),
        (MANAGE, "arn:aws:execute-api:*:*:abc123/dev/*/@connections/*"),
        (MANAGE, "arn:aws:execute-api:us-east-1:123456789012:abc123/de?/POST/@connections/*"),
        ("execute-api:Manage?onnections", ARN),
    ],
)
def test_wildcards_and_lists_allow(action, resource):
    assert evaluate([policy(allow(action, resource))], MANAGE, ARN).allowed


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("execute-api:Invoke", ARN),
        (MANAGE, ARN.replace("/dev/", "/prod/")),
        (MANAGE, ARN.replace("/POST/", "/DELETE/")),
        (MANAGE, ARN.upper()),  # resources are case-sensitive
        (MANAGE, "arn:aws:execute-api:us-east-1:123456789012:other/*"),
    ],
)
def test_an_allow_for_something_else_does_not_allow(action, resource):
    assert evaluate([policy(allow(action, resource))], MANAGE, ARN).effect is (
        Effect.IMPLICIT_DENY)


def test_statement_may_be_a_single_object():
    assert evaluate([{"Statement": allow()}], MANAGE, ARN).allowed


def test_not_action_and_not_resource_cover_everything_else():
    everything_but_s3 = {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}
    assert evaluate([policy(everything_but_s3)], MANAGE, ARN).allowed
    not_here = {"Effect": "Allow", "Action": "*", "NotResource": ARN}
    assert not evaluate([policy(not_here)], MANAGE, ARN).allowed


def test_a_statement_applies_only_when_its_condition_holds():
    conditional = allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    outside = evaluate([policy(conditional)], MANAGE, ARN, {"aws:sourceip": "192.0.2.1"})
    assert (outside.effect, outside.unmet) == (Effect.IMPLICIT_DENY, 1)
    assert evaluate([policy(conditional)], MANAGE, ARN, {"aws:SourceIp": "10.1.2.3"}).allowed
    conditional_deny = deny(Condition={"Bool": {"aws:SecureTransport": "false"}})
    assert evaluate([policy(allow(), conditional_deny)], MANAGE, ARN,
                    {"aws:SecureTransport": "true"}).allowed
    assert evaluate([policy(allow(), conditional_deny)], MANAGE, ARN,
                    {"aws:SecureTransport": "false"}).effect is Effect.EXPLICIT_DENY


ROLE = "arn:aws:iam::123456789012:role/chat-role"
REGION, PRINCIPAL, NOW = "aws:RequestedRegion", "aws:PrincipalArn", "aws:CurrentTime"
EAST = {REGION: "us-east-1"}


@pytest.mark.parametrize(("condition", "context", "holds"), [
    # strings: exact, case-insensitive, wildcards; several values OR, negated NOR
    ({"StringEquals": {REGION: "us-east-1"}}, EAST, True),
    ({"StringEquals": {REGION: "US-EAST-1"}}, EAST, False),
    ({"StringEqualsIgnoreCase": {REGION: "US-EAST-1"}}, EAST, True),
    ({"StringEquals": {REGION: ["eu-west-1", "us-east-1"]}}, EAST, True),
    ({"StringNotEquals": {REGION: ["eu-west-1", "us-east-1"]}}, EAST, False),
    ({"StringNotEquals": {REGION: "eu-west-1"}}, EAST, True),
    ({"StringLike": {PRINCIPAL: "arn:aws:iam::*:role/chat-*"}}, {PRINCIPAL: ROLE}, True),
    ({"StringNotLike": {PRINCIPAL: "*:role/chat-*"}}, {PRINCIPAL: ROLE}, False),
    # condition key names are case-insensitive
    ({"StringEquals": {"AWS:requestedregion": "us-east-1"}}, EAST, True),
    # ARNs, part by part
    ({"ArnLike": {PRINCIPAL: "arn:aws:iam::*:role/*"}}, {PRINCIPAL: ROLE}, True),
    ({"ArnEquals": {PRINCIPAL: ROLE}}, {PRINCIPAL: ROLE}, True),
    ({"ArnLike": {PRINCIPAL: "arn:aws:iam::*"}}, {PRINCIPAL: ROLE}, False),
    ({"ArnNotLike": {PRINCIPAL: "arn:aws:iam::*:role/admin"}}, {PRINCIPAL: ROLE}, True),
    # Bool, numbers, dates, addresses
    ({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": "true"}, True),
    ({"NumericLessThan": {"aws:EpochTime": "2000000000"}}, {"aws:EpochTime": "1796457600"}, True),
    ({"DateGreaterThan": {NOW: "2026-01-01T00:00:00Z"}}, {NOW: "2026-12-05T08:00:00Z"}, True),
    ({"DateLessThan": {NOW: "2026-01-01T00:00:00Z"}}, {NOW: "2026-12-05T08:00:00Z"}, False),
    ({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "127.0.0.0/8"]}},
     {"aws:SourceIp": "127.0.0.1"}, False),
    # a missing key: false, but true for a negated operator, ...IfExists, and Null "true"
    ({"StringEquals": {"aws:SourceVpc": "vpc-1"}}, {}, False),
    ({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, {}, True),
    ({"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, {}, True),
    ({"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, {"aws:SourceVpc": "vpc-2"}, False),
    ({"Null": {"aws:SourceVpc": "true"}}, {}, True),
    ({"Null": {"aws:SourceVpc": "false"}}, {}, False),
    ({"Null": {"aws:SourceVpc": "false"}}, {"aws:SourceVpc": "vpc-1"}, True),
    # multivalued keys
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}, {"aws:TagKeys": ["env", "team"]},
     True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, {"aws:TagKeys": ["env", "team"]},
     False),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, {}, True),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}, {}, False),
    # several operators and keys: all must hold
    ({"StringEquals": {REGION: "us-east-1", "aws:PrincipalAccount": "1"},
      "Bool": {"aws:SecureTransport": "true"}},
     {REGION: "us-east-1", "aws:PrincipalAccount": "1", "aws:SecureTransport": "true"}, True),
    ({"StringEquals": {REGION: "us-east-1", "aws:PrincipalAccount": "2"}},
     {REGION: "us-east-1", "aws:PrincipalAccount": "1"}, False),
    # an operator IAM does not know cannot hold
    ({"StringSoundsLike": {REGION: "us-east-1"}}, EAST, False),
])
def test_condition_operators(condition, context, holds):
    assert conditions_hold(condition, context) is holds


def test_a_statement_with_no_action_covers_nothing():
    assert not evaluate([policy({"Effect": "Allow", "Resource": "*"})], MANAGE, ARN).allowed


def test_wildcard_star_crosses_slashes_and_question_mark_is_one_character():
    assert wildcard_match("a*z", "a/b/c/z")
    assert wildcard_match("a?c", "abc") and not wildcard_match("a?c", "abbc")
    assert not wildcard_match("a.c", "abc")  # other characters are literal
