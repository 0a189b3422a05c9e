"""@connections over plain HTTP: signed with SigV4, attributed to whoever signed (docs §6.3).

Real gateway, real sockets; the handlers are deployed in moto and push with `requests`,
signing with botocore's `SigV4Auth` and the credentials Lambda gives their environment,
as code written for AWS does without boto3.
"""

from __future__ import annotations

import datetime
import json
import re
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from helpers.aws import deploy_websocket_api
from helpers.client import Client
from helpers.gateway import VirtualClock, sigv4
from helpers.gateway.clock import RealClock
from helpers.gateway.runtime import credentials

PUSH_OVER_HTTP = """
import json, os, time
from urllib.parse import quote

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

def lambda_handler(event, context):
    ctx, order = event["requestContext"], json.loads(event["body"])
    time.sleep(order.get("sleep", 0))
    url = f"{order['endpoint']}/@connections/{quote(ctx['connectionId'], safe='')}"
    request = AWSRequest(method="POST", url=url, data=b"pushed")
    SigV4Auth(boto3.Session().get_credentials(), "execute-api",
              os.environ["AWS_REGION"]).add_auth(request)
    answer = requests.post(url, data=b"pushed", headers=dict(request.headers), timeout=10)
    return {"statusCode": 200,
            "body": json.dumps([answer.status_code, answer.headers.get("x-amzn-ErrorType")])}
"""

PUSH_FROM = """
import http.client, json, os
from urllib.parse import quote, urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

def lambda_handler(event, context):
    ctx, order = event["requestContext"], json.loads(event["body"])
    url = f"{order['endpoint']}/@connections/{quote(ctx['connectionId'], safe='')}"
    request = AWSRequest(method="POST", url=url, data=b"pushed")
    SigV4Auth(boto3.Session().get_credentials(), "execute-api",
              os.environ["AWS_REGION"]).add_auth(request)
    parts = urlsplit(url)
    call = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10,
                                      source_address=(order["source"], 0))
    call.request("POST", parts.path, body=b"pushed", headers=dict(request.headers))
    return {"statusCode": 200, "body": json.dumps(call.getresponse().status)}
"""


def owner_signed(method: str, url: str, body: bytes = b"", secret: str = "testing",
                 key: str = "testing") -> urllib.request.Request:
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(Credentials(key, secret), "execute-api", "us-east-1").add_auth(request)
    return urllib.request.Request(url, data=body or None, method=method,
                                  headers=dict(request.headers))


def status_of(request: urllib.request.Request) -> tuple[int, str | None, dict]:
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, None, {}
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers["x-amzn-ErrorType"], json.loads(refused.read())


@pytest.fixture
def pusher(aws, serve_api):
    api = deploy_websocket_api("signed", {"$default": PUSH_OVER_HTTP}, two_way=["$default"],
                               function_timeout=1)
    return api, serve_api(api)


def push(gateway, client: Client, **order) -> list:
    client.send(json.dumps({"endpoint": gateway.http_url, **order}))
    received = [client.recv(timeout=15)]
    while received[-1] == "pushed":
        received.append(client.recv(timeout=15))
    return received


def test_a_handler_signing_with_its_environments_credentials_may_push(pusher):
    _, gateway = pusher
    with Client(gateway.url) as client:
        assert push(gateway, client) == ["pushed", json.dumps([200, None])]
    assert gateway.log.entries("refused") == []


def test_a_raw_http_call_is_judged_by_the_handlers_role(pusher):
    api, gateway = pusher
    role = api.role.rsplit("/", 1)[-1]
    boto3.client("iam").delete_role_policy(RoleName=role,
                                           PolicyName=f"manage-connections-{api.api_id}")
    with Client(gateway.url) as client:
        assert push(gateway, client) == [json.dumps([403, "AccessDeniedException"])]
    [refused] = gateway.log.entries("refused")
    assert refused["function"] == "signed-default" and "no policy of role" in refused["reason"]


