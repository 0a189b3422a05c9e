"""The one place that fills moto's apigatewayv2 gaps, so the lessons can use the AWS workflow.

moto (5.2.x) models WebSocket APIs' routes, integrations and stages, but answers
``create_deployment`` & co. with 404 "Not yet implemented", has no ``get_route_responses`` or
``update_stage``, ignores ``create_stage(DeploymentId=...)``, gives WebSocket APIs an
``https://`` ``ApiEndpoint`` (AWS: ``wss://``) and WebSocket proxy integrations a 30 s
``TimeoutInMillis`` default (AWS: 29 s), and accepts WebSocket settings AWS refuses (see
`WEBSOCKET_VALIDATIONS`). Importing this module (``helpers.gateway`` does)
adds the missing operations to moto's own response class and URL map, so any boto3 client
under a plain ``moto.mock_aws()`` gets them. Applied once; importing again changes nothing.

Deployments *snapshot* the API's routable state (reference §1.5, §10 item 3): what the data
plane serves is the deployment a stage points at, so a route created afterwards is not live
until the next ``create_deployment``. A stage with ``AutoDeploy=True`` serves the current
state. ``moto_source`` reads both through `deployed_state` / `api_revision` below.

When moto implements one of these itself, ``tests/test_moto_gaps.py`` fails: delete our
filler for it here (``MISSING_IN_MOTO`` says which ones moto lacked at import).
"""

from __future__ import annotations

import inspect
import json
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import moto.apigateway.urls as apigateway_urls
import moto.apigatewayv2.urls as apigatewayv2_urls
from moto.apigatewayv2 import models as v2_models
from moto.apigatewayv2.exceptions import BadRequestException
from moto.apigatewayv2.responses import ApiGatewayV2Response
from moto.awslambda.responses import LambdaResponse
from moto.core.common_types import TYPE_RESPONSE
from moto.core.exceptions import JsonRESTError

#: Response-class methods we add (botocore operation names in snake case).
FILLED_OPERATIONS = (
    "create_deployment",
    "get_deployment",
    "get_deployments",
    "delete_deployment",
    "get_route_responses",
    "update_stage",
)

_MARK = "_helpers_moto_gaps"  # set on everything we add, so re-application can recognise it
_DEPLOYMENTS_PATH = "{0}/v2/apis/(?P<api_id>[^/]+)/deployments$"
_DEPLOYMENT_PATH = "{0}/v2/apis/(?P<api_id>[^/]+)/deployments/(?P<deployment_id>[^/]+)$"


def _missing_in_moto() -> frozenset[str]:
    """Which of FILLED_OPERATIONS moto's response class lacks (ignoring our own additions)."""
    missing = set()
    for name in FILLED_OPERATIONS:
        method = ApiGatewayV2Response.__dict__.get(name)
        if method is None or getattr(method, _MARK, False):
            missing.add(name)
    return frozenset(missing)


#: Operations moto did not implement when this module was imported.
MISSING_IN_MOTO: frozenset[str] = _missing_in_moto()


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


def _new_deployment_id() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=6))


def _require_deployment(api: v2_models.Api, deployment_id: str) -> Deployment:
    found = deployments(api).get(deployment_id)
    if found is None:
        raise DeploymentNotFound(deployment_id)
    return found


# --- response-class methods (moto dispatches on botocore's operation name) ----------------


def _api(response: ApiGatewayV2Response) -> v2_models.Api:
    return response.apigatewayv2_backend.get_api(response.path.split("/")[3])


def _body(response: ApiGatewayV2Response) -> dict[str, Any]:
    return json.loads(response.body) if response.body else {}


