"""The gateway serving APIs built with boto3 in moto (issue behaviours 2, 3 and 11)."""

from __future__ import annotations

import json
import threading
import urllib.request

import boto3
import pytest
import websocket

from helpers.aws import (
    allow_api_gateway,
    deploy_websocket_api,
    handler_zip,
    lambda_integration_uri,
    lambda_role,
)
from helpers.client import Client
from helpers.gateway import LocalGateway, sigv4

ECHO = """
def lambda_handler(event, context):
    return {"statusCode": 200, "body": "echo:" + event["body"]}
"""

PUSH_BACK = """
import boto3
import websocket
client = None
def lambda_handler(event, context):
    global client
    ctx = event["requestContext"]
    if client is None:
        client = boto3.client("apigatewaymanagementapi",
                              endpoint_url=f"https://{ctx['domainName']}/{ctx['stage']}")
    data = b"pushed:" + event["body"].encode()
    client.post_to_connection(ConnectionId=ctx["connectionId"], Data=data)
    return {"statusCode": 200}
"""


# 2. Configuration from the control plane --------------------------------------------


def test_serves_a_deployed_api_with_its_two_way_route(aws, serve_api):
    api = deploy_websocket_api("echo", {"$default": ECHO}, two_way=["$default"])
    with Client(serve_api(api).url) as client:
        client.send("hi")
        assert client.recv() == "echo:hi"


def test_a_route_added_after_deployment_is_live_only_after_redeploying(aws, serve_api):
    api = deploy_websocket_api("late", {"$default": ECHO}, two_way=["$default"])
    gateway = serve_api(api)
    apigw, lam = boto3.client("apigatewayv2"), boto3.client("lambda")
    function = lam.create_function(
        FunctionName="late-ping", Runtime="python3.12", Role=lambda_role(),
        Handler="app.lambda_handler",
        Code={"ZipFile": handler_zip("def lambda_handler(e, c):\n"
                                     "    return {'statusCode': 200, 'body': 'pong'}\n")})
    allow_api_gateway(function["FunctionArn"], api.api_id)
    integration = apigw.create_integration(
        ApiId=api.api_id, IntegrationType="AWS_PROXY",
        IntegrationUri=lambda_integration_uri(function["FunctionArn"], "us-east-1"))
    route = apigw.create_route(ApiId=api.api_id, RouteKey="ping",
                               Target=f"integrations/{integration['IntegrationId']}",
                               RouteResponseSelectionExpression="$default")
    apigw.create_route_response(ApiId=api.api_id, RouteId=route["RouteId"],
                                RouteResponseKey="$default")
    with Client(gateway.url) as client:
        client.send('{"action": "ping"}')
        before = client.recv()
        deployment = apigw.create_deployment(ApiId=api.api_id, StageName=api.stage)
        apigw.update_stage(ApiId=api.api_id, StageName=api.stage,
                           DeploymentId=deployment["DeploymentId"])
        client.send('{"action": "ping"}')
        after = client.recv()
    assert (before, after) == ('echo:{"action": "ping"}', "pong")


def test_auto_deploy_stage_makes_changes_live_at_once(aws, serve_api):
    apigw, lam = boto3.client("apigatewayv2"), boto3.client("lambda")
    api_id = apigw.create_api(Name="auto", ProtocolType="WEBSOCKET",
                              RouteSelectionExpression="$request.body.action")["ApiId"]
    apigw.create_stage(ApiId=api_id, StageName="live", AutoDeploy=True)
    gateway = LocalGateway.from_api(api_id, "live").start()
    try:
        with Client(gateway.url) as client:
            client.send("x")
            forbidden = json.loads(client.recv())["message"]
            function = lam.create_function(
                FunctionName="auto-echo", Runtime="python3.12", Role=lambda_role(),
                Handler="app.lambda_handler", Code={"ZipFile": handler_zip(ECHO)})
            allow_api_gateway(function["FunctionArn"], api_id)
            integration = apigw.create_integration(
                ApiId=api_id, IntegrationType="AWS_PROXY",
                IntegrationUri=lambda_integration_uri(function["FunctionArn"], "us-east-1"))
            route = apigw.create_route(ApiId=api_id, RouteKey="$default",
                                       Target=f"integrations/{integration['IntegrationId']}",
                                       RouteResponseSelectionExpression="$default")
            apigw.create_route_response(ApiId=api_id, RouteId=route["RouteId"],
                                        RouteResponseKey="$default")
            client.send("x")
            assert (forbidden, client.recv()) == ("Forbidden", "echo:x")
    finally:
        gateway.stop()


