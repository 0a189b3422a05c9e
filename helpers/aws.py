"""boto3 + moto conveniences for the lessons: they hide ceremony, never the lesson.

Everything the lessons teach (create_api, create_integration, create_route, deployments,
post_to_connection...) is still written out with boto3 in the notebooks. These helpers only
do the set-up that would be the same in every lesson: start moto, package a handler, make the
IAM role Lambda needs, and spell out the integration URI.
"""

from __future__ import annotations

import gc
import io
import json
import os
import re
import textwrap
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import boto3
import moto
from moto.core.models import MockAWS

from helpers.gateway import patches

# moto and botocore, completed (once): deployments, wss:// endpoints, and @connections calls
# answered by a running local gateway (helpers.gateway.patches lists every change).
patches.install_moto_parts()

_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

_running: MockAWS | None = None

#: Trust policy that lets the Lambda service assume a role (what "execution role" means).
LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


#: moto and the local gateways run in this process (a notebook's kernel) and allocate heavily
#: among long-lived objects (botocore's models, moto's backends): at Python's default thresholds,
#: (700, 10, 10), the cyclic garbage collector took about a tenth of a lesson's CPU. Collecting
#: less often costs a little memory; what it frees is the same.
GC_THRESHOLDS = (50_000, 20, 20)


def start_moto(region: str = "us-east-1") -> MockAWS:
    """Start an in-memory AWS: every boto3 call from now on goes to moto, not to AWS.

    Sets fake credentials and ``AWS_DEFAULT_REGION`` (so no real account can be touched),
    then starts ``moto.mock_aws()``. Running the cell again stops the previous mock (and any
    running local gateway) first, so you start from an empty account. Keep the result and
    call ``.stop()`` to clean up.
    """
    global _running
    from helpers.gateway.server import stop_all

    stop_all()  # gateways serve APIs of the moto being replaced: stop them first
    if _running is not None:
        _running.stop()
        _running = None
    os.environ.update(_FAKE_CREDENTIALS)
    os.environ["AWS_DEFAULT_REGION"] = region
    gc.set_threshold(*GC_THRESHOLDS)
    mock = moto.mock_aws()
    original_stop = mock.stop

    def stop_once(remove_data: bool = True) -> None:
        # moto's stop() is not idempotent (a second call corrupts its nesting count), and a
        # learner may run the clean-up cell and then this one again.
        if not getattr(mock, "_course_stopped", False):
            mock._course_stopped = True  # type: ignore[attr-defined]
            original_stop(remove_data)

    mock.stop = stop_once  # type: ignore[method-assign]
    mock.start()
    _running = mock
    return mock


def start_course():
    """The lessons' setup: `start_moto()`, unless lesson 09's switch is on.

    With ``COURSE_REAL_AWS=1`` (and the account confirmed) the same cells run on a real AWS
    account instead: every resource tagged, `LocalGateway.from_api` giving the real stage
    (`helpers.lessons.real_aws.start_course`). Either way, ``.stop()`` ends it: moto forgets,
    or everything the course tagged is deleted.
    """
    from helpers.lessons.real_aws import start_course as start

    return start()


