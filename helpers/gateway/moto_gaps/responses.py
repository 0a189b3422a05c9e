"""The response layer: the operations moto's ``ApiGatewayV2Response`` lacks, in its wire format.

moto dispatches a request to the response-class method named after botocore's operation
(snake case); these are added under those names. Each reads the path and JSON body the way
moto's own methods do and answers ``(status, headers, body)``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from moto.apigatewayv2 import models as v2_models
from moto.apigatewayv2.exceptions import BadRequestException
from moto.apigatewayv2.responses import ApiGatewayV2Response
from moto.core.common_types import TYPE_RESPONSE

from . import models


def _api(response: ApiGatewayV2Response) -> v2_models.Api:
    return response.apigatewayv2_backend.get_api(response.path.split("/")[3])


def _body(response: ApiGatewayV2Response) -> dict[str, Any]:
    return json.loads(response.body) if response.body else {}


def create_deployment(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
    api = _api(self)
    params = _body(self)
    stage = api.get_stage(params["stageName"]) if params.get("stageName") else None
    deployment = models.new_deployment(api, params.get("description"))
    if stage is not None:
        models.point_stage_at(stage, deployment.deployment_id)
    return 201, {"status": 201}, json.dumps(deployment.to_json())


def get_deployment(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
    deployment = models.require_deployment(_api(self), self.path.split("/")[-1])
    return 200, {}, json.dumps(deployment.to_json())


def get_deployments(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
    items = [d.to_json() for d in models.deployments(_api(self)).values()]
    return 200, {}, json.dumps({"items": items})


def delete_deployment(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
    api = _api(self)
    deployment_id = self.path.split("/")[-1]
    models.require_deployment(api, deployment_id)
    if any(models.stage_deployment_id(s) == deployment_id for s in api.stages.values()):
        raise BadRequestException(
            f"Active stages pointing to this deployment must be moved or deleted: {deployment_id}"
        )
    del models.deployments(api)[deployment_id]
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
    api = _api(self)
    stage = api.get_stage(unquote(self.path.split("/")[-1]))
    params = _body(self)
    if params.get("deploymentId"):
        models.require_deployment(api, params["deploymentId"])
        models.point_stage_at(stage, params["deploymentId"])
    for key, attribute in _STAGE_FIELDS.items():
        if key in params:
            setattr(stage, attribute, params[key])
    stage.updated = datetime.now()
    return 200, {}, json.dumps(stage.to_json())


#: Response-class methods we add (botocore operation names in snake case).
FILLERS = {
    "create_deployment": create_deployment,
    "get_deployment": get_deployment,
    "get_deployments": get_deployments,
    "delete_deployment": delete_deployment,
    "get_route_responses": get_route_responses,
    "update_stage": update_stage,
}
FILLED_OPERATIONS = tuple(FILLERS)


def missing_in_moto() -> frozenset[str]:
    """Which of FILLED_OPERATIONS moto's response class lacks (ignoring our own additions)."""
    return frozenset(
        name for name in FILLED_OPERATIONS
        if ApiGatewayV2Response.__dict__.get(name) in (None, FILLERS[name])
    )