def test_from_api_names_the_cause_and_fix_for_an_unknown_api(aws):
    with pytest.raises(LookupError, match="create_api"):
        LocalGateway.from_api("nosuchapi", "dev")


# 3. Lambda execution ----------------------------------------------------------------


CONTEXT_REPORT = """
import json, os
calls = 0
def lambda_handler(event, context):
    global calls
    calls += 1
    print("call", calls)
    return {"statusCode": 200, "body": json.dumps({
        "calls": calls, "greeting": os.environ["GREETING"],
        "function_name": context.function_name,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "log_group": context.log_group_name,
        "remaining": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
    })}
"""


def test_handler_runs_from_its_zip_with_env_context_and_warm_state(aws, serve_api):
    api = deploy_websocket_api("ctx", {"$default": CONTEXT_REPORT}, two_way=["$default"],
                               environment={"GREETING": "hello"}, function_timeout=7)
    gateway = serve_api(api)
    with Client(gateway.url) as client:
        client.send("a")
        first = client.recv_json()
        client.send("b")
        second = client.recv_json()
    assert (first["calls"], second["calls"]) == (1, 2)  # module state survives: a warm Lambda
    assert first["greeting"] == "hello"
    assert first["function_name"] == "ctx-default"
    assert first["arn"].endswith(":function:ctx-default")
    assert first["log_group"] == "/aws/lambda/ctx-default"
    assert str(first["memory"]) == "128"
    assert 6000 < first["remaining"] <= 7000
    logs = gateway.log.invocations("$default")[0]["logs"]
    assert logs[0].startswith("START RequestId: " + first["request_id"])
    assert "call 1" in logs
    assert logs[-1].startswith("REPORT RequestId:") and "Duration:" in logs[-1]


def test_two_functions_see_their_own_environment_while_running_at_once(aws, serve_api):
    source = """
import os, time
def lambda_handler(event, context):
    first = os.environ["COLOUR"]
    time.sleep(0.3)
    return {"statusCode": 200, "body": first + "/" + os.environ["COLOUR"]}
"""
    red = deploy_websocket_api("red", {"$default": source}, two_way=["$default"],
                               environment={"COLOUR": "red"})
    blue = deploy_websocket_api("blue", {"$default": source}, two_way=["$default"],
                                environment={"COLOUR": "blue"})
    clients = [Client(serve_api(red).url), Client(serve_api(blue).url)]
    for client in clients:
        client.send("go")
    assert [c.recv() for c in clients] == ["red/red", "blue/blue"]
    for client in clients:
        client.close()


def test_a_slow_handler_never_stalls_other_connections(aws, serve_api, tmp_path):
    source = """
import os, time
def lambda_handler(event, context):
    if event["body"].startswith("/"):  # a path: wait until the test creates that file
        deadline = time.monotonic() + 10
        while not os.path.exists(event["body"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        return {"statusCode": 200, "body": "slow"}
    return {"statusCode": 200, "body": event["body"]}
"""
    api = deploy_websocket_api("slow", {"$default": source}, two_way=["$default"],
                               function_timeout=15)
    gateway = serve_api(api)
    slow, quick = Client(gateway.url), Client(gateway.url)
    released = tmp_path / "release"
    slow.send(str(released))
    quick.send("quick")
    assert quick.recv() == "quick"  # while the slow handler still waits
    released.touch()
    assert slow.recv() == "slow"
    slow.close()
    quick.close()


