"""`$connect` with AuthorizationType AWS_IAM (docs §7.3): the upgrade request must be signed
with SigV4 by someone allowed execute-api:Invoke on the `$connect` route; 403 otherwise.

Real gateway, real sockets, IAM users and keys in moto; signed with botocore's signers
(query string and header forms), connected with the `websockets` library's client.
"""

from __future__ import annotations

import datetime
import json

import boto3
import botocore.auth
import pytest
import websockets.exceptions
import websockets.sync.client
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from helpers.aws import deploy_websocket_api
from helpers.gateway import VirtualClock

ECHO = """
def lambda_handler(event, context):
    return {"statusCode": 200, "body": event["body"]}
"""
OK = """
def lambda_handler(event, context):
    return {"statusCode": 200}
"""


def serve_guarded(serve_api, name: str, **options):
    """An echo API whose `$connect` has AuthorizationType AWS_IAM, served."""
    api = deploy_websocket_api(name, {"$connect": OK, "$default": ECHO}, two_way=["$default"])
    v2 = boto3.client("apigatewayv2")
    [connect] = [r for r in v2.get_routes(ApiId=api.api_id)["Items"]
                 if r["RouteKey"] == "$connect"]
    v2.update_route(ApiId=api.api_id, RouteId=connect["RouteId"], AuthorizationType="AWS_IAM")
    v2.create_deployment(ApiId=api.api_id, StageName=api.stage)
    return api, serve_api(api, **options)


@pytest.fixture
def guarded(aws, serve_api):
    return serve_guarded(serve_api, "iamconnect")


def user(name: str, api=None) -> Credentials:
    """An IAM user with an access key; allowed to connect to `api`'s stage if given."""
    iam = boto3.client("iam")
    iam.create_user(UserName=name)
    if api is not None:
        iam.put_user_policy(UserName=name, PolicyName="connect", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "execute-api:Invoke",
                "Resource": f"arn:aws:execute-api:us-east-1:*:{api.api_id}/dev/$connect"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def presigned(gateway, credentials: Credentials) -> str:
    request = AWSRequest(method="GET", url=gateway.url.replace("ws://", "http://", 1))
    SigV4QueryAuth(credentials, "execute-api", "us-east-1", expires=60).add_auth(request)
    return request.url.replace("http://", "ws://", 1)


def signed_headers(gateway, credentials: Credentials) -> dict[str, str]:
    request = AWSRequest(method="GET", url=gateway.url.replace("ws://", "http://", 1))
    SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def echoes(url: str, **options) -> bool:
    with websockets.sync.client.connect(url, **options) as ws:
        ws.send("hi")
        return ws.recv(timeout=10) == "hi"


def refused(url: str, **options) -> tuple[int, str]:
    with pytest.raises(websockets.exceptions.InvalidStatus) as error:
        websockets.sync.client.connect(url, **options)
    response = error.value.response
    return response.status_code, json.loads(response.body)["message"]


def test_an_unsigned_handshake_is_403_and_connect_never_runs(guarded):
    _, gateway = guarded
    assert refused(gateway.url) == (403, "Missing Authentication Token")
    assert gateway.log.invocations("$connect") == []


def test_a_user_allowed_to_invoke_connects_with_a_presigned_url(guarded):
    api, gateway = guarded
    assert echoes(presigned(gateway, user("ada", api)))


def test_a_user_allowed_to_invoke_connects_with_signed_headers(guarded):
    api, gateway = guarded
    assert echoes(gateway.url, additional_headers=signed_headers(gateway, user("ada", api)))


def test_a_user_without_execute_api_invoke_is_refused(guarded):
    _, gateway = guarded
    status, message = refused(presigned(gateway, user("bob")))
    assert status == 403 and message.startswith(
        "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: "
        "execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:123456789012:")
    [reject] = [e for e in gateway.log.wait_for(lambda es: any(e.kind == "reject" for e in es))
                if e.kind == "reject"]  # logged just after the 403 goes out
    assert "no policy allows" in reject["problem"]


def test_a_wrong_secret_is_a_signature_mismatch(guarded):
    api, gateway = guarded
    ada = user("ada", api)
    status, message = refused(presigned(gateway, Credentials(ada.access_key, "not-the-secret")))
    assert status == 403 and message.startswith("The request signature we calculated")


def test_the_account_owners_credentials_connect(guarded):
    _, gateway = guarded
    assert echoes(presigned(gateway, Credentials("testing", "testing")))


def test_a_stale_presigned_url_is_refused_and_connect_never_runs(guarded, monkeypatch):
    """A client whose clock is 6 minutes behind, or a URL used past its X-Amz-Expires of
    the gateway's time (docs §6.3): 403 before `$connect` runs."""
    api, gateway = guarded
    ada = user("ada", api)
    real = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda: real() - datetime.timedelta(minutes=6))
    with pytest.raises(websockets.exceptions.InvalidStatus) as error:
        websockets.sync.client.connect(gateway.url,
                                       additional_headers=signed_headers(gateway, ada))
    assert error.value.response.status_code == 403
    assert json.loads(error.value.response.body)["message"].startswith("Signature expired: ")
    monkeypatch.undo()
    assert echoes(presigned(gateway, ada))  # the control: signed now, within 60 s
    assert len(gateway.log.invocations("$connect")) == 1


def test_a_presigned_url_expires_on_the_gateways_virtual_clock(aws, serve_api, monkeypatch):
    api, gateway = serve_guarded(serve_api, "iamclock", clock=VirtualClock())
    real = botocore.auth.get_current_datetime  # dated 2 s back: before the advance's second
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda: real() - datetime.timedelta(seconds=2))
    url = presigned(gateway, user("ada", api))  # X-Amz-Expires=60
    assert echoes(url)
    gateway.clock.advance(minutes=2)
    assert refused(url) == (403, "Request has expired")
