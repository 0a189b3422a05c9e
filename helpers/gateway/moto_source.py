"""Reads a deployed WebSocket API stage out of moto, for the local gateway's data plane.

Section numbers (§1.2 ...) are those of docs/aws-behaviour.md.

The lessons build APIs with boto3 under ``mock_aws``; the gateway serves what is *deployed*
(`moto_gaps` snapshots deployments). `api_config` turns one stage into a `config.ApiConfig`;
`revision` is the cheap "has anything changed?" check the gateway makes on every connection
and message, so a redeployment is picked up without restarting the gateway.

Lambda integrations resolve to `MotoLambda` objects, which look the function up in moto's
Lambda backend at each invocation, as AWS does with an unqualified function ARN: a later
``update_function_code`` takes effect on the next invocation without redeploying the API,
while warm module state survives as long as the code and configuration do not change.

Integrations other than Lambda ``AWS_PROXY`` (``MOCK``, ``HTTP``, ``AWS``...) are not run
locally: their routes get an `UnsupportedIntegration`, whose ``invoke`` returns a failed
`lambda_runtime.Invocation` (``error`` and ``logs`` name the route and the fix), so the client
gets "Internal server error" and the gateway's log shows why. So does a route whose Lambda
function does not exist in moto (AWS also fails at invocation time, not at deployment).
``problem`` on an `UnsupportedIntegration` holds the same text for up-front display.
"""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

from moto.apigatewayv2.models import Api, ApiGatewayV2Backend, apigatewayv2_backends

from . import moto_gaps
from . import protocol_rules as rules
from .config import DEFAULT_INTEGRATION_TIMEOUT, ApiConfig, Authorizer, Route

#: Both IntegrationUri forms AWS accepts for a Lambda proxy integration (§1.2).
_LAMBDA_ARN = r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(?::[^/]+)?"
_URI = re.compile(
    rf"^(?:arn:aws[a-z-]*:apigateway:[a-z0-9-]+:lambda:path/2015-03-31/functions/"
    rf"(?P<wrapped>{_LAMBDA_ARN})/invocations|(?P<bare>{_LAMBDA_ARN}))$"
)

_where: dict[str, tuple[str, str]] = {}  # api id -> (account, region) where last found


class MotoSourceError(LookupError):
    """The API stage cannot be served; the message says why and what to do."""


# --- finding things in moto ---------------------------------------------------------------


def _backend(account_id: str, region: str) -> ApiGatewayV2Backend | None:
    # dict.get, not [...]: moto's BackendDict creates backends on item access.
    accounts = dict.get(apigatewayv2_backends, account_id)
    return dict.get(accounts, region) if accounts is not None else None


def _find_api(api_id: str, account_id: str | None, region: str | None) -> Api | None:
    cached = _where.get(api_id)
    if cached and (account_id in (None, cached[0])) and (region in (None, cached[1])):
        backend = _backend(*cached)
        if backend is not None and api_id in backend.apis:
            return backend.apis[api_id]
    for account, regions in dict.items(apigatewayv2_backends):
        if account_id not in (None, account):
            continue
        for region_name, backend in dict.items(regions):
            if region not in (None, region_name):
                continue
            if api_id in backend.apis:
                _where[api_id] = (account, region_name)
                return backend.apis[api_id]
    return None


def _require_api(api_id: str, account_id: str | None, region: str | None) -> Api:
    api = _find_api(api_id, account_id, region)
    if api is None:
        where = "".join(
            f" in {label} {value}" for label, value in (("account", account_id),
                                                      ("region", region)) if value
        )
        raise MotoSourceError(
            f"No API {api_id!r} in moto{where}: create it with apigatewayv2.create_api(...) "
            "inside mock_aws first (and check the id: it is create_api(...)['ApiId'])."
        )
    if api.protocol_type != "WEBSOCKET":
        raise MotoSourceError(
            f"API {api_id!r} is a {api.protocol_type} API; the local gateway serves WebSocket "
            "APIs only: create_api(..., ProtocolType='WEBSOCKET', "
            "RouteSelectionExpression='$request.body.action')."
        )
    return api