# 11. The @connections API ---------------------------------------------------------------


def test_handler_pushes_with_a_client_built_the_aws_way(aws, serve_api):
    api = deploy_websocket_api("push", {"$default": PUSH_BACK})
    with Client(serve_api(api).url) as client:
        client.send("one")
        client.send("two")
        # Two invocations, each pushing on its own: no order between them (docs/aws-behaviour.md
        # §4.3a).
        assert sorted([client.recv(), client.recv()]) == ["pushed:one", "pushed:two"]


def test_connections_api_over_boto3_the_aws_way(aws, serve_api):
    api = deploy_websocket_api("mgmt", {"$default": ECHO})
    gateway = serve_api(api)
    management = boto3.client("apigatewaymanagementapi", endpoint_url=gateway.callback_url)
    client = Client(gateway.url, header={"User-Agent": "course-test"})
    [connection_id] = gateway.connections
    management.post_to_connection(ConnectionId=connection_id, Data=b"hello")
    info = management.get_connection(ConnectionId=connection_id)
    deleted = management.delete_connection(ConnectionId=connection_id)
    assert client.recv() == "hello"
    assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "course-test"}
    assert info["ConnectedAt"] <= info["LastActiveAt"]
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert client.wait_closed() == (1000, "Connection Closed Normally")
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"late")
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId=connection_id)
    with pytest.raises(management.exceptions.GoneException):
        management.delete_connection(ConnectionId=connection_id)


def test_oversized_post_raises_payload_too_large(aws, serve_api):
    api = deploy_websocket_api("big", {"$default": ECHO})
    gateway = serve_api(api)
    management = boto3.client("apigatewaymanagementapi", endpoint_url=gateway.callback_url)
    with Client(gateway.url) as client:
        [connection_id] = gateway.connections
        management.post_to_connection(ConnectionId=connection_id, Data=b"x" * 131072)
        assert len(client.recv()) == 131072  # at the limit: delivered, in 32 KB frames
        with pytest.raises(management.exceptions.PayloadTooLargeException):
            management.post_to_connection(ConnectionId=connection_id, Data=b"x" * 131073)


def test_unknown_connection_is_gone_over_plain_http(aws, serve_api):
    api = deploy_websocket_api("http", {"$default": ECHO})
    gateway = serve_api(api)
    url = f"{gateway.http_url}/@connections/bm9wZQ%3D%3D"
    signed = sigv4.sign("POST", url, b"x", access_key="testing", secret_key="testing")
    request = urllib.request.Request(url, data=b"x", method="POST", headers=signed)
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(request, timeout=5)
    assert (gone.value.code, gone.value.headers["x-amzn-ErrorType"]) == (410, "GoneException")


