"""IAM policy evaluation (pure): Allow/Deny, wildcards, string-or-list, NotAction, Condition."""

from __future__ import annotations

import json

import pytest

from helpers.gateway.iam_policy import Effect, evaluate, wildcard_match

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


def test_statements_with_a_condition_are_skipped_and_counted():
    conditional = allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    decision = evaluate([policy(conditional)], MANAGE, ARN)
    assert (decision.effect, decision.skipped) == (Effect.IMPLICIT_DENY, 1)
    conditional_deny = deny(Condition={"Bool": {"aws:SecureTransport": "false"}})
    assert evaluate([policy(allow(), conditional_deny)], MANAGE, ARN).allowed


def test_a_statement_with_no_action_covers_nothing():
    assert not evaluate([policy({"Effect": "Allow", "Resource": "*"})], MANAGE, ARN).allowed


def test_wildcard_star_crosses_slashes_and_question_mark_is_one_character():
    assert wildcard_match("a*z", "a/b/c/z")
    assert wildcard_match("a?c", "abc") and not wildcard_match("a?c", "abbc")
    assert not wildcard_match("a.c", "abc")  # other characters are literal
