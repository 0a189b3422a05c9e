"""The model layer: deployments, the routable state they freeze, and fixes to moto's models.

Deployments *snapshot* the API's routable state (docs/aws-behaviour.md §1.5): what the data
plane serves is the deployment a stage points at, so a route created afterwards is not live
until the next ``create_deployment``. A stage with ``AutoDeploy=True`` serves the current
state. ``moto_source`` reads both through `deployed_state` and `api_revision`.

Our bookkeeping lives on moto's own objects (``api.__dict__``), so a moto reset clears it.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.apigatewayv2 import models as v2_models
from moto.core.exceptions import JsonRESTError

from ..config import DEFAULT_INTEGRATION_TIMEOUT

# --- the routable state of an API, frozen ------------------------------------------------


@dataclass(frozen=True)
class RouteState:
    route_id: str
    route_key: str
    target: str | None  # "integrations/{id}"
    route_response_selection_expression: str | None
    route_response_keys: tuple[str, ...]
    authorization_type: str | None
    authorizer_id: str | None


@dataclass(frozen=True)
class IntegrationState:
    integration_id: str
    integration_type: str | None
    integration_uri: str | None
    timeout_in_millis: int | None


@dataclass(frozen=True)
class AuthorizerState:
    authorizer_id: str
    name: str | None
    authorizer_type: str | None
    authorizer_uri: str | None
    identity_source: tuple[str, ...]


@dataclass(frozen=True)
class ApiState:
    """What a deployment freezes: everything the data plane needs to route and invoke."""

    api_id: str
    protocol_type: str
    route_selection_expression: str
    routes: tuple[RouteState, ...]
    integrations: dict[str, IntegrationState]
    authorizers: dict[str, AuthorizerState]


@dataclass(frozen=True)
class Deployment:
    deployment_id: str
    created_date: datetime
    description: str | None
    state: ApiState
    auto_deployed: bool = False

    def to_json(self) -> dict[str, Any]:
        """The wire shape of botocore's ``Deployment`` structure."""
        body: dict[str, Any] = {
            "autoDeployed": self.auto_deployed,
            "createdDate": self.created_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "deploymentId": self.deployment_id,
            "deploymentStatus": "DEPLOYED",
        }
        if self.description:
            body["description"] = self.description
        return body


def normalise_identity_source(value: Any) -> tuple[str, ...]:
    """moto keeps IdentitySource as sent: a list, or a comma-separated string."""
    if not value:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    return tuple(str(item).strip() for item in value if str(item).strip())


def snapshot(api: v2_models.Api) -> ApiState:
    """Copy the routable parts of a moto ``Api`` into immutable values."""
    routes = tuple(
        RouteState(
            route_id=route.route_id,
            route_key=route.route_key,
            target=route.target,
            route_response_selection_expression=route.route_response_selection_expression,
            route_response_keys=tuple(
                rr.route_response_key for rr in route.route_responses.values()
            ),
            authorization_type=route.authorization_type,
            authorizer_id=route.authorizer_id,
        )
        for route in api.routes.values()
    )
    integrations = {
        i.id: IntegrationState(i.id, i.integration_type, i.integration_uri, i.timeout_in_millis)
        for i in api.integrations.values()
    }
    authorizers = {
        a.id: AuthorizerState(
            a.id, a.name, a.authorizer_type, a.authorizer_uri,
            normalise_identity_source(a.identity_source),
        )
        for a in api.authorizers.values()
    }
    return ApiState(
        api_id=api.api_id,
        protocol_type=api.protocol_type,
        route_selection_expression=api.route_selection_expression,
        routes=routes,
        integrations=integrations,
        authorizers=authorizers,
    )


# --- per-API bookkeeping, kept on moto's own objects so a moto reset clears it -------------


def deployments(api: v2_models.Api) -> dict[str, Deployment]:
    """The API's deployments by id (created on first use)."""
    return api.__dict__.setdefault("_helpers_deployments", {})


def api_revision(api: v2_models.Api) -> int:
    """A counter bumped by every successful apigatewayv2 write to this API (cheap to read)."""
    return api.__dict__.get("_helpers_revision", 0)


def bump_revision(api: v2_models.Api) -> None:
    api.__dict__["_helpers_revision"] = api_revision(api) + 1


def stage_deployment_id(stage: v2_models.Stage) -> str | None:
    return stage.__dict__.get("deployment_id")


def deployed_state(api: v2_models.Api, stage: v2_models.Stage) -> ApiState | None:
    """What ``stage`` serves now: the live API if AutoDeploy, else its deployment's snapshot."""
    if stage.auto_deploy:
        return snapshot(api)
    deployment = deployments(api).get(stage_deployment_id(stage) or "")
    return deployment.state if deployment else None


class DeploymentNotFound(JsonRESTError):
    code = 404

    def __init__(self, deployment_id: str) -> None:
        super().__init__(
            "NotFoundException", f"Invalid Deployment identifier specified {deployment_id}"
        )


def new_deployment(api: v2_models.Api, description: str | None) -> Deployment:
    """Snapshot the API now as a new deployment (not yet pointed at by any stage)."""
    deployment = Deployment(
        deployment_id="".join(random.choices(string.ascii_lowercase + string.digits, k=6)),
        created_date=datetime.now(UTC),
        description=description,
        state=snapshot(api),
    )
    deployments(api)[deployment.deployment_id] = deployment
    return deployment


def require_deployment(api: v2_models.Api, deployment_id: str) -> Deployment:
    found = deployments(api).get(deployment_id)
    if found is None:
        raise DeploymentNotFound(deployment_id)
    return found


def point_stage_at(stage: v2_models.Stage, deployment_id: str) -> None:
    stage.__dict__["deployment_id"] = deployment_id
    stage.updated = datetime.now()


# --- fixes to moto's model methods (installed by the package's `install`) ----------------


def wss_endpoint(original: Any) -> Any:
    """``Api.__init__``: WebSocket APIs get a ``wss://`` endpoint (docs/aws-behaviour.md §1.1)."""

    def __init__(self: v2_models.Api, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.protocol_type == "WEBSOCKET":
            self.api_endpoint = "wss://" + self.api_endpoint.split("://", 1)[1]

    return __init__


def stage_from_deployment(original: Any) -> Any:
    """``Api.create_stage``: honour ``DeploymentId`` (moto ignores it)."""

    def create_stage(self: v2_models.Api, config: dict[str, Any]) -> v2_models.Stage:
        deployment_id = config.get("deploymentId")
        if deployment_id:
            require_deployment(self, deployment_id)
        stage = original(self, config)
        if deployment_id:
            stage.__dict__["deployment_id"] = deployment_id
        return stage

    return create_stage


def websocket_timeout_default(original: Any) -> Any:
    """``Api.create_integration``: WebSocket's default is 29 s (moto: HTTP's 30 s; §1.2)."""

    def create_integration(self: v2_models.Api, *args: Any, **kwargs: Any) -> Any:
        integration = original(self, *args, **kwargs)
        if self.protocol_type == "WEBSOCKET" and not kwargs.get("timeout_in_millis"):
            integration.timeout_in_millis = int(DEFAULT_INTEGRATION_TIMEOUT * 1000)
        return integration

    return create_integration


def stage_json_with_deployment(original: Any) -> Any:
    """``Stage.to_json``: include ``deploymentId``."""

    def to_json(self: v2_models.Stage) -> dict[str, Any]:
        body = original(self)
        if stage_deployment_id(self):
            body["deploymentId"] = stage_deployment_id(self)
        return body

    return to_json
