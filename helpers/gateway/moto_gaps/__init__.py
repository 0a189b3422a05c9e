"""The one place that fills moto's gaps, laid out the way moto lays out a service.

moto (5.2.x) models WebSocket APIs' routes, integrations and stages, but answers
``create_deployment`` & co. with 404 "Not yet implemented", has no ``get_route_responses`` or
``update_stage``, ignores ``create_stage(DeploymentId=...)``, gives WebSocket APIs an
``https://`` ``ApiEndpoint`` (AWS: ``wss://``) and WebSocket proxy integrations a 30 s
``TimeoutInMillis`` default (AWS: 29 s), and accepts WebSocket settings AWS refuses.

- `models`: deployments, the routable state they snapshot, fixes to moto's model methods;
- `responses`: the missing operations in moto's wire format;
- `urls`: the paths that dispatch to them;
- `validations`: what AWS refuses on WebSocket APIs and moto accepts;
- `counters`: write counters the gateway uses as cache keys;
- `iam`: an execution role's policy documents (for the ``@connections`` IAM check);
- `dynamodb`: keeps a long-running moto's DynamoDB memory bounded.

`install()` (run by `helpers.gateway.patches`, so by ``import helpers.gateway`` once moto is
imported) adds all this to moto's own classes and URL map, so any boto3 client under a plain
``moto.mock_aws()`` gets it; `helpers.gateway.patches.uninstall()` takes it out again. When
moto implements an operation itself, ``tests/test_moto_gaps.py`` fails: delete our filler
(`MISSING_IN_MOTO` says which ones moto lacked at import).
"""

from __future__ import annotations

from moto.apigatewayv2 import models as v2_models
from moto.apigatewayv2.responses import ApiGatewayV2Response
from moto.awslambda.responses import LambdaResponse

from .. import patches
from . import counters, dynamodb, models, responses, urls, validations
from .counters import api_writes, lambda_writes
from .models import (
    ApiState,
    AuthorizerState,
    Deployment,
    IntegrationState,
    RouteState,
    api_revision,
    deployed_state,
    deployments,
    normalise_identity_source,
    snapshot,
    stage_deployment_id,
)
from .responses import FILLED_OPERATIONS
from .validations import WEBSOCKET_VALIDATIONS

#: Operations moto did not implement when this package was imported.
MISSING_IN_MOTO: frozenset[str] = responses.missing_in_moto()


def install() -> None:
    """Add the fillers, paths, model fixes, validations and counters to moto (idempotent)."""
    for name in MISSING_IN_MOTO:
        patches.replace(ApiGatewayV2Response, name, lambda _, f=responses.FILLERS[name]: f)
    urls.install()
    Api = v2_models.Api
    patches.replace(Api, "__init__", models.wss_endpoint)
    patches.replace(Api, "create_stage", models.stage_from_deployment)
    patches.replace(Api, "create_integration", lambda original: validations.checked(
        "create_integration", models.websocket_timeout_default(original),
        signature_of=original))
    for name in WEBSOCKET_VALIDATIONS.keys() - {"create_integration"}:
        patches.replace(Api, name, lambda original, name=name: validations.checked(
            name, original))
    patches.replace(v2_models.Stage, "to_json", models.stage_json_with_deployment)
    patches.replace(ApiGatewayV2Response, "call_action", counters.counting_api_writes)
    patches.replace(LambdaResponse, "call_action", counters.counting_lambda_writes)
    dynamodb.install()


apply = install  # the name this module's callers used before it became a package
patches.install_if_deferred(__name__)  # imported first thing: `import helpers.gateway` asked

__all__ = [
    "FILLED_OPERATIONS",
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
    "install",
    "lambda_writes",
    "normalise_identity_source",
    "snapshot",
    "stage_deployment_id",
]