def handler_zip(source: str, filename: str = "app.py", **extra_files: str) -> bytes:
    """A Lambda deployment package (a zip) holding ``source`` as ``filename``.

    Pass the bytes as ``Code={"ZipFile": ...}`` to ``lambda.create_function``; the handler is
    then ``"app.lambda_handler"`` (module name, dot, function name). The source is dedented,
    so you can write it as an indented triple-quoted string. More files go in as keyword
    arguments: ``handler_zip(src, helpers_py="...")`` adds ``helpers.py`` (``_py`` -> ``.py``).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(filename, textwrap.dedent(source).lstrip("\n"))
        for name, text in extra_files.items():
            path = name[: -len("_py")] + ".py" if name.endswith("_py") else name
            archive.writestr(path, textwrap.dedent(text).lstrip("\n"))
    return buffer.getvalue()


#: What AWS's managed AWSLambdaBasicExecutionRole grants: writing the function's logs.
BASIC_EXECUTION_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": "*",
    }],
}


def default_region() -> str:
    """The region of boto3's default session, the one `boto3.client(...)` calls use.

    Not `boto3.session.Session().region_name`: a new session ignores
    `boto3.setup_default_session(region_name=...)` and costs ~15 ms of CPU to build."""
    return boto3._get_default_session().region_name or "us-east-1"


def manage_connections_policy(region: str, account_id: str, api_id: str = "*") -> dict:
    """An IAM policy letting a handler call ``@connections`` (post, get, delete) on one API,
    every stage (``api_id="*"``: every WebSocket API of the account in ``region``).

    The resource is ``arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/
    @connections/{id}`` (docs/aws-behaviour.md §6.3); without such a policy a handler's
    ``post_to_connection`` fails with ``AccessDeniedException`` (403).
    """
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": "execute-api:ManageConnections",
            "Resource": f"arn:aws:execute-api:{region}:{account_id}:{api_id}/*/*/@connections/*",
        }],
    }


def dynamodb_table_policy(region: str, account_id: str, table: str) -> dict:
    """An IAM policy for the item operations a chat makes on one DynamoDB table."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                       "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:Scan"],
            "Resource": f"arn:aws:dynamodb:{region}:{account_id}:table/{table}",
        }],
    }


def lambda_role(
    name: str = "websocket-lambda-role", *, api_id: str = "*", table: str | None = None
) -> str:
    """The ARN of an IAM role Lambda can assume, with the policies a chat handler needs.

    Every Lambda function runs as an *execution role*; ``create_function(Role=...)`` fails
    unless the role exists and trusts ``lambda.amazonaws.com`` (moto checks that it exists,
    as AWS does). What the handler may then do is what the role's policies allow. This one
    gets three inline policies: CloudWatch Logs (``basic-execution``),
    ``execute-api:ManageConnections`` on the ``@connections`` API of ``api_id`` (the local
    gateway checks it, as AWS does; ``"*"``: every WebSocket API of the account, handy before
    the API exists) and, if ``table`` is given, DynamoDB on that table. Calling it again
    returns the same role and adds the policies for a new ``api_id`` or ``table``.
    """
    iam = boto3.client("iam")
    try:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY),
            Description="Execution role for the course's WebSocket handlers",
        )["Role"]["Arn"]
    account_id = arn.split(":")[4]
    region = default_region()
    policies = {
        "basic-execution": BASIC_EXECUTION_POLICY,
        "manage-connections-" + ("all-apis" if api_id == "*" else api_id):
            manage_connections_policy(region, account_id, api_id),
    }
    if table:
        policies[f"dynamodb-{table}"] = dynamodb_table_policy(region, account_id, table)
    for policy_name, document in policies.items():
        iam.put_role_policy(RoleName=name, PolicyName=policy_name,
                            PolicyDocument=json.dumps(document))
    return arn


def lambda_integration_uri(function_arn: str, region: str) -> str:
    """The ``IntegrationUri`` for a Lambda proxy integration (docs/aws-behaviour.md §1.2).

    API Gateway calls Lambda's own Invoke API, whose path is
    ``/2015-03-31/functions/{FunctionArn}/invocations``; the URI names that call.
    """
    return (
        f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/"
        f"{function_arn}/invocations"
    )


