"""Lesson 08's building blocks, shared by its demo cells and its graded checks.

The check cells import these from here rather than calling functions defined in the notebook's
ordinary cells: an answer cell that redefines `try_connect` or `protect` (say, to report
"101 connected" whatever happened) changes the demos, never a grade. The checks also deploy
their own `$connect` and `whoami` handlers, not the notebook's `CONNECT_CHECKED` or `WHOAMI`.
"""

from __future__ import annotations

import itertools
import json

import boto3
import websocket

from helpers.aws import deploy_websocket_api, handler_zip, lambda_integration_uri, lambda_role
from helpers.client import Client
from helpers.gateway import LocalGateway, VirtualClock

#: `whoami` answers with what the authorizer put in the request context.
WHOAMI = """
import json

def lambda_handler(event, context):
    return {"statusCode": 200,
            "body": json.dumps(event["requestContext"].get("authorizer"))}
"""
#: `$connect` that accepts, choosing the first subprotocol offered (never the token).
CONNECT_ECHOING_SUBPROTOCOL = """
def lambda_handler(event, context):
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    response = {"statusCode": 200}
    if offered[0]:
        response["headers"] = {"Sec-WebSocket-Protocol": offered[0]}
    return response
"""

_runs = itertools.count(1)


def try_connect(url, **options):
    """The handshake's outcome: "101 connected" or the HTTP status it was refused with."""
    try:
        Client(url, **options).close()
        return "101 connected"
    except websocket.WebSocketBadStatusException as error:
        return f"{error.status_code} refused"


def protect(api, source, identity_source, name):
    """Put the authorizer in `source` on the API's $connect route and redeploy."""
    lam, apigw = boto3.client("lambda"), boto3.client("apigatewayv2")
    region = lam.meta.region_name
    account = boto3.client("sts").get_caller_identity()["Account"]
    function = lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=lambda_role(),
        Handler="app.lambda_handler", Code={"ZipFile": handler_zip(source)})
    lam.add_permission(
        FunctionName=name, StatementId=f"{name}-invoke", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{region}:{account}:{api.api_id}/authorizers/*")
    authorizer = apigw.create_authorizer(
        ApiId=api.api_id, AuthorizerType="REQUEST", Name=name,
        AuthorizerUri=lambda_integration_uri(function["FunctionArn"], region),
        IdentitySource=identity_source)
    connect = next(r for r in apigw.get_routes(ApiId=api.api_id)["Items"]
                   if r["RouteKey"] == "$connect")
    apigw.update_route(ApiId=api.api_id, RouteId=connect["RouteId"],
                       AuthorizationType="CUSTOM", AuthorizerId=authorizer["AuthorizerId"])
    apigw.create_deployment(ApiId=api.api_id, StageName=api.stage)
    return authorizer


def exercise_gateway(authorizer_source: str) -> LocalGateway:
    """A fresh API with the learner's authorizer on $connect, started (stop it when done)."""
    if "raise NotImplementedError()" in authorizer_source:
        raise NotImplementedError()  # the stub: `checking` says "not done yet"
    number = next(_runs)
    api = deploy_websocket_api(f"lesson08-check-{number}",
                               {"$connect": CONNECT_ECHOING_SUBPROTOCOL, "whoami": WHOAMI},
                               two_way=["whoami"])
    protect(api, authorizer_source, [], f"lesson08-check-{number}-authorizer")
    return LocalGateway.from_api(api.api_id, api.stage, clock=VirtualClock()).start()


def whoami(url, **options) -> dict:
    """What the authorizer told the backend about this connection."""
    with Client(url, **options) as client:
        client.send_json({"action": "whoami"})
        return json.loads(client.recv())