def create_deployment(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
    api = _api(self)
    params = _body(self)
    stage = None
    if params.get("stageName"):
        stage = api.get_stage(params["stageName"])
    deployment = Deployment(
        deployment_id=_new_deployment_id(),
        created_date=datetime.now(UTC),
        description=params.get("description"),
        state=snapshot(api),
    )
    deployments(api)[deployment.deployment_id] = deployment
    if stage is not None:
        _point_stage_at(stage, deployment.deployment_id)
    return 201, {"status": 201}, json.dumps(deployment.to_json())


def get_deployment(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
    deployment = _require_deployment(_api(self), self.path.split("/")[-1])
    return 200, {}, json.dumps(deployment.to_json())


def get_deployments(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
    items = [d.to_json() for d in deployments(_api(self)).values()]
    return 200, {}, json.dumps({"items": items})


def delete_deployment(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
    api = _api(self)
    deployment_id = self.path.split("/")[-1]
    _require_deployment(api, deployment_id)
    if any(stage_deployment_id(s) == deployment_id for s in api.stages.values()):
        raise BadRequestException(
            f"Active stages pointing to this deployment must be moved or deleted: {deployment_id}"
        )
    del deployments(api)[deployment_id]
    return 204, {"status": 204}, ""


def get_route_responses(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
    route = _api(self).get_route(self.path.split("/")[-2])
    items = [rr.to_json() for rr in route.route_responses.values()]
    return 200, {}, json.dumps({"items": items})


_STAGE_FIELDS = {
    "accessLogSettings": "access_log_settings",
    "autoDeploy": "auto_deploy",
    "clientCertificateId": "client_certificate_id",
    "defaultRouteSettings": "default_route_settings",
    "description": "description",
    "routeSettings": "route_settings",
    "stageVariables": "stage_variables",
}


def update_stage(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
    from urllib.parse import unquote

    api = _api(self)
    stage = api.get_stage(unquote(self.path.split("/")[-1]))
    params = _body(self)
    if params.get("deploymentId"):
        _require_deployment(api, params["deploymentId"])
        _point_stage_at(stage, params["deploymentId"])
    for key, attribute in _STAGE_FIELDS.items():
        if key in params:
            setattr(stage, attribute, params[key])
    stage.updated = datetime.now()
    return 200, {}, json.dumps(stage.to_json())


def _point_stage_at(stage: v2_models.Stage, deployment_id: str) -> None:
    stage.__dict__["deployment_id"] = deployment_id
    stage.updated = datetime.now()


# --- model-level fixes ---------------------------------------------------------------------


def _wrap_api_init(original: Any) -> Any:
    def __init__(self: v2_models.Api, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.protocol_type == "WEBSOCKET":  # AWS: wss:// for WebSocket APIs (reference §1.1)
            self.api_endpoint = "wss://" + self.api_endpoint.split("://", 1)[1]

    return __init__


def _wrap_api_create_stage(original: Any) -> Any:
    def create_stage(self: v2_models.Api, config: dict[str, Any]) -> v2_models.Stage:
        deployment_id = config.get("deploymentId")
        if deployment_id:
            _require_deployment(self, deployment_id)
        stage = original(self, config)
        if deployment_id:
            stage.__dict__["deployment_id"] = deployment_id
        return stage

    return create_stage


def _wrap_api_create_integration(original: Any) -> Any:
    def create_integration(self: v2_models.Api, *args: Any, **kwargs: Any) -> Any:
        integration = original(self, *args, **kwargs)
        # moto gives proxy integrations the HTTP-API default (30 s); WebSocket's is 29 s.
        if self.protocol_type == "WEBSOCKET" and not kwargs.get("timeout_in_millis"):
            integration.timeout_in_millis = 29000
        return integration

    return create_integration


def _wrap_stage_to_json(original: Any) -> Any:
    def to_json(self: v2_models.Stage) -> dict[str, Any]:
        body = original(self)
        if stage_deployment_id(self):
            body["deploymentId"] = stage_deployment_id(self)
        return body

    return to_json


# --- WebSocket control-plane validations moto lacks -----------------------------------------
# AWS answers each of these with BadRequestException (400); moto 5.2.5 accepts them all. They
# apply to WEBSOCKET APIs only: HTTP APIs go straight to moto, unchanged. Raising moto's own
# BadRequestException inside the model lets moto's error path build the 400 that boto3 turns
# into ``client.exceptions.BadRequestException``.

_WEBSOCKET_AUTHORIZATION_TYPES = ("NONE", "AWS_IAM", "CUSTOM")
_WEBSOCKET_TIMEOUT_RANGE = (50, 29000)  # reference §1.2
_WEBSOCKET_IDENTITY_SOURCE = re.compile(
    r"^(route\.request\.(header|querystring)|stageVariables|context)\.[^\s,]+$"
)


def _check_route(api: v2_models.Api, route_key: str | None, authorization_type: str | None) -> None:
    """Authorization on WebSocket routes: NONE/AWS_IAM/CUSTOM, and only on $connect (§1.3)."""
    if not authorization_type or authorization_type == "NONE":
        return
    if authorization_type not in _WEBSOCKET_AUTHORIZATION_TYPES:
        raise BadRequestException(
            f"AuthorizationType {authorization_type} is not supported for WebSocket APIs"
            f" ({authorization_type} authorization is for HTTP APIs only). Use NONE, AWS_IAM,"
            " or CUSTOM with a REQUEST authorizer, and only on the $connect route."
        )
    if route_key != "$connect":
        raise BadRequestException(
            "Currently, authorization is restricted to the $connect route only:"
            f" route '{route_key}' has AuthorizationType {authorization_type}. Put the"
            " authorization on the $connect route and leave this route on AuthorizationType"
            " NONE; the check made at $connect covers every message on that connection."
        )


def _check_create_route(api: v2_models.Api, args: dict[str, Any]) -> None:
    _check_route(api, args.get("route_key"), args.get("authorization_type"))


def _check_update_route(api: v2_models.Api, args: dict[str, Any]) -> None:
    route = api.get_route(args["route_id"])  # unknown id: moto's 404, as before
    # moto's Route.update keeps the old value when the new one is empty; judge the result.
    _check_route(
        api,
        args.get("route_key") or route.route_key,
        args.get("authorization_type") or route.authorization_type,
    )


def _check_integration(api: v2_models.Api, args: dict[str, Any]) -> None:
    """WebSocket integrations: payload format 1.0 only, timeout 50..29000 ms (§1.2)."""
    version = args.get("payload_format_version")
    if version is not None and version != "1.0":
        raise BadRequestException(
            f"Unsupported PayloadFormatVersion: {version}. WebSocket APIs support only"
            ' payload format version 1.0: omit PayloadFormatVersion or set it to "1.0"'
            " (2.0 is for HTTP APIs)."
        )
    timeout = args.get("timeout_in_millis")
    low, high = _WEBSOCKET_TIMEOUT_RANGE
    if timeout is not None and not (isinstance(timeout, int) and low <= timeout <= high):
        raise BadRequestException(
            f"TimeoutInMillis {timeout} is out of range: a WebSocket API's integration"
            f" timeout must be between {low} and {high} milliseconds. Omit TimeoutInMillis"
            f" for the {high} ms default or choose a value in that range (30000 is the"
            " HTTP-API ceiling)."
        )


def _check_authorizer(api: v2_models.Api, args: dict[str, Any]) -> None:
    """WebSocket authorizers: REQUEST type, route.request.* identity sources, no 2.0 (§7)."""
    authorizer_type = args.get("authorizer_type")
    if authorizer_type is not None and authorizer_type != "REQUEST":
        raise BadRequestException(
            f"AuthorizerType {authorizer_type} is not supported for WebSocket APIs: use"
            " AuthorizerType REQUEST with a Lambda AuthorizerUri (JWT authorizers are for"
            " HTTP APIs only)."
        )
    version = args.get("auth_payload_format_version")
    if version is not None and version != "1.0":
        raise BadRequestException(
            f"AuthorizerPayloadFormatVersion {version} is not supported for WebSocket APIs:"
            " omit AuthorizerPayloadFormatVersion (payload format 2.0 is for HTTP API Lambda"
            " authorizers only)."
        )
    for source in normalise_identity_source(args.get("identity_source")):
        if _WEBSOCKET_IDENTITY_SOURCE.match(source):
            continue
        hint = ""
        if source.startswith("$request."):
            hint = f" (for this one: route.request.{source.removeprefix('$request.')})"
        raise BadRequestException(
            f"Invalid identity source '{source}' for a WebSocket API: identity sources take"
            " the form route.request.header.<name>, route.request.querystring.<name>,"
            f" stageVariables.<name> or context.<name>{hint}. The $request.header.<name>"
            " form is for HTTP APIs."
        )


def _check_update_authorizer(api: v2_models.Api, args: dict[str, Any]) -> None:
    api.get_authorizer(args["authorizer_id"])  # unknown id: 404 (moto itself would KeyError)
    _check_authorizer(api, args)


#: Api model method -> the WebSocket-only check run before moto's own code.
WEBSOCKET_VALIDATIONS: dict[str, Callable[[v2_models.Api, dict[str, Any]], None]] = {
    "create_route": _check_create_route,
    "update_route": _check_update_route,
    "create_integration": _check_integration,
    "update_integration": _check_integration,
    "create_authorizer": _check_authorizer,
    "update_authorizer": _check_update_authorizer,
}


def _validating(name: str, inner: Callable[[Any], Any] | None = None) -> Callable[[Any], Any]:
    """A `_patch` wrapper: run ``WEBSOCKET_VALIDATIONS[name]`` on WebSocket APIs, then the
    original (or ``inner(original)``, another wrapper, e.g. the 29 s timeout default)."""

    def wrap(original: Any) -> Any:
        signature = inspect.signature(original)
        target = inner(original) if inner else original

        def method(self: v2_models.Api, *args: Any, **kwargs: Any) -> Any:
            if self.protocol_type == "WEBSOCKET":
                arguments = signature.bind(self, *args, **kwargs).arguments
                arguments.pop("self", None)
                WEBSOCKET_VALIDATIONS[name](self, arguments)
            return target(self, *args, **kwargs)

        method.__name__ = name
        return method

    return wrap


_api_writes = 0


def api_writes() -> int:
    """How many apigatewayv2 write calls moto has served (see `lambda_writes`)."""
    return _api_writes


def _wrap_call_action(original: Any) -> Any:
    def call_action(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
        global _api_writes
        if self.method != "GET":
            _api_writes += 1  # before and after, like lambda_writes
        try:
            status, headers, body = original(self)
        finally:
            if self.method != "GET":
                _api_writes += 1
        if self.method != "GET" and int(status) < 400:
            parts = self.path.split("/")
            if len(parts) > 3 and parts[1:3] == ["v2", "apis"]:
                api = self.apigatewayv2_backend.apis.get(parts[3])
                if api is not None:
                    api.__dict__["_helpers_revision"] = api_revision(api) + 1
        return status, headers, body

    return call_action


_lambda_writes = 0


def lambda_writes() -> int:
    """How many Lambda write calls (create/update/delete...) moto has served: a cheap
    freshness check, so the gateway need not look functions up in moto on every message."""
    return _lambda_writes


def _wrap_lambda_call_action(original: Any) -> Any:
    def call_action(self: Any) -> TYPE_RESPONSE:
        global _lambda_writes
        if self.method != "GET":
            _lambda_writes += 1  # before and after: a reader never caches a half-made change
        try:
            return original(self)
        finally:
            if self.method != "GET":
                _lambda_writes += 1

    return call_action


def _mark(function: Any) -> Any:
    setattr(function, _MARK, True)
    return function


def _patch(owner: type, name: str, wrapper: Any) -> None:
    current = getattr(owner, name)
    if not getattr(current, _MARK, False):
        setattr(owner, name, _mark(wrapper(current)))


def apply() -> None:
    """Install the fillers into moto (idempotent). Runs on import."""
    fillers = {
        "create_deployment": create_deployment,
        "get_deployment": get_deployment,
        "get_deployments": get_deployments,
        "delete_deployment": delete_deployment,
        "get_route_responses": get_route_responses,
        "update_stage": update_stage,
    }
    for name in MISSING_IN_MOTO:
        setattr(ApiGatewayV2Response, name, _mark(fillers[name]))
    # moto builds `backend.urls` from these dicts on every request (base_backend.py `urls`);
    # apigatewayv2 requests are served by the `apigateway` backend, whose urls.py copied
    # apigatewayv2's paths at import, so both dicts need the routes.
    for paths in (apigatewayv2_urls.url_paths, apigateway_urls.url_paths):
        paths.setdefault(_DEPLOYMENTS_PATH, ApiGatewayV2Response.dispatch)
        paths.setdefault(_DEPLOYMENT_PATH, ApiGatewayV2Response.dispatch)
    _patch(v2_models.Api, "__init__", _wrap_api_init)
    _patch(v2_models.Api, "create_stage", _wrap_api_create_stage)
    _patch(
        v2_models.Api,
        "create_integration",
        _validating("create_integration", _wrap_api_create_integration),
    )
    for name in WEBSOCKET_VALIDATIONS.keys() - {"create_integration"}:
        _patch(v2_models.Api, name, _validating(name))
    _patch(v2_models.Stage, "to_json", _wrap_stage_to_json)
    _patch(ApiGatewayV2Response, "call_action", _wrap_call_action)
    _patch(LambdaResponse, "call_action", _wrap_lambda_call_action)


apply()

__all__ = [
    "MISSING_IN_MOTO",
    "WEBSOCKET_VALIDATIONS",
    "ApiState",
    "AuthorizerState",
    "Deployment",
    "IntegrationState",
    "RouteState",
    "api_revision",
    "api_writes",
    "apply",
    "deployed_state",
    "deployments",
    "lambda_writes",
    "normalise_identity_source",
    "snapshot",
    "stage_deployment_id",
]