def _require_stage(api: Api, stage: str) -> Any:
    found = api.stages.get(stage)
    if found is None:
        known = ", ".join(sorted(api.stages)) or "none yet"
        raise MotoSourceError(
            f"API {api.api_id!r} has no stage {stage!r} (stages: {known}): create it with "
            f"apigatewayv2.create_stage(ApiId={api.api_id!r}, StageName={stage!r}, "
            "AutoDeploy=True), or pass DeploymentId=... from create_deployment."
        )
    return found


# --- the cheap change check ---------------------------------------------------------------


def revision(
    api_id: str, stage: str, *, account_id: str | None = None, region: str | None = None
) -> str:
    """A string that changes whenever what ``stage`` serves changes.

    The deployment id for a deployed stage; for an AutoDeploy stage, a counter bumped by every
    apigatewayv2 write to the API. A few dict look-ups: called per connection and message.
    Returns "" when the API or stage is gone (``api_config`` then explains).
    """
    key = (api_id, stage, account_id, region)
    writes = moto_gaps.api_writes()
    cached = _revisions.get(key)
    if cached is not None and cached[0] == writes:
        return cached[1]
    value = _revision(api_id, stage, account_id, region)
    _revisions[key] = (writes, value)
    return value


_revisions: dict[tuple, tuple[int, str]] = {}  # remembered until the next apigatewayv2 write


def _revision(api_id: str, stage: str, account_id: str | None, region: str | None) -> str:
    api = _find_api(api_id, account_id, region)
    if api is None:
        return ""
    found = api.stages.get(stage)
    if found is None:
        return ""
    if found.auto_deploy:
        return f"auto-{moto_gaps.api_revision(api)}"
    return moto_gaps.stage_deployment_id(found) or ""


# --- Lambda functions ---------------------------------------------------------------------


def lambda_arn_from_uri(uri: str | None) -> str | None:
    """The Lambda function ARN in an AWS_PROXY IntegrationUri (either form), else None."""
    match = _URI.match(uri or "")
    if match is None:
        return None
    return match.group("wrapped") or match.group("bare")


_warm_lock = threading.Lock()
_warm: dict[tuple[Any, ...], Any] = {}  # (arn, CodeSha256, config) -> lambda_runtime.LambdaFunction


