"""The demo chat API that `python -m helpers.gateway` serves, built the way the lessons do.

Everything below is ordinary boto3 under moto's `mock_aws`: a DynamoDB table, an execution
role allowed to use it and this API's `@connections`, four Lambda functions from source
strings, a WEBSOCKET API with `AWS_PROXY` integrations, routes, a
`$default` route response (so `$default` answers), a stage and a deployment. The handler
sources are plain module-level strings so you can read them as the Lambda code they are.
"""

from __future__ import annotations

import boto3

from helpers.aws import allow_api_gateway, handler_zip, lambda_integration_uri, lambda_role

TABLE_NAME = "demo_chat_connections"

#: `$connect`: remember the connection (and an optional `?name=` nickname).
CONNECT_SOURCE = """
    import os
    import boto3

    table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])

    def lambda_handler(event, context):
        connection_id = event["requestContext"]["connectionId"]
        query = event.get("queryStringParameters") or {}
        name = query.get("name") or "guest"
        table.put_item(Item={"connectionId": connection_id, "name": name})
        print(f"connected {connection_id} as {name}")
        return {"statusCode": 200}
"""

#: `$disconnect`: forget the connection (best effort, as on AWS).
DISCONNECT_SOURCE = """
    import os
    import boto3

    table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])

    def lambda_handler(event, context):
        connection_id = event["requestContext"]["connectionId"]
        table.delete_item(Key={"connectionId": connection_id})
        return {"statusCode": 200}
"""

#: `sendmessage`: post `data` to every stored connection; drop the ones that are gone.
SENDMESSAGE_SOURCE = """
    import json
    import os
    import boto3

    table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])

    def lambda_handler(event, context):
        ctx = event["requestContext"]
        data = json.loads(event.get("body") or "{}").get("data", "")
        if not isinstance(data, str):  # the client sees "Internal server error"
            raise ValueError(f"data must be a string, not {type(data).__name__}")
        sender = table.get_item(Key={"connectionId": ctx["connectionId"]}).get("Item", {})
        text = f"{sender.get('name', 'guest')}: {data}"
        api = boto3.client("apigatewaymanagementapi",
                           endpoint_url=f"https://{ctx['domainName']}/{ctx['stage']}")
        for item in table.scan(ProjectionExpression="connectionId")["Items"]:
            try:
                api.post_to_connection(ConnectionId=item["connectionId"], Data=text.encode())
            except api.exceptions.GoneException:  # before ClientError: it is a subclass
                table.delete_item(Key={"connectionId": item["connectionId"]})
        return {"statusCode": 200}
"""

#: `$default` (two-way): anything that is not a known action gets this answer.
DEFAULT_SOURCE = """
    import json

    HELP = 'Send {"action": "sendmessage", "data": "hello"} to talk to everyone.'

    def lambda_handler(event, context):
        return {"statusCode": 200, "body": json.dumps({"help": HELP, "got": event.get("body")})}
"""

ROUTES = {
    "$connect": CONNECT_SOURCE,
    "$disconnect": DISCONNECT_SOURCE,
    "sendmessage": SENDMESSAGE_SOURCE,
    "$default": DEFAULT_SOURCE,
}


def create_chat_api(stage: str = "dev", region: str = "us-east-1") -> str:
    """Create and deploy the chat API in the running moto; returns its `ApiId`.

    Call it inside `mock_aws` (e.g. after `helpers.aws.start_moto()`).
    """
    dynamodb = boto3.client("dynamodb", region_name=region)
    dynamodb.create_table(
        TableName=TABLE_NAME,
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    lam = boto3.client("lambda", region_name=region)
    v2 = boto3.client("apigatewayv2", region_name=region)
    api_id = v2.create_api(
        Name="demo-chat", ProtocolType="WEBSOCKET",
        RouteSelectionExpression="$request.body.action",
    )["ApiId"]
    # Logs, @connections on this API, DynamoDB on the table: what the handlers do, no more.
    role = lambda_role("demo-chat-role", api_id=api_id, table=TABLE_NAME)
    for route_key, source in ROUTES.items():
        name = "chat-" + route_key.lstrip("$")
        arn = lam.create_function(
            FunctionName=name, Runtime="python3.11", Role=role, Handler="app.lambda_handler",
            Code={"ZipFile": handler_zip(source)},
            Environment={"Variables": {"TABLE_NAME": TABLE_NAME}},
        )["FunctionArn"]
        allow_api_gateway(arn, api_id, route_key)  # as on AWS, or it may not run
        integration_id = v2.create_integration(
            ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationMethod="POST",
            IntegrationUri=lambda_integration_uri(arn, region),
        )["IntegrationId"]
        extra = {"RouteResponseSelectionExpression": "$default"} if route_key == "$default" else {}
        route_id = v2.create_route(
            ApiId=api_id, RouteKey=route_key, Target=f"integrations/{integration_id}", **extra
        )["RouteId"]
        if extra:
            v2.create_route_response(ApiId=api_id, RouteId=route_id, RouteResponseKey="$default")
    v2.create_stage(ApiId=api_id, StageName=stage)
    v2.create_deployment(ApiId=api_id, StageName=stage)
    return api_id
