"""Lesson 07's capstone chat room: deploy `backend/chat.py` with boto3, as `template.yaml` does.

`deploy_chat()` makes, in the running moto (or, in lesson 09, a real account), exactly what the
SAM template beside this file declares: two DynamoDB tables (the history with a TTL), an
execution role whose policy names only those tables and this API's `@connections`, one Lambda
function per route from the same zip, `AWS_PROXY` integrations, routes, a `$default` route
response, a stage and a deployment. Lesson 07 shows this source; tests and the browser test
deploy through it, so the lesson, the tests and the template describe one backend.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import boto3

from helpers.aws import (
    LAMBDA_TRUST_POLICY,
    allow_api_gateway,
    default_region,
    lambda_integration_uri,
)

HERE = Path(__file__).resolve().parent
BACKEND = HERE / "backend"
TEMPLATE = HERE / "template.yaml"

#: Route key -> handler in backend/chat.py (the template's functions use the same names).
ROUTES = {
    "$connect": "chat.on_connect",
    "$disconnect": "chat.on_disconnect",
    "sendmessage": "chat.on_sendmessage",
    "members": "chat.on_members",
    "catchup": "chat.on_catchup",
    "$default": "chat.on_default",
}
TWO_WAY = {"$default"}


def load_template() -> dict:
    """template.yaml as data; intrinsic functions become one-key dicts ({"Sub": "..."})."""
    import yaml  # late: only this reads YAML (PyYAML comes with JupyterLab)

    class CloudFormationLoader(yaml.SafeLoader):
        """Reads !Ref, !Sub, !GetAtt... as {"Ref": ...}-style dicts (cfn-lint checks them)."""

    CloudFormationLoader.add_multi_constructor("!", lambda loader, tag, node: {tag: (
        loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
        else loader.construct_sequence(node))})
    return yaml.load(TEMPLATE.read_text(), Loader=CloudFormationLoader)


def backend_zip() -> bytes:
    """The deployment package: every file of backend/ at the zip's root."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(BACKEND.glob("*.py")):
            archive.write(path, path.name)
    return buffer.getvalue()


def role_policy(region: str, account: str, api_id: str, stage: str,
                tables: list[str], functions: str) -> dict:
    """Least privilege: these tables' items, @connections of this API's stage only, and the
    log groups of the functions named `{functions}-*` (where Lambda writes what they print)."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow",
         "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:Scan"],
         "Resource": [f"arn:aws:dynamodb:{region}:{account}:table/{t}" for t in tables]},
        {"Effect": "Allow", "Action": "execute-api:ManageConnections",
         "Resource": f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/*/@connections/*"},
        {"Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{functions}-*"},
    ]}


def _create_function(lam, attempts: int = 10, **request) -> dict:
    """`create_function`, retried while a new role is not yet visible to Lambda.

    IAM is eventually consistent: on AWS a role created a moment ago can be refused with
    "The role defined for the function cannot be assumed by Lambda" for a few seconds
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html). moto never is.
    """
    for attempt in range(attempts):
        try:
            return lam.create_function(**request)
        except lam.exceptions.InvalidParameterValueException as error:
            if "cannot be assumed" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Chat:
    """What `deploy_chat` made."""

    api_id: str
    stage: str
    region: str
    connections_table: str
    messages_table: str
    functions: dict[str, str]  # route key -> function name


def deploy_chat(name: str = "chat", *, stage: str = "dev", page_size: int | None = None,
                ttl_seconds: int = 86400, tags: dict[str, str] | None = None) -> Chat:
    """Create and deploy the chat room; `page_size` makes scans and queries page early."""
    account = boto3.client("sts").get_caller_identity()["Account"]
    region = default_region()
    dynamodb, iam = boto3.client("dynamodb"), boto3.client("iam")
    apigw, lam = boto3.client("apigatewayv2"), boto3.client("lambda")
    tag_list = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]

    # 1. Tables: connections by id; the history by (room, id), expiring through TTL.
    tables = {"connections": f"{name}_connections", "messages": f"{name}_messages"}
    dynamodb.create_table(
        TableName=tables["connections"], BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
        **({"Tags": tag_list} if tag_list else {}))
    dynamodb.create_table(
        TableName=tables["messages"], BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "room", "KeyType": "HASH"},
                   {"AttributeName": "id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "room", "AttributeType": "S"},
                              {"AttributeName": "id", "AttributeType": "N"}],
        **({"Tags": tag_list} if tag_list else {}))
    for table in tables.values():
        dynamodb.get_waiter("table_exists").wait(TableName=table)
        dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": "expiresAt"})

    # 2. The API, then a role allowed exactly these tables and this API's @connections.
    api_id = apigw.create_api(Name=name, ProtocolType="WEBSOCKET",
                              RouteSelectionExpression="$request.body.action",
                              **({"Tags": tags} if tags else {}))["ApiId"]
    role = iam.create_role(RoleName=f"{name}-handlers",
                           AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY),
                           **({"Tags": tag_list} if tag_list else {}))["Role"]["Arn"]
    iam.put_role_policy(RoleName=f"{name}-handlers", PolicyName="chat-room",
                        PolicyDocument=json.dumps(role_policy(
                            region, account, api_id, stage, list(tables.values()), name)))

    # 3. One function per route (one zip), its permission, integration and route.
    environment = {"CONNECTIONS_TABLE": tables["connections"],
                   "MESSAGES_TABLE": tables["messages"], "TTL_SECONDS": str(ttl_seconds)}
    if page_size:
        environment["PAGE_SIZE"] = str(page_size)
    code, functions = backend_zip(), {}
    for route_key, handler in ROUTES.items():
        function_name = f"{name}-{handler.split('_', 1)[1]}"
        arn = _create_function(
            lam, FunctionName=function_name, Runtime="python3.12", Role=role, Handler=handler,
            Code={"ZipFile": code}, Timeout=10, Environment={"Variables": environment},
            **({"Tags": tags} if tags else {}))["FunctionArn"]
        allow_api_gateway(arn, api_id, route_key)
        integration_id = apigw.create_integration(
            ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationMethod="POST",
            IntegrationUri=lambda_integration_uri(arn, region))["IntegrationId"]
        two_way = {"RouteResponseSelectionExpression": "$default"} \
            if route_key in TWO_WAY else {}
        route_id = apigw.create_route(ApiId=api_id, RouteKey=route_key,
                                      Target=f"integrations/{integration_id}",
                                      **two_way)["RouteId"]
        if two_way:
            apigw.create_route_response(ApiId=api_id, RouteId=route_id,
                                        RouteResponseKey="$default")
        functions[route_key] = function_name

    # 4. A stage, and a deployment of everything above.
    apigw.create_stage(ApiId=api_id, StageName=stage, **({"Tags": tags} if tags else {}))
    deployment = apigw.create_deployment(ApiId=api_id, StageName=stage)
    apigw.update_stage(ApiId=api_id, StageName=stage, DeploymentId=deployment["DeploymentId"])
    return Chat(api_id, stage, region, tables["connections"], tables["messages"], functions)


__all__ = ["BACKEND", "ROUTES", "TEMPLATE", "Chat", "backend_zip", "deploy_chat", "load_template",
           "role_policy"]