class MotoLambda:
    """A `config.Function` backed by a function in moto's Lambda backend, kept warm.

    The function is looked up at every invocation (as AWS resolves an unqualified ARN), and the
    `lambda_runtime.LambdaFunction` that runs it is reused while the function's code
    (CodeSha256) and configuration are unchanged, so module-level state survives across
    invocations and API redeployments, and a new code upload starts a fresh "cold" runtime.
    """

    def __init__(self, function_arn: str) -> None:
        self.function_arn = function_arn
        self._fresh: tuple[int, Any, Any] | None = None  # (lambda_writes, moto fn, runtime)
        self._permissions: tuple[int, dict[str, bool]] = (-1, {})
        parts = function_arn.split(":")
        self.region, self.account_id, self.name = parts[3], parts[4], parts[6]
        self.qualifier = parts[7] if len(parts) > 7 else None

    def __repr__(self) -> str:
        return f"MotoLambda({self.function_arn!r})"

    def _moto_function(self) -> Any:
        from moto.awslambda.exceptions import UnknownFunctionException
        from moto.awslambda.utils import get_backend

        try:
            return get_backend(self.account_id, self.region).get_function(
                self.name, self.qualifier
            )
        except UnknownFunctionException:
            raise MotoSourceError(
                f"Lambda function {self.function_arn} does not exist in moto: create it with "
                "lambda.create_function(...) inside mock_aws (or fix the IntegrationUri)."
            ) from None

    def _current(self) -> tuple[Any, Any]:
        """The moto function and its warm runtime, looked up again only after a Lambda write."""
        writes = moto_gaps.lambda_writes()
        fresh = self._fresh
        if fresh is not None and fresh[0] == writes:
            return fresh[1], fresh[2]
        fn = self._moto_function()
        runtime = self._runtime_for(fn)
        self._fresh = (writes, fn, runtime)
        return fn, runtime

    @property
    def timeout(self) -> float:
        """The function's own Timeout (seconds), read live like the rest of its settings.

        Lambda's default (3 s) if the function is missing: `invoke` then reports why.
        """
        try:
            return float(self._current()[0].timeout)
        except MotoSourceError:
            return 3.0

    def runtime(self) -> Any:
        """The warm `lambda_runtime.LambdaFunction` for the function's current code and config."""
        return self._current()[1]

    def _runtime_for(self, fn: Any) -> Any:
        from .lambda_runtime import LambdaFunction

        environment = dict(fn.environment_vars or {})
        key = (
            fn.function_arn, fn.code_sha_256, fn.handler, tuple(sorted(environment.items())),
            float(fn.timeout), int(fn.memory_size), fn.role,
        )
        warm = _warm.get(key)
        if warm is None:
            with _warm_lock:
                warm = _warm.get(key)
                if warm is None:
                    # Drop superseded runtimes (old code/config): AWS retires those environments.
                    # In-flight invocations keep theirs alive; GC then deletes the extracted code.
                    for stale in [k for k in _warm if k[0] == key[0]]:
                        del _warm[stale]
                    if not fn.code_bytes:
                        raise MotoSourceError(
                            f"Lambda function {fn.function_arn} has no zip code in moto; "
                            "create it with Code={'ZipFile': handler_zip(...)}."
                        )
                    warm = LambdaFunction.from_zip(
                        fn.code_bytes, fn.handler, name=fn.function_name,
                        arn=fn.function_arn, environment=environment,
                        timeout=float(fn.timeout), memory_size=int(fn.memory_size),
                        region=self.region, role=fn.role,
                    )
                    _warm[key] = warm
        return warm

    def invoke(self, event: dict[str, Any], *, copy_event: bool = True,
               started: Any = None, reclaim: Any = None) -> Any:
        """Run the handler; a function missing from moto, or one whose resource policy does
        not let API Gateway invoke it, is a failed Invocation, as on AWS."""
        try:
            fn, runtime = self._current()
        except MotoSourceError as error:
            return _failed(self.name, str(error))
        source_arn = _source_arn(event, self.region, self.account_id)
        if source_arn is not None and not self._permitted(fn, source_arn):
            return _failed(
                self.name,
                f"Execution failed due to configuration error: Invalid permissions on Lambda "
                f"function {self.name}. API Gateway may not invoke it for {source_arn}: call "
                "lambda.add_permission(FunctionName=..., Action='lambda:InvokeFunction', "
                "Principal='apigateway.amazonaws.com', SourceArn="
                f"'arn:aws:execute-api:{self.region}:{self.account_id}:<api-id>/*/<route>').",
                error_type=rules.INVALID_PERMISSIONS,
            )
        return runtime.invoke(event, copy_event=copy_event, started=started, reclaim=reclaim)

    def _permitted(self, fn: Any, source_arn: str) -> bool:
        """The resource-policy check, remembered until the next Lambda write."""
        writes = moto_gaps.lambda_writes()
        if self._permissions[0] != writes:
            self._permissions = (writes, {})
        known = self._permissions[1]
        if source_arn not in known:
            known[source_arn] = rules.invoke_allowed(fn.policy.statements, source_arn)
        return known[source_arn]


class UnsupportedIntegration:
    """Stands in for an integration the local gateway cannot run; its Invocation says why."""

    timeout = DEFAULT_INTEGRATION_TIMEOUT

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem

    def invoke(self, event: dict[str, Any], *, copy_event: bool = True,
               started: Any = None, reclaim: Any = None) -> Any:
        return _failed(self.name, self.problem)


def _failed(name: str, problem: str, error_type: str = "LocalGatewayIntegrationError") -> Any:
    """A failed `lambda_runtime.Invocation` (the gateway then answers as for a Lambda error)."""
    from .lambda_runtime import Invocation

    return Invocation(
        function_name=name, request_id=str(uuid.uuid4()), error=problem,
        error_type=error_type, logs=[problem],
    )


