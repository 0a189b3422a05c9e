"""Write counters on moto's apigatewayv2 and Lambda responses: the gateway's cache keys.

The gateway must notice a redeployment or a new function version without asking moto on
every message. Each write call bumps a counter before and after it runs (so a reader never
caches a half-made change), and a successful write to an API bumps that API's revision
(`models.api_revision`).
"""

from __future__ import annotations

from typing import Any

from moto.apigatewayv2.responses import ApiGatewayV2Response
from moto.core.common_types import TYPE_RESPONSE

from . import models

_api_writes = 0
_lambda_writes = 0


def api_writes() -> int:
    """How many apigatewayv2 write calls moto has served (twice each: see the module)."""
    return _api_writes


def lambda_writes() -> int:
    """How many Lambda write calls (create/update/delete...) moto has served."""
    return _lambda_writes


def counting_api_writes(original: Any) -> Any:
    """``ApiGatewayV2Response.call_action``, counting writes and bumping API revisions."""

    def call_action(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
        global _api_writes
        write = self.method != "GET"
        if write:
            _api_writes += 1
        try:
            status, headers, body = original(self)
        finally:
            if write:
                _api_writes += 1
        if write and int(status) < 400:
            parts = self.path.split("/")
            if len(parts) > 3 and parts[1:3] == ["v2", "apis"]:
                api = self.apigatewayv2_backend.apis.get(parts[3])
                if api is not None:
                    models.bump_revision(api)
        return status, headers, body

    return call_action


def counting_lambda_writes(original: Any) -> Any:
    """``LambdaResponse.call_action``, counting writes."""

    def call_action(self: Any) -> TYPE_RESPONSE:
        global _lambda_writes
        write = self.method != "GET"
        if write:
            _lambda_writes += 1
        try:
            return original(self)
        finally:
            if write:
                _lambda_writes += 1

    return call_action