def test_a_handler_frozen_at_its_timeout_cannot_push_over_http(pusher):
    _, gateway = pusher
    with Client(gateway.url) as client:
        client.send(json.dumps({"endpoint": gateway.http_url, "sleep": 1.5}))  # timeout: 1 s
        assert json.loads(client.recv(timeout=15))["message"] == "Internal server error"
        entries = gateway.log.wait_for(lambda es: any(
            e.kind == "manage" and e["status"] == "refused: after timeout" for e in es))
    assert not any(e.kind == "send" and e["via"] == "push" for e in entries)
    assert [e["outcome"] for e in gateway.log.invocations("$default")] == ["function-timeout"]


def test_unsigned_is_missing_authentication_token(pusher):
    _, gateway = pusher
    with Client(gateway.url):
        [connection_id] = gateway.connections
        url = f"{gateway.http_url}/@connections/{quote(connection_id, safe='')}"
        status = status_of(urllib.request.Request(url, data=b"x", method="POST"))
        assert status == (403, "MissingAuthenticationTokenException",
                          {"message": "Missing Authentication Token"})
        assert status_of(owner_signed("POST", url, b"x"))[0] == 200  # the account owner
    assert gateway.log.entries("refused")[0]["reason"] == "Missing Authentication Token"


def test_a_forged_or_expired_environment_key_is_refused(pusher):
    _, gateway = pusher
    with Client(gateway.url) as client:
        push(gateway, client)  # one environment now holds a key
        [connection_id] = gateway.connections
        url = f"{gateway.http_url}/@connections/{quote(connection_id, safe='')}"
        [key] = [k for k in credentials._holders if k.startswith(credentials.PREFIX)][-1:]
        forged = status_of(owner_signed("POST", url, b"x", key=key, secret="guessed"))
        assert forged[:2] == (403, "InvalidSignatureException")
        assert forged[2]["message"].startswith("The request signature we calculated does not")
        unknown = status_of(owner_signed("POST", url, b"x", key=credentials.PREFIX + "Z" * 14))
        assert unknown[:2] == (403, "UnrecognizedClientException")


def test_sigv4_checks_what_botocore_signs_header_and_query_forms():
    creds = Credentials("ASIAEXAMPLE", "secret", "token")
    url = "http://127.0.0.1:8080/dev/@connections/Zx9%3D?x=1"
    request = AWSRequest(method="POST", url=url, data=b"hello")
    SigV4Auth(creds, "execute-api", "eu-west-1").add_auth(request)
    headers = sigv4.lower_headers([*request.headers.items(), ("Host", "127.0.0.1:8080")])
    signature = sigv4.parse(headers, "x=1")
    assert (signature.access_key, signature.region, signature.service) == (
        "ASIAEXAMPLE", "eu-west-1", "execute-api")
    assert sigv4.matches(signature, "secret", "POST", url, headers, b"hello")
    assert not sigv4.matches(signature, "secret", "POST", url, headers, b"hellO")
    assert not sigv4.matches(signature, "other", "POST", url, headers, b"hello")
    assert not sigv4.matches(signature, "secret", "DELETE", url, headers, b"hello")
    assert sigv4.parse({"host": "h"}, "") is None
    with pytest.raises(sigv4.Malformed):
        sigv4.parse({"authorization": "AWS4-HMAC-SHA256 Credential=x/y"}, "")


def test_a_role_bearing_environment_holds_its_own_credentials(aws):
    from helpers.gateway.runtime.environments import ExecutionEnvironment

    def make(role):
        return ExecutionEnvironment(function_name="f", handler="m.h", role=role,
                                    variables=lambda stream: {}, callable_=lambda e, c: None)

    first, second = make("arn:aws:iam::123456789012:role/r"), make("arn:aws:iam::1:role/r")
    assert first.environ["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert first.environ["AWS_ACCESS_KEY_ID"] != second.environ["AWS_ACCESS_KEY_ID"]
    assert credentials.holder(first.environ["AWS_ACCESS_KEY_ID"])[0] is first
    assert "AWS_ACCESS_KEY_ID" not in make(None).environ  # no role: the process's own


def test_boto3_answered_in_process_is_judged_by_its_signature_too(pusher):
    """Outside any handler, the in-process door reads the same signature as plain HTTP."""
    _, gateway = pusher
    expired = boto3.client("apigatewaymanagementapi", endpoint_url=gateway.callback_url,
                           aws_access_key_id=credentials.PREFIX + "Z" * 14,
                           aws_secret_access_key="whatever")
    with Client(gateway.url):
        [connection_id] = gateway.connections
        with pytest.raises(expired.exceptions.ClientError) as error:
            expired.post_to_connection(ConnectionId=connection_id, Data=b"x")
    assert error.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# Signature age (docs §6.3): AWS takes a signature within 5 minutes of its X-Amz-Date, either
# way, and a presigned URL within its X-Amz-Expires. A client whose clock is off is played by
# botocore's own clock, shifted; the gateway's time by a VirtualClock's advances.

def skewed_clock(monkeypatch, minutes: float) -> None:
    """botocore signs as a client whose clock is `minutes` ahead (negative: behind)."""
    real = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda: real() + datetime.timedelta(minutes=minutes))


