"""Routes AWS-shaped ``@connections`` calls to the local gateway serving that API stage.

Handler code written for AWS builds its client as
``boto3.client("apigatewaymanagementapi", endpoint_url=f"https://{domainName}/{stage}")``.
When a `LocalGateway` has registered (api id, stage) in `registry`, such a call is answered by
that gateway (``handle_management``) in this process, with the status, headers and body it
chooses, so ``GoneException`` & co. arrive as typed boto3 errors. Otherwise nothing changes.

Two hooks, because botocore has two ways out, and between them every client passes one,
including clients created before this module was imported:

* under ``mock_aws``, moto's ``BotocoreStubber`` (a ``before-send`` handler) answers first:
  we wrap ``BotocoreStubber.process_request`` at class level;
* otherwise botocore sends for real through ``botocore.endpoint.Endpoint._send``: we wrap
  that at class level.

The per-request cost for any other service is one or two substring tests.

The gateway decides who is calling and what they may do (`callers`, docs/aws-behaviour.md
§6.3): a call from inside a handler needs its execution role's
``execute-api:ManageConnections`` on the call's ``@connections`` ARN, or boto3 raises
``AccessDeniedException`` (403); calls from outside any handler are the account owner's.
`helpers.gateway.patches` installs the hooks (`install`) and can take them out.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

import botocore.endpoint
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from moto.core.botocore_stubber import BotocoreStubber

from . import patches, registry

_CONNECTIONS_URL = re.compile(
    r"^https?://(?P<api_id>[a-z0-9]+)\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com"
    r"/(?P<stage>[^/?#]+)/(?:@|%40)connections/(?P<connection_id>[^/?#]+)/?(?:[?#]|$)"
)


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    data = body.read()  # a file-like body (botocore may pass one for blobs)
    if hasattr(body, "seek"):
        body.seek(0)
    return data if isinstance(data, bytes) else str(data).encode("utf-8")


def answer(method: str, url: str, body: Any,
           headers: Mapping[str, Any] | None = None) -> tuple[int, dict[str, str], bytes] | None:
    """The registered gateway's answer to one @connections request, or None if not ours.

    The two classic endpoint mistakes (curriculum questions 1 and 2) get AWS's answers while a
    local gateway runs: no stage in `endpoint_url` is 403 Forbidden, and no `endpoint_url` at
    all (the SDK's default `https://execute-api.{region}.amazonaws.com`) cannot connect.
    """
    if "execute-api" not in url:
        return _through_custom_domain(url) if "connections/" in url else None
    match = _CONNECTIONS_URL.match(url)
    if match is None:
        return _endpoint_mistake(url)
    stage = unquote(match["stage"])
    target = registry.lookup(match["api_id"], stage)
    if target is None:
        return None
    method, connection_id = method.upper(), unquote(match["connection_id"])
    return target.handle_management(method, connection_id, _body_bytes(body), url=url,
                                    headers=headers)


_NO_STAGE = re.compile(
    r"^https?://(?P<api_id>[a-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com"
    r"/(?:@|%40)connections/"
)
_NO_API = re.compile(r"^https?://execute-api\.[a-z0-9-]+\.amazonaws\.com/")
_CUSTOM_DOMAIN = re.compile(r"^https?://(?P<host>[^/:?#]+)(?::\d+)?/(?:[^?#]*/)?(?:@|%40)connections/")
_FORBIDDEN = (403, {"x-amzn-ErrorType": "ForbiddenException", "Content-Type": "application/json"},
              b'{"message":"Forbidden"}')


def _endpoint_mistake(url: str) -> tuple[int, dict[str, str], bytes] | None:
    no_stage = _NO_STAGE.match(url)
    if no_stage is not None and registry.serves_api(no_stage["api_id"]):
        return _FORBIDDEN
    if _NO_API.match(url) and registry.any_running():
        raise EndpointConnectionError(endpoint_url=url)  # AWS: no such host serves @connections
    return None


def _through_custom_domain(url: str) -> tuple[int, dict[str, str], bytes] | None:
    """`@connections` through a running gateway's custom domain: refused, as on AWS, where
    only the execute-api host serves it (docs/aws-behaviour.md §1.6)."""
    match = _CUSTOM_DOMAIN.match(url)
    if match is not None and registry.serves_domain(match["host"]):
        return _FORBIDDEN
    return None


class _RawBody(io.BytesIO):
    """The ``raw`` botocore's AWSResponse reads from (it calls ``stream()``)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        data = self.read()
        if data:
            yield data


def _aws_response(url: str, result: tuple[int, dict[str, str], bytes]) -> AWSResponse:
    status, headers, body = result
    return AWSResponse(url, status, dict(headers), _RawBody(body))


def _wrap_process_request(original: Any) -> Any:
    def process_request(self: BotocoreStubber, request: Any) -> Any:
        result = answer(request.method, request.url, request.body, request.headers)
        return result if result is not None else original(self, request)

    return process_request


def _wrap_send(original: Any) -> Any:
    def _send(self: botocore.endpoint.Endpoint, request: Any) -> Any:
        result = answer(request.method, request.url, request.body, request.headers)
        if result is None:
            return original(self, request)
        return _aws_response(request.url, result)

    return _send


def install() -> None:
    """Install both hooks (idempotent; `patches.uninstall` removes them)."""
    patches.replace(BotocoreStubber, "process_request", _wrap_process_request)
    patches.replace(botocore.endpoint.Endpoint, "_send", _wrap_send)


apply = install  # the earlier name
patches.install_if_deferred(__name__)  # imported first thing: `import helpers.gateway` asked

__all__ = ["answer", "apply", "install"]
