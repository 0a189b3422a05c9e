"""The validations AWS makes on WebSocket APIs and moto 5.2 does not (docs/aws-behaviour.md §1).

AWS answers each of these with BadRequestException (400); moto accepts them all. They apply
to WEBSOCKET APIs only: HTTP APIs go straight to moto, unchanged. Raising moto's own
``BadRequestException`` inside the model lets moto's error path build the 400 that boto3
turns into ``client.exceptions.BadRequestException``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from moto.apigatewayv2 import models as v2_models
from moto.apigatewayv2.exceptions import BadRequestException

from .models import normalise_identity_source

_WEBSOCKET_AUTHORIZATION_TYPES = ("NONE", "AWS_IAM", "CUSTOM")
_WEBSOCKET_TIMEOUT_RANGE = (50, 29000)  # docs/aws-behaviour.md §1.2
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


def checked(name: str, original: Any, *, signature_of: Any = None) -> Any:
    """``original`` (an ``Api`` method), preceded on WebSocket APIs by
    ``WEBSOCKET_VALIDATIONS[name]``, which sees the call's arguments by parameter name (as
    ``signature_of`` names them, when ``original`` is itself a ``*args`` wrapper)."""
    signature = inspect.signature(signature_of or original)

    def method(self: v2_models.Api, *args: Any, **kwargs: Any) -> Any:
        if self.protocol_type == "WEBSOCKET":
            arguments = signature.bind(self, *args, **kwargs).arguments
            arguments.pop("self", None)
            WEBSOCKET_VALIDATIONS[name](self, arguments)
        return original(self, *args, **kwargs)

    method.__name__ = name
    return method