STAMP = r"\d{8}T\d{6}Z"


def test_a_signature_more_than_five_minutes_old_or_ahead_is_refused(pusher, monkeypatch):
    _, gateway = pusher
    with Client(gateway.url):
        [connection_id] = gateway.connections
        url = f"{gateway.http_url}/@connections/{quote(connection_id, safe='')}"
        skewed_clock(monkeypatch, -4)
        assert status_of(owner_signed("POST", url, b"x"))[0] == 200  # within 5 minutes
        skewed_clock(monkeypatch, -6 + 4)  # on top of the -4: six minutes behind
        status, kind, body = status_of(owner_signed("POST", url, b"x"))
        assert (status, kind) == (403, "InvalidSignatureException")
        assert re.fullmatch(rf"Signature expired: {STAMP} is now earlier than {STAMP} "
                            rf"\({STAMP} - 5 min\.\)", body["message"])
        skewed_clock(monkeypatch, 12)  # six minutes ahead
        status, kind, body = status_of(owner_signed("POST", url, b"x"))
        assert (status, kind) == (403, "InvalidSignatureException")
        assert re.fullmatch(rf"Signature not yet current: {STAMP} is still later than {STAMP} "
                            rf"\({STAMP} \+ 5 min\.\)", body["message"])
    reasons = [e["reason"] for e in gateway.log.entries("refused")]
    assert [r.split(":")[0] for r in reasons] == ["Signature expired", "Signature not yet current"]


def test_a_malformed_x_amz_date_is_refused_naming_the_format(pusher):
    _, gateway = pusher
    with Client(gateway.url):
        [connection_id] = gateway.connections
        url = f"{gateway.http_url}/@connections/{quote(connection_id, safe='')}"
        request = owner_signed("POST", url, b"x")
        request.headers["X-amz-date"] = "2026-01-01 12:00"
        status, kind, body = status_of(request)
    assert (status, kind) == (403, "IncompleteSignatureException")
    assert body["message"].startswith("X-Amz-Date must be in the form YYYYMMDD'T'HHMMSS'Z'")


def test_signatures_age_with_the_gateways_virtual_clock(aws, serve_api, monkeypatch):
    """A request signed before `advance(minutes=6)` is six minutes old after it; one signed
    after it (boto3 signs each call as it sends it) is fresh; a presigned URL lasts its
    X-Amz-Expires of gateway time. (X-Amz-Date has whole seconds and an advance in the
    signature's own second does not count: the early ones are dated 2 s back.)"""
    api = deploy_websocket_api("aging", {"$default": "def lambda_handler(e, c):\n    "
                                         "return {'statusCode': 200}\n"})
    gateway = serve_api(api, clock=VirtualClock())
    with Client(gateway.url):
        [connection_id] = gateway.connections
        url = f"{gateway.http_url}/@connections/{quote(connection_id, safe='')}"
        skewed_clock(monkeypatch, -2 / 60)
        early = owner_signed("POST", url, b"x")
        query = AWSRequest(method="GET", url=url)
        SigV4QueryAuth(Credentials("testing", "testing"), "execute-api", "us-east-1",
                       expires=120).add_auth(query)
        presigned_url = query.url
        monkeypatch.undo()
        assert status_of(urllib.request.Request(presigned_url))[0] == 200
        gateway.clock.advance(minutes=6)
        status, kind, body = status_of(early)
        assert (status, kind) == (403, "InvalidSignatureException")
        assert body["message"].startswith("Signature expired: ")
        assert status_of(urllib.request.Request(presigned_url)) == (
            403, "InvalidSignatureException", {"message": "Request has expired"})
        assert status_of(owner_signed("POST", url, b"x"))[0] == 200  # signed after the jump
        management = boto3.client("apigatewaymanagementapi", endpoint_url=gateway.callback_url)
        management.post_to_connection(ConnectionId=connection_id, Data=b"boto3, after it")