def allow_api_gateway(function_arn: str, api_id: str, route_key: str = "*") -> None:
    """Let API Gateway invoke a function for one route of an API (`*`: every route).

    Without this resource-policy statement AWS (and the local gateway) refuse to run the
    function: "Invalid permissions on Lambda function" (docs/aws-behaviour.md §1.7).
    """
    _, _, _, region, account, _, name = function_arn.split(":")[:7]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", route_key).strip("-") or "all"
    boto3.client("lambda", region_name=region).add_permission(
        FunctionName=name, StatementId=f"{api_id}-{slug}-invoke",
        Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{region}:{account}:{api_id}/*/{route_key}",
    )


@dataclass(frozen=True)
class DeployedApi:
    """What `deploy_websocket_api` made: ids a lesson needs next."""

    api_id: str
    stage: str
    region: str
    functions: dict[str, str]  # route key -> Lambda function name
    role: str = ""  # the functions' execution role (ARN)

    @property
    def endpoint(self) -> str:
        """The URL clients would use on AWS (`LocalGateway.from_api` serves it locally)."""
        return f"wss://{self.api_id}.execute-api.{self.region}.amazonaws.com/{self.stage}"


def deploy_websocket_api(
    name: str,
    handlers: Mapping[str, str],
    *,
    two_way: Iterable[str] = (),
    stage: str = "dev",
    route_selection_expression: str = "$request.body.action",
    environment: Mapping[str, str] | None = None,
    function_timeout: int = 3,
    integration_timeout_ms: int | None = None,
    table: str | None = None,
) -> DeployedApi:
    """Every boto3 step of lesson 02 in one call: the API, one Lambda function per route,
    its permission, `AWS_PROXY` integration and route, `$default` route responses for the
    `two_way` routes, a stage and a deployment.

    `handlers` maps route keys to handler source (a module defining `lambda_handler`).
    Lessons after 02 use this so each can focus on its own subject; lesson 02 shows the calls.
    The functions share one execution role, ``{name}-role``, allowed to write logs, to call
    ``@connections`` on this API only, and to use DynamoDB ``table`` if one is named.
    """
    apigw, lam = boto3.client("apigatewayv2"), boto3.client("lambda")
    region = default_region()
    api = apigw.create_api(Name=name, ProtocolType="WEBSOCKET",
                           RouteSelectionExpression=route_selection_expression)
    api_id, answer = api["ApiId"], set(two_way)
    role = lambda_role(re.sub(r"[^\w+=,.@-]", "-", f"{name}-role")[-64:], api_id=api_id,
                       table=table)
    functions = {}
    for route_key, source in handlers.items():
        # Function names allow letters, digits, - and _ only: "chat/join" -> "chat-join".
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", route_key.lstrip("$")).strip("-") or "route"
        function_name = f"{name}-{slug}"
        function = lam.create_function(
            FunctionName=function_name, Runtime="python3.12", Role=role,
            Handler="app.lambda_handler", Code={"ZipFile": handler_zip(source)},
            Timeout=function_timeout,
            Environment={"Variables": dict(environment or {})},
        )
        allow_api_gateway(function["FunctionArn"], api_id, route_key)
        integration_options = {}
        if integration_timeout_ms is not None:
            integration_options["TimeoutInMillis"] = integration_timeout_ms
        integration = apigw.create_integration(
            ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationMethod="POST",
            IntegrationUri=lambda_integration_uri(function["FunctionArn"], region),
            **integration_options,
        )
        route_options = {"RouteResponseSelectionExpression": "$default"} \
            if route_key in answer else {}
        route = apigw.create_route(ApiId=api_id, RouteKey=route_key,
                                   Target=f"integrations/{integration['IntegrationId']}",
                                   **route_options)
        if route_key in answer:
            apigw.create_route_response(ApiId=api_id, RouteId=route["RouteId"],
                                        RouteResponseKey="$default")
        functions[route_key] = function_name
    apigw.create_stage(ApiId=api_id, StageName=stage)
    deployment = apigw.create_deployment(ApiId=api_id, StageName=stage)
    apigw.update_stage(ApiId=api_id, StageName=stage, DeploymentId=deployment["DeploymentId"])
    return DeployedApi(api_id, stage, region, functions, role)


__all__ = ["BASIC_EXECUTION_POLICY", "LAMBDA_TRUST_POLICY", "DeployedApi", "allow_api_gateway",
           "deploy_websocket_api", "dynamodb_table_policy", "handler_zip",
           "lambda_integration_uri", "lambda_role", "manage_connections_policy", "start_course",
           "start_moto"]