def _source_arn(event: dict[str, Any], region: str, account_id: str) -> str | None:
    """The `execute-api` ARN API Gateway invokes a route's function as (§1.7).

    None for authorizer events: their permission (`.../authorizers/{id}`) is not checked here.
    """
    ctx = event.get("requestContext") or {}
    if event.get("type") == "REQUEST" or "routeKey" not in ctx:
        return None
    return (f"arn:aws:execute-api:{region}:{account_id}:{ctx.get('apiId')}/{ctx.get('stage')}"
            f"/{ctx['routeKey']}")


def _function_for(uri: str | None, integration_type: str | None, what: str) -> Any:
    arn = lambda_arn_from_uri(uri)
    if integration_type == "AWS_PROXY" and arn:
        return MotoLambda(arn)
    return UnsupportedIntegration(
        name=str(uri or integration_type),
        problem=(
            f"{what} uses a {integration_type} integration with URI {uri!r}; the local "
            "gateway runs only Lambda proxy integrations: IntegrationType='AWS_PROXY', "
            "IntegrationUri=lambda_integration_uri(function_arn, region)."
        ),
    )


# --- the config ---------------------------------------------------------------------------


def _route(state: moto_gaps.ApiState, route: moto_gaps.RouteState) -> Route:
    what = f"Route {route.route_key!r}"
    function = None
    timeout = DEFAULT_INTEGRATION_TIMEOUT
    if route.target:
        integration_id = route.target.removeprefix("integrations/")
        integration = state.integrations.get(integration_id)
        if integration is None:
            function = UnsupportedIntegration(
                name=route.target,
                problem=f"{what} targets {route.target!r}, which does not exist in the "
                "deployment: create_integration(...) then Target='integrations/{id}'.",
            )
        else:
            function = _function_for(
                integration.integration_uri, integration.integration_type, what
            )
            if integration.timeout_in_millis:
                timeout = integration.timeout_in_millis / 1000
    authorizer = None
    if route.route_key == "$connect" and route.authorization_type == "CUSTOM":
        auth = state.authorizers.get(route.authorizer_id or "")
        if auth is None:
            raise MotoSourceError(
                f"$connect uses AuthorizationType CUSTOM but authorizer "
                f"{route.authorizer_id!r} does not exist in the deployment: "
                "create_authorizer(...) and pass its AuthorizerId to the route."
            )
        authorizer = Authorizer(
            function=_function_for(auth.authorizer_uri, "AWS_PROXY", f"Authorizer {auth.name!r}"),
            identity_sources=auth.identity_source,
            authorizer_id=auth.authorizer_id,
            name=auth.name or "authorizer",
        )
    return Route(
        key=route.route_key,
        function=function,
        timeout=timeout,
        two_way=route.route_response_selection_expression == "$default"
        and "$default" in route.route_response_keys,
        authorizer=authorizer,
        iam_auth=route.route_key == "$connect" and route.authorization_type == "AWS_IAM",
    )


def api_config(
    api_id: str, stage: str, *, account_id: str | None = None, region: str | None = None
) -> ApiConfig:
    """The deployed configuration of one WebSocket API stage in moto."""
    api = _require_api(api_id, account_id, region)
    found = _require_stage(api, stage)
    rev = revision(api_id, stage, account_id=account_id, region=region)
    state = moto_gaps.deployed_state(api, found)
    if state is None:
        raise MotoSourceError(
            f"Stage {stage!r} of API {api_id!r} has no deployment and AutoDeploy is off: call "
            f"apigatewayv2.create_deployment(ApiId={api_id!r}, StageName={stage!r}), or "
            f"update_stage(ApiId={api_id!r}, StageName={stage!r}, AutoDeploy=True)."
        )
    account, region_name = _where[api_id]
    return ApiConfig(
        api_id=api_id,
        stage=stage,
        route_selection_expression=state.route_selection_expression,
        routes={r.route_key: _route(state, r) for r in state.routes},
        region=region_name,
        account_id=account,
        revision=rev,
    )


__all__ = [
    "MotoLambda",
    "MotoSourceError",
    "UnsupportedIntegration",
    "api_config",
    "lambda_arn_from_uri",
    "revision",
]
