"""The URL layer: the deployment paths moto's apigatewayv2 URL map lacks.

moto builds ``backend.urls`` from these dicts on every request (``base_backend.py``);
apigatewayv2 requests are served by the ``apigateway`` backend, whose ``urls.py`` copied
apigatewayv2's paths at import, so both dicts need the routes.
"""

from __future__ import annotations

import moto.apigateway.urls as apigateway_urls
import moto.apigatewayv2.urls as apigatewayv2_urls
from moto.apigatewayv2.responses import ApiGatewayV2Response

from .. import patches

PATHS = (
    "{0}/v2/apis/(?P<api_id>[^/]+)/deployments$",
    "{0}/v2/apis/(?P<api_id>[^/]+)/deployments/(?P<deployment_id>[^/]+)$",
)


def install() -> None:
    for module in (apigatewayv2_urls, apigateway_urls):
        for path in PATHS:
            patches.add_entry(module.url_paths, path, ApiGatewayV2Response.dispatch,
                              label=f"{module.__name__}.url_paths")