def test_age_problem_is_pure_and_exact_at_the_edges():
    signature = sigv4.parse({"authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/"
                             "us-east-1/execute-api/aws4_request, SignedHeaders=host, "
                             "Signature=00", "x-amz-date": "20260101T120000Z"})
    assert sigv4.age_problem(signature, 300) is None
    assert sigv4.age_problem(signature, -300) is None
    assert sigv4.age_problem(signature, 301) == (
        "Signature expired: 20260101T120000Z is now earlier than 20260101T120001Z "
        "(20260101T120501Z - 5 min.)")
    assert sigv4.age_problem(signature, -301) == (
        "Signature not yet current: 20260101T120000Z is still later than 20260101T115959Z "
        "(20260101T115459Z + 5 min.)")
    presigned = sigv4.parse({}, "X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fexecute-api"
                            "%2Faws4_request&X-Amz-Date=20260101T120000Z&X-Amz-Expires=900"
                            "&X-Amz-SignedHeaders=host&X-Amz-Signature=00")
    assert sigv4.age_problem(presigned, 900) is None  # its own expiry, not the 5 minutes
    assert sigv4.age_problem(presigned, 901) == "Request has expired"
    with pytest.raises(sigv4.Malformed, match="X-Amz-Expires must be a whole number"):
        sigv4.parse({}, "X-Amz-Credential=A%2F2%2Fr%2Fs%2Faws4_request&X-Amz-Date="
                    "20260101T120000Z&X-Amz-Expires=soon&X-Amz-SignedHeaders=host"
                    "&X-Amz-Signature=00")


def test_a_virtual_clock_counts_only_the_advances_after_a_signature():
    clock = VirtualClock()
    before = time.time() - 2  # a whole second earlier than any advance below
    clock.advance(minutes=10)
    after = time.time() + 1  # the next X-Amz-Date second
    assert 600 <= clock.elapsed_since(before) < 600 + 60
    assert clock.elapsed_since(after) < 60
    assert RealClock().elapsed_since(before) < 60


def test_a_virtual_clock_remembers_many_small_advances_in_a_few_records():
    """A lesson may advance in a tight loop (lesson 06's reconnect trial: thousands of
    steps); the clock keeps one record per real second, and every step still counts."""
    clock = VirtualClock()
    before = time.time() - 2
    for _ in range(20_000):
        clock.advance(0.25)
    assert 5000 <= clock.elapsed_since(before) < 5000 + 60
    assert len(clock._advances) < 60  # per real second, not per advance


def test_aws_source_ip_is_the_address_a_plain_http_call_comes_from(aws, serve_api):
    """docs §7.4: a handler's role may be limited to calls from some addresses; over HTTP
    the key is the peer address of the call (here 127.0.0.2, a loopback address of Linux)."""
    api = deploy_websocket_api("fromip", {"$default": PUSH_FROM}, two_way=["$default"])
    role = api.role.rsplit("/", 1)[-1]
    iam = boto3.client("iam")
    iam.delete_role_policy(RoleName=role, PolicyName=f"manage-connections-{api.api_id}")
    iam.put_role_policy(RoleName=role, PolicyName="from-127-0-0-2", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "execute-api:ManageConnections", "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.2/32"}}}]}))
    gateway = serve_api(api)
    with Client(gateway.url) as client:
        for source, answers in (("127.0.0.2", ["pushed", "200"]), ("127.0.0.1", ["403"])):
            client.send(json.dumps({"endpoint": gateway.http_url, "source": source}))
            received = [client.recv(timeout=15)]
            if received == ["pushed"]:
                received.append(client.recv(timeout=15))
            assert received == answers
    assert "Condition did not hold" in gateway.log.entries("refused")[-1]["reason"]