def test_boto3_over_real_http_to_the_gateway_port(aws, serve_api):
    api = deploy_websocket_api("real-http", {"$default": ECHO})
    gateway = serve_api(api)
    management = boto3.client("apigatewaymanagementapi", endpoint_url=gateway.http_url)
    with Client(gateway.url) as client:
        [connection_id] = gateway.connections
        results = []

        def post(n):
            management.post_to_connection(ConnectionId=connection_id, Data=f"m{n}".encode())
            results.append(n)

        threads = [threading.Thread(target=post, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(client.recv() for _ in range(3)) == ["m0", "m1", "m2"]


def test_endpoint_without_the_stage_is_403_forbidden(aws, serve_api):
    api = deploy_websocket_api("nostage", {"$default": ECHO})
    gateway = serve_api(api)
    with Client(gateway.url):
        [connection_id] = gateway.connections
        wrong = boto3.client("apigatewaymanagementapi",
                             endpoint_url=gateway.callback_url.rsplit("/", 1)[0])
        with pytest.raises(wrong.exceptions.ForbiddenException):
            wrong.post_to_connection(ConnectionId=connection_id, Data=b"x")


PUSH_BOTH_WAYS = """
import os
import boto3

def lambda_handler(event, context):
    ctx = event["requestContext"]
    region = os.environ["AWS_REGION"]
    urls = {"domainName": f"https://{ctx['domainName']}/{ctx['stage']}",
            "apiId": f"https://{ctx['apiId']}.execute-api.{region}.amazonaws.com/{ctx['stage']}"}
    for how, url in urls.items():
        api = boto3.client("apigatewaymanagementapi", endpoint_url=url)
        try:
            api.post_to_connection(ConnectionId=ctx["connectionId"], Data=how.encode())
        except api.exceptions.ForbiddenException:
            print(how, "403", ctx["domainName"])
    return {"statusCode": 200}
"""


def test_behind_a_custom_domain_only_the_api_id_endpoint_reaches_connections(aws, serve_api):
    api = deploy_websocket_api("customdomain", {"$default": PUSH_BOTH_WAYS})
    gateway = serve_api(api, custom_domain="chat.example.com")
    with Client(gateway.url) as client:
        client.send("hi")
        [entry] = gateway.log.wait_for_invocations("$default")
        assert client.recv() == "apiId"
        assert client.try_recv() is None
    assert "domainName 403 chat.example.com" in "\n".join(entry["logs"])
    outside = boto3.client("apigatewaymanagementapi", endpoint_url="https://chat.example.com/dev")
    with pytest.raises(outside.exceptions.ForbiddenException):  # not from a handler either
        outside.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")


def test_without_a_custom_domain_events_carry_the_execute_api_host(aws, serve_api):
    api = deploy_websocket_api("plaindomain", {"$default": PUSH_BOTH_WAYS})
    gateway = serve_api(api)
    with Client(gateway.url) as client:
        client.send("hi")
        gateway.log.wait_for_invocations("$default")
        assert sorted(client.wait_for(2)) == ["apiId", "domainName"]


def test_missing_endpoint_url_cannot_connect(aws, serve_api):
    from botocore.exceptions import EndpointConnectionError

    api = deploy_websocket_api("noendpoint", {"$default": ECHO})
    gateway = serve_api(api)
    with Client(gateway.url):
        default = boto3.client("apigatewaymanagementapi")
        with pytest.raises(EndpointConnectionError):
            default.post_to_connection(ConnectionId=gateway.connections[0], Data=b"x")


def test_route_keys_with_slashes_become_valid_function_names(aws):
    api = deploy_websocket_api("slash", {"chat/join": ECHO, "chat.say": ECHO})
    assert api.functions == {"chat/join": "slash-chat-join", "chat.say": "slash-chat-say"}


def test_function_without_invoke_permission_fails_like_aws(aws, serve_api):
    apigw, lam = boto3.client("apigatewayv2"), boto3.client("lambda")
    api_id = apigw.create_api(Name="noperm", ProtocolType="WEBSOCKET",
                              RouteSelectionExpression="$request.body.action")["ApiId"]
    function = lam.create_function(
        FunctionName="noperm-connect", Runtime="python3.12", Role=lambda_role(),
        Handler="app.lambda_handler",
        Code={"ZipFile": handler_zip("def lambda_handler(e, c):\n"
                                     "    return {'statusCode': 200}\n")})
    integration = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY",
        IntegrationUri=lambda_integration_uri(function["FunctionArn"], "us-east-1"))
    apigw.create_route(ApiId=api_id, RouteKey="$connect",
                       Target=f"integrations/{integration['IntegrationId']}")
    apigw.create_stage(ApiId=api_id, StageName="dev", AutoDeploy=True)
    gateway = LocalGateway.from_api(api_id, "dev").start()
    try:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(gateway.url, timeout=5)
        [failed] = gateway.log.invocations("$connect")
        lam.add_permission(
            FunctionName="noperm-connect", StatementId="apigw", Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/*/$connect")
        websocket.create_connection(gateway.url, timeout=5).close()
    finally:
        gateway.stop()
    assert refused.value.status_code == 500
    assert "Invalid permissions on Lambda function" in failed["error"]
    assert "add_permission" in failed["error"]
