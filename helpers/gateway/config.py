"""The live configuration of one WebSocket API stage, as the data plane sees it.

Plain, immutable data: built from moto's control plane (`moto_source`) or from Python
handlers (`LocalGateway.from_handlers`), read by the server on every request. Nothing here
does I/O. See docs/aws-behaviour.md §1, §2 and §7.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .defaults import INTEGRATION_TIMEOUT as DEFAULT_INTEGRATION_TIMEOUT  # moto_source's name

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"


class Function(Protocol):
    """What the gateway invokes: a Lambda function (see `lambda_runtime.LambdaFunction`)."""

    name: str
    timeout: float  # the function's own Timeout, in seconds

    def invoke(self, event: dict[str, Any], *, copy_event: bool = True,
               started: Any = None, reclaim: Any = None) -> Any:
        """Run the handler; returns a `lambda_runtime.Invocation`. `started(running)` is
        called just before the handler code runs (the function's timeout counts from it);
        `reclaim` (a `runtime.environments.Reclaim`) says when idle environments go."""
        ...


@dataclass(frozen=True)
class Authorizer:
    """A REQUEST Lambda authorizer on `$connect` (docs/aws-behaviour.md §7)."""

    function: Function
    identity_sources: tuple[str, ...] = ()  # e.g. "route.request.querystring.token"
    authorizer_id: str = "local"
    name: str = "authorizer"


@dataclass(frozen=True)
class Route:
    """One deployed route: its key, what it invokes, and whether it answers (two-way)."""

    key: str
    function: Function | None  # None: the route has no integration target
    timeout: float = DEFAULT_INTEGRATION_TIMEOUT  # the integration's TimeoutInMillis / 1000
    two_way: bool = False  # RouteResponseSelectionExpression "$default" + a $default route response
    authorizer: Authorizer | None = None  # only ever set on $connect
    iam_auth: bool = False  # AuthorizationType AWS_IAM: only ever set on $connect (§7.3)


@dataclass(frozen=True)
class ApiConfig:
    """One API at one stage, as deployed."""

    api_id: str
    stage: str
    route_selection_expression: str
    routes: Mapping[str, Route] = field(default_factory=dict)
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    revision: str = ""  # changes whenever the deployed state changes
    custom_domain: str = ""  # set: the API is reached through this custom domain name

    @property
    def domain_name(self) -> str:
        return f"{self.api_id}.execute-api.{self.region}.amazonaws.com"

    @property
    def request_domain(self) -> str:
        """`requestContext.domainName`: the custom domain if the client came through one."""
        return self.custom_domain or self.domain_name

    @property
    def wss_url(self) -> str:
        """The URL a client would use on AWS."""
        return f"wss://{self.domain_name}/{self.stage}"

    @property
    def callback_url(self) -> str:
        """The `@connections` endpoint_url a backend would use on AWS."""
        return f"https://{self.domain_name}/{self.stage}"


#: Returns the current ApiConfig; called by the server to pick up redeployments.
ConfigSource = Callable[[], ApiConfig]
