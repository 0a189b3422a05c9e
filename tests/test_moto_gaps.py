"""moto's apigatewayv2 gaps, filled by helpers.gateway.moto_gaps, seen through boto3."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import moto
import pytest

from helpers.gateway import moto_gaps

REGION = "us-east-1"


@pytest.fixture
def v2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with moto.mock_aws():
        yield boto3.client("apigatewayv2", region_name=REGION)


def _websocket_api(v2: Any) -> str:
    return v2.create_api(
        Name="chat", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action"
    )["ApiId"]


def _api(api_id: str) -> Any:
    from moto.apigatewayv2.models import apigatewayv2_backends

    return apigatewayv2_backends["123456789012"][REGION].apis[api_id]


def test_moto_still_lacks_every_operation_we_fill() -> None:
    # Fails when a moto upgrade implements one: delete our filler from moto_gaps/responses.py.
    assert set(moto_gaps.FILLED_OPERATIONS) == moto_gaps.MISSING_IN_MOTO


def test_create_api_gives_websocket_apis_a_wss_endpoint(v2: Any) -> None:
    api_id = _websocket_api(v2)
    http = v2.create_api(Name="h", ProtocolType="HTTP")
    assert v2.get_api(ApiId=api_id)["ApiEndpoint"] == (
        f"wss://{api_id}.execute-api.{REGION}.amazonaws.com"
    )
    assert http["ApiEndpoint"].startswith("https://")


def test_create_deployment_answers_like_aws_and_attaches_the_stage(v2: Any) -> None:
    api_id = _websocket_api(v2)
    v2.create_stage(ApiId=api_id, StageName="prod")
    created = v2.create_deployment(
        ApiId=api_id, StageName="prod", Description="first"
    )
    deployment_id = created["DeploymentId"]
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["DeploymentStatus"] == "DEPLOYED"
    assert created["AutoDeployed"] is False
    assert created["Description"] == "first"
    assert "CreatedDate" in created
    assert v2.get_deployment(
        ApiId=api_id, DeploymentId=deployment_id
    )["DeploymentId"] == deployment_id
    assert [d["DeploymentId"] for d in v2.get_deployments(ApiId=api_id)["Items"]] == [
        deployment_id
    ]
    assert v2.get_stage(ApiId=api_id, StageName="prod")["DeploymentId"] == deployment_id


def test_delete_deployment_refuses_a_deployment_a_stage_uses(v2: Any) -> None:
    api_id = _websocket_api(v2)
    v2.create_stage(ApiId=api_id, StageName="prod")
    old = v2.create_deployment(ApiId=api_id, StageName="prod")["DeploymentId"]
    new = v2.create_deployment(ApiId=api_id, StageName="prod")["DeploymentId"]
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.delete_deployment(ApiId=api_id, DeploymentId=new)
    deleted = v2.delete_deployment(ApiId=api_id, DeploymentId=old)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_deployment(ApiId=api_id, DeploymentId=old)


def test_create_stage_honours_deployment_id(v2: Any) -> None:
    api_id = _websocket_api(v2)
    deployment_id = v2.create_deployment(ApiId=api_id)["DeploymentId"]
    stage = v2.create_stage(
        ApiId=api_id, StageName="prod", DeploymentId=deployment_id
    )
    assert stage["DeploymentId"] == deployment_id
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.create_stage(ApiId=api_id, StageName="dev", DeploymentId="nope00")


def test_update_stage_changes_deployment_autodeploy_and_description(v2: Any) -> None:
    api_id = _websocket_api(v2)
    first = v2.create_deployment(ApiId=api_id)["DeploymentId"]
    second = v2.create_deployment(ApiId=api_id)["DeploymentId"]
    v2.create_stage(ApiId=api_id, StageName="prod", DeploymentId=first)
    updated = v2.update_stage(
        ApiId=api_id, StageName="prod", DeploymentId=second, AutoDeploy=True, Description="v2"
    )
    assert (updated["DeploymentId"], updated["AutoDeploy"], updated["Description"]) == (
        second, True, "v2",
    )
    assert v2.get_stage(ApiId=api_id, StageName="prod")["AutoDeploy"] is True
    with pytest.raises(botocore.exceptions.ClientError, match="NotFound"):
        v2.update_stage(ApiId=api_id, StageName="nope", AutoDeploy=True)


def test_get_route_responses_lists_them(v2: Any) -> None:
    api_id = _websocket_api(v2)
    route_id = v2.create_route(ApiId=api_id, RouteKey="$default")["RouteId"]
    v2.create_route_response(
        ApiId=api_id, RouteId=route_id, RouteResponseKey="$default"
    )
    items = v2.get_route_responses(ApiId=api_id, RouteId=route_id)["Items"]
    assert [item["RouteResponseKey"] for item in items] == ["$default"]


def test_deployments_snapshot_state_and_autodeploy_follows_it(v2: Any) -> None:
    api_id = _websocket_api(v2)
    v2.create_route(ApiId=api_id, RouteKey="$default")
    v2.create_stage(ApiId=api_id, StageName="prod")
    v2.create_stage(ApiId=api_id, StageName="dev", AutoDeploy=True)
    v2.create_deployment(ApiId=api_id, StageName="prod")
    v2.create_route(ApiId=api_id, RouteKey="later")
    api = _api(api_id)

    def keys(stage: str) -> set[str]:
        state = moto_gaps.deployed_state(api, api.stages[stage])
        assert state is not None
        return {route.route_key for route in state.routes}

    assert (keys("prod"), keys("dev")) == ({"$default"}, {"$default", "later"})
    v2.create_deployment(ApiId=api_id, StageName="prod")
    assert keys("prod") == {"$default", "later"}


def test_apply_is_idempotent(v2: Any) -> None:
    moto_gaps.apply()
    moto_gaps.apply()
    api_id = _websocket_api(v2)
    before = moto_gaps.api_revision(_api(api_id))
    v2.create_route(ApiId=api_id, RouteKey="$default")
    assert moto_gaps.api_revision(_api(api_id)) == before + 1
    assert v2.create_deployment(ApiId=api_id)["DeploymentStatus"] == "DEPLOYED"


def test_websocket_proxy_integrations_default_to_29_seconds(v2: Any) -> None:
    api_id = _websocket_api(v2)
    uri = "arn:aws:lambda:us-east-1:123456789012:function:f"
    default = v2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=uri)
    chosen = v2.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=uri, TimeoutInMillis=5000
    )
    assert (default["TimeoutInMillis"], chosen["TimeoutInMillis"]) == (29000, 5000)


# --- WebSocket control-plane validations (AWS rejects these; moto 5.2.5 accepted them) -----

LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"
AUTHORIZER_URI = (
    f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{LAMBDA_ARN}/invocations"
)


@contextlib.contextmanager
def _bad_request(v2: Any, *needles: str) -> Iterator[None]:
    """Expect a 400 BadRequestException whose message mentions every needle."""
    with pytest.raises(v2.exceptions.BadRequestException) as info:
        yield
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    for needle in needles:
        assert needle in response["Error"]["Message"]


def _authorizer_kwargs(api_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "ApiId": api_id,
        "Name": "auth",
        "AuthorizerType": "REQUEST",
        "AuthorizerUri": AUTHORIZER_URI,
        "IdentitySource": ["route.request.header.Auth"],
        **overrides,
    }


@pytest.mark.parametrize("route_key", ["$disconnect", "$default", "sendmessage"])
@pytest.mark.parametrize("authorization_type", ["CUSTOM", "AWS_IAM"])
def test_websocket_authorization_only_on_connect(
    v2: Any, route_key: str, authorization_type: str
) -> None:
    api_id = _websocket_api(v2)
    with _bad_request(v2, "restricted to the $connect route", route_key, "NONE"):
        v2.create_route(
            ApiId=api_id, RouteKey=route_key, AuthorizationType=authorization_type
        )
    assert v2.get_routes(ApiId=api_id)["Items"] == []
    created = v2.create_route(
        ApiId=api_id, RouteKey="$connect", AuthorizationType=authorization_type
    )
    assert created["AuthorizationType"] == authorization_type
    assert v2.create_route(ApiId=api_id, RouteKey=route_key)["AuthorizationType"] == "NONE"


def test_websocket_update_route_keeps_authorization_on_connect(v2: Any) -> None:
    api_id = _websocket_api(v2)
    other = v2.create_route(ApiId=api_id, RouteKey="sendmessage")["RouteId"]
    connect = v2.create_route(ApiId=api_id, RouteKey="$connect")["RouteId"]
    with _bad_request(v2, "restricted to the $connect route", "sendmessage"):
        v2.update_route(ApiId=api_id, RouteId=other, AuthorizationType="AWS_IAM")
    assert v2.get_route(ApiId=api_id, RouteId=other)["AuthorizationType"] == "NONE"
    updated = v2.update_route(ApiId=api_id, RouteId=connect, AuthorizationType="AWS_IAM")
    assert updated["AuthorizationType"] == "AWS_IAM"
    # Renaming the authorized $connect route would leave authorization on another route.
    with _bad_request(v2, "restricted to the $connect route", "renamed"):
        v2.update_route(ApiId=api_id, RouteId=connect, RouteKey="renamed")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.update_route(ApiId=api_id, RouteId="nope", AuthorizationType="CUSTOM")


def test_websocket_routes_reject_jwt_authorization(v2: Any) -> None:
    api_id = _websocket_api(v2)
    with _bad_request(v2, "JWT", "HTTP APIs only", "CUSTOM"):
        v2.create_route(ApiId=api_id, RouteKey="$connect", AuthorizationType="JWT")
    route_id = v2.create_route(ApiId=api_id, RouteKey="$connect")["RouteId"]
    with _bad_request(v2, "JWT", "HTTP APIs only"):
        v2.update_route(ApiId=api_id, RouteId=route_id, AuthorizationType="JWT")


def test_websocket_integrations_accept_only_payload_format_1_0(v2: Any) -> None:
    api_id = _websocket_api(v2)
    kwargs = {"ApiId": api_id, "IntegrationType": "AWS_PROXY", "IntegrationUri": LAMBDA_ARN}
    with _bad_request(v2, "Unsupported PayloadFormatVersion: 2.0", '"1.0"'):
        v2.create_integration(**kwargs, PayloadFormatVersion="2.0")
    integration = v2.create_integration(**kwargs, PayloadFormatVersion="1.0")
    assert integration["PayloadFormatVersion"] == "1.0"
    with _bad_request(v2, "Unsupported PayloadFormatVersion: 2.0"):
        v2.update_integration(
            ApiId=api_id, IntegrationId=integration["IntegrationId"], PayloadFormatVersion="2.0"
        )
    assert v2.get_integration(
        ApiId=api_id, IntegrationId=integration["IntegrationId"]
    )["PayloadFormatVersion"] == "1.0"


@pytest.mark.parametrize("timeout", [29001, 30000])
def test_websocket_integration_timeout_is_at_most_29_seconds(v2: Any, timeout: int) -> None:
    api_id = _websocket_api(v2)
    kwargs = {"ApiId": api_id, "IntegrationType": "AWS_PROXY", "IntegrationUri": LAMBDA_ARN}
    with _bad_request(v2, f"TimeoutInMillis {timeout}", "between 50 and 29000"):
        v2.create_integration(**kwargs, TimeoutInMillis=timeout)
    for edge in (50, 29000):
        assert v2.create_integration(**kwargs, TimeoutInMillis=edge)["TimeoutInMillis"] == edge
    integration_id = v2.create_integration(**kwargs)["IntegrationId"]
    with _bad_request(v2, "between 50 and 29000"):
        v2.update_integration(ApiId=api_id, IntegrationId=integration_id, TimeoutInMillis=timeout)


def test_websocket_integration_timeout_below_50_is_rejected_by_the_server_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # botocore refuses < 50 client-side; without that check the server must still say no.
    import botocore.config

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with moto.mock_aws():
        raw = boto3.client(
            "apigatewayv2",
            region_name=REGION,
            config=botocore.config.Config(parameter_validation=False),
        )
        api_id = _websocket_api(raw)
        with _bad_request(raw, "TimeoutInMillis 49", "between 50 and 29000"):
            raw.create_integration(
                ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=LAMBDA_ARN,
                TimeoutInMillis=49,
            )


def test_websocket_authorizers_must_be_request_authorizers(v2: Any) -> None:
    api_id = _websocket_api(v2)
    with _bad_request(v2, "AuthorizerType JWT", "REQUEST"):
        v2.create_authorizer(**_authorizer_kwargs(
            api_id, AuthorizerType="JWT",
            JwtConfiguration={"Audience": ["a"], "Issuer": "https://issuer.example"},
        ))
    authorizer_id = v2.create_authorizer(**_authorizer_kwargs(api_id))["AuthorizerId"]
    with _bad_request(v2, "AuthorizerType JWT", "REQUEST"):
        v2.update_authorizer(ApiId=api_id, AuthorizerId=authorizer_id, AuthorizerType="JWT")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.update_authorizer(ApiId=api_id, AuthorizerId="nope", Name="x")


def test_websocket_authorizers_use_route_request_identity_sources(v2: Any) -> None:
    api_id = _websocket_api(v2)
    with _bad_request(
        v2, "'$request.header.Auth'", "route.request.header.<name>", "route.request.header.Auth"
    ):
        v2.create_authorizer(**_authorizer_kwargs(
            api_id, IdentitySource=["$request.header.Auth"]
        ))
    with _bad_request(v2, "'$request.querystring.token'", "route.request.querystring.token"):
        v2.create_authorizer(**_authorizer_kwargs(
            api_id,
            IdentitySource=["route.request.header.Auth", "$request.querystring.token"],
        ))
    valid = [
        "route.request.header.Auth",
        "route.request.querystring.token",
        "stageVariables.secret",
        "context.identity.sourceIp",
    ]
    created = v2.create_authorizer(**_authorizer_kwargs(api_id, IdentitySource=valid))
    assert created["IdentitySource"] == valid
    with _bad_request(v2, "'$request.header.Auth'"):
        v2.update_authorizer(
            ApiId=api_id, AuthorizerId=created["AuthorizerId"],
            IdentitySource=["$request.header.Auth"],
        )
    assert v2.get_authorizer(
        ApiId=api_id, AuthorizerId=created["AuthorizerId"]
    )["IdentitySource"] == valid


def test_websocket_authorizers_reject_payload_format_2_0(v2: Any) -> None:
    api_id = _websocket_api(v2)
    with _bad_request(v2, "AuthorizerPayloadFormatVersion 2.0", "omit"):
        v2.create_authorizer(**_authorizer_kwargs(api_id, AuthorizerPayloadFormatVersion="2.0"))
    authorizer_id = v2.create_authorizer(**_authorizer_kwargs(api_id))["AuthorizerId"]
    with _bad_request(v2, "AuthorizerPayloadFormatVersion 2.0"):
        v2.update_authorizer(
            ApiId=api_id, AuthorizerId=authorizer_id, AuthorizerPayloadFormatVersion="2.0"
        )


def test_http_apis_are_not_affected_by_the_websocket_validations(v2: Any) -> None:
    api_id = v2.create_api(Name="h", ProtocolType="HTTP")["ApiId"]
    integration = v2.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=LAMBDA_ARN,
        PayloadFormatVersion="2.0", TimeoutInMillis=30000,
    )
    assert (integration["PayloadFormatVersion"], integration["TimeoutInMillis"]) == ("2.0", 30000)
    v2.update_integration(
        ApiId=api_id, IntegrationId=integration["IntegrationId"], TimeoutInMillis=30000
    )
    authorizer = v2.create_authorizer(
        ApiId=api_id, Name="a", AuthorizerType="REQUEST", AuthorizerUri=AUTHORIZER_URI,
        IdentitySource=["$request.header.Auth"], AuthorizerPayloadFormatVersion="2.0",
    )
    jwt = v2.create_authorizer(
        ApiId=api_id, Name="j", AuthorizerType="JWT",
        IdentitySource=["$request.header.Authorization"],
        JwtConfiguration={"Audience": ["a"], "Issuer": "https://issuer.example"},
    )
    route = v2.create_route(
        ApiId=api_id, RouteKey="GET /items", AuthorizationType="CUSTOM",
        AuthorizerId=authorizer["AuthorizerId"],
    )
    v2.update_route(
        ApiId=api_id, RouteId=route["RouteId"], AuthorizationType="JWT",
        AuthorizerId=jwt["AuthorizerId"],
    )
    v2.create_route(ApiId=api_id, RouteKey="POST /items", AuthorizationType="AWS_IAM")
    # moto's own HTTP-only check still answers as before.
    with pytest.raises(v2.exceptions.BadRequestException, match="AuthorizerPayloadFormatVersion"):
        v2.create_authorizer(
            ApiId=api_id, Name="b", AuthorizerType="REQUEST", AuthorizerUri=AUTHORIZER_URI,
            IdentitySource=["$request.header.Auth"],
        )
