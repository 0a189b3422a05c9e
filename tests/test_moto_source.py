"""helpers.gateway.moto_source: the deployed stage of a moto API, as the gateway sees it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest

from helpers.aws import handler_zip, lambda_integration_uri, lambda_role
from helpers.gateway import moto_source
from helpers.gateway.moto_source import MotoLambda, MotoSourceError, UnsupportedIntegration

REGION = "us-east-1"

COUNTER = """
    import os
    calls = 0

    def lambda_handler(event, context):
        global calls
        calls += 1
        return {"statusCode": 200, "body": f"{os.environ.get('GREETING', 'v1')} {calls}"}
"""


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with moto.mock_aws():
        yield {
            "v2": boto3.client("apigatewayv2", region_name=REGION),
            "lambda": boto3.client("lambda", region_name=REGION),
        }


def _function(aws: dict[str, Any], name: str = "chat", source: str = COUNTER, **kw: Any) -> str:
    return aws["lambda"].create_function(
        FunctionName=name, Runtime="python3.11", Role=lambda_role(), Handler="app.lambda_handler",
        Code={"ZipFile": handler_zip(source)}, **kw,
    )["FunctionArn"]


def _api(aws: dict[str, Any], uri: str, **integration: Any) -> str:
    v2 = aws["v2"]
    api_id = v2.create_api(
        Name="chat", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action"
    )["ApiId"]
    integration_id = v2.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=uri, **integration
    )["IntegrationId"]
    route_id = v2.create_route(
        ApiId=api_id, RouteKey="$default", Target=f"integrations/{integration_id}",
        RouteResponseSelectionExpression="$default",
    )["RouteId"]
    v2.create_route_response(ApiId=api_id, RouteId=route_id, RouteResponseKey="$default")
    v2.create_route(ApiId=api_id, RouteKey="send", Target=f"integrations/{integration_id}")
    return api_id


def test_api_config_reads_the_deployed_stage(aws: dict[str, Any]) -> None:
    arn = _function(aws, Timeout=7)
    api_id = _api(aws, lambda_integration_uri(arn, REGION), TimeoutInMillis=5000)
    v2 = aws["v2"]
    auth_arn = _function(aws, name="auth")
    authorizer_id = v2.create_authorizer(
        ApiId=api_id, AuthorizerType="REQUEST", Name="tokens",
        AuthorizerUri=lambda_integration_uri(auth_arn, REGION),
        IdentitySource=["route.request.querystring.token"],
    )["AuthorizerId"]
    v2.create_route(
        ApiId=api_id, RouteKey="$connect", AuthorizationType="CUSTOM", AuthorizerId=authorizer_id
    )
    v2.create_stage(ApiId=api_id, StageName="prod")
    deployment_id = v2.create_deployment(ApiId=api_id, StageName="prod")["DeploymentId"]

    config = moto_source.api_config(api_id, "prod")

    assert (config.api_id, config.stage, config.region, config.account_id) == (
        api_id, "prod", REGION, "123456789012",
    )
    assert config.route_selection_expression == "$request.body.action"
    assert config.revision == deployment_id
    routes = config.routes
    default, send, connect = routes["$default"], routes["send"], routes["$connect"]
    assert isinstance(default.function, MotoLambda) and default.function.name == "chat"
    assert (default.timeout, default.two_way, send.two_way) == (5.0, True, False)
    assert default.function.timeout == 7.0
    assert connect.function is None and connect.authorizer is not None
    assert connect.authorizer.identity_sources == ("route.request.querystring.token",)
    assert connect.authorizer.function.name == "auth"  # type: ignore[attr-defined]
    assert send.authorizer is None


def test_only_deployed_state_is_live_and_revision_tracks_it(aws: dict[str, Any]) -> None:
    v2 = aws["v2"]
    api_id = _api(aws, lambda_integration_uri(_function(aws), REGION))
    v2.create_stage(ApiId=api_id, StageName="prod")
    v2.create_stage(ApiId=api_id, StageName="dev", AutoDeploy=True)
    first = v2.create_deployment(ApiId=api_id, StageName="prod")["DeploymentId"]
    auto_before = moto_source.revision(api_id, "dev")

    v2.create_route(ApiId=api_id, RouteKey="later")

    assert "later" not in moto_source.api_config(api_id, "prod").routes
    assert "later" in moto_source.api_config(api_id, "dev").routes
    assert moto_source.revision(api_id, "prod") == first
    assert moto_source.revision(api_id, "dev") != auto_before
    second = v2.create_deployment(ApiId=api_id, StageName="prod")["DeploymentId"]
    assert moto_source.revision(api_id, "prod") == second
    assert "later" in moto_source.api_config(api_id, "prod").routes


def test_errors_name_the_cause_and_the_fix(aws: dict[str, Any]) -> None:
    v2 = aws["v2"]
    api_id = _api(aws, lambda_integration_uri(_function(aws), REGION))
    v2.create_stage(ApiId=api_id, StageName="prod")
    http_id = v2.create_api(Name="h", ProtocolType="HTTP")["ApiId"]

    with pytest.raises(MotoSourceError, match=r"No API 'nope' in moto: create it with apigat"):
        moto_source.api_config("nope", "prod")
    with pytest.raises(MotoSourceError, match=r"no stage 'beta' \(stages: prod\)"):
        moto_source.api_config(api_id, "beta")
    with pytest.raises(MotoSourceError, match=r"no deployment and AutoDeploy is off.*create_depl"):
        moto_source.api_config(api_id, "prod")
    with pytest.raises(MotoSourceError, match=r"HTTP API.*ProtocolType='WEBSOCKET'"):
        moto_source.api_config(http_id, "prod")
    assert moto_source.revision("nope", "prod") == ""


def test_integration_uris_in_both_forms_and_other_types(aws: dict[str, Any]) -> None:
    arn = _function(aws)
    v2 = aws["v2"]
    api_id = _api(aws, arn)  # the bare Lambda ARN form
    mock_id = v2.create_integration(ApiId=api_id, IntegrationType="MOCK")["IntegrationId"]
    v2.create_route(ApiId=api_id, RouteKey="mocked", Target=f"integrations/{mock_id}")
    v2.create_route(ApiId=api_id, RouteKey="nothing")
    v2.create_stage(ApiId=api_id, StageName="dev", AutoDeploy=True)

    routes = moto_source.api_config(api_id, "dev").routes

    assert moto_source.lambda_arn_from_uri(lambda_integration_uri(arn, REGION)) == arn
    assert isinstance(routes["$default"].function, MotoLambda)
    assert routes["$default"].function.function_arn == arn
    assert routes["$default"].timeout == 29.0
    mocked = routes["mocked"].function
    assert isinstance(mocked, UnsupportedIntegration)
    invocation = mocked.invoke({})
    assert not invocation.ok and "AWS_PROXY" in invocation.error
    assert routes["nothing"].function is None


def test_functions_stay_warm_and_pick_up_new_code_without_redeploying(aws: dict[str, Any]) -> None:
    arn = _function(aws)
    api_id = _api(aws, lambda_integration_uri(arn, REGION))
    v2 = aws["v2"]
    v2.create_stage(ApiId=api_id, StageName="prod")
    v2.create_deployment(ApiId=api_id, StageName="prod")
    function = moto_source.api_config(api_id, "prod").routes["$default"].function
    assert function is not None

    first = function.invoke({}).result["body"]
    v2.create_deployment(ApiId=api_id, StageName="prod")  # redeploying keeps the runtime warm
    again = moto_source.api_config(api_id, "prod").routes["$default"].function
    second = again.invoke({}).result["body"]  # type: ignore[union-attr]
    aws["lambda"].update_function_code(
        FunctionName="chat", ZipFile=handler_zip(COUNTER.replace("'v1'", "'v2'"))
    )
    third = function.invoke({}).result["body"]

    assert (first, second, third) == ("v1 1", "v1 2", "v2 1")


def test_missing_function_fails_the_invocation_not_the_config(aws: dict[str, Any]) -> None:
    arn = f"arn:aws:lambda:{REGION}:123456789012:function:ghost"
    api_id = _api(aws, lambda_integration_uri(arn, REGION))
    aws["v2"].create_stage(ApiId=api_id, StageName="dev", AutoDeploy=True)

    function: Any = moto_source.api_config(api_id, "dev").routes["$default"].function
    invocation = function.invoke({})

    assert function.timeout == 3.0  # Lambda's default, so the gateway can still time it
    assert not invocation.ok
    assert "ghost does not exist in moto" in invocation.error
