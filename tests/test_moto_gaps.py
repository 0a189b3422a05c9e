"""moto's apigatewayv2 gaps, filled by helpers.gateway.moto_gaps, seen through boto3."""

from __future__ import annotations

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
    # Fails when a moto upgrade implements one: delete our filler for it from moto_gaps.py.
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
