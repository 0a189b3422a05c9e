"""Lesson 08's claims, with the lesson's own handlers and authorizers, over real sockets.

The handler sources and `protect` (authorizer on `$connect`, redeploy) are read from the
solution notebook's cells, so these tests prove what the learner runs: moto holds the API,
the local gateway serves it, websocket-client clients connect.
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path

import boto3
import pytest
import websocket

from helpers.aws import (
    LAMBDA_TRUST_POLICY,
    deploy_websocket_api,
    handler_zip,
    lambda_integration_uri,
    lambda_role,
)
from helpers.client import Client
from helpers.gateway import VirtualClock
from helpers.lessons import lesson08

NOTEBOOK = next((Path(__file__).resolve().parents[1] / "solutions").glob("08_*.ipynb"))
QUERY = ["route.request.querystring.token"]
HEADER = ["route.request.header.Sec-WebSocket-Protocol"]


def is_definition(node: ast.stmt) -> bool:
    """`protect`, or `NAME = "..."` (a handler's source)."""
    if isinstance(node, ast.FunctionDef):
        return node.name == "protect"
    return isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
        and isinstance(node.value.value, str)


def lesson_definitions() -> dict:
    """The notebook's top-level string constants and functions (not its other statements)."""
    namespace = {"lam": boto3.client("lambda"), "apigw": boto3.client("apigatewayv2"),
                 "region": "us-east-1", "account": "123456789012", "lambda_role": lambda_role,
                 "handler_zip": handler_zip, "lambda_integration_uri": lambda_integration_uri}
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse("".join(cell["source"]))
        kept = [node for node in tree.body if is_definition(node)]
        exec(compile(ast.Module(kept, []), NOTEBOOK.name, "exec"), namespace)
    # What the notebook imports from its lesson module (the checks use the same functions).
    for name, value in vars(lesson08).items():
        if name == "protect" or (name.isupper() and isinstance(value, str)):
            namespace.setdefault(name, value)
    return namespace


@pytest.fixture
def lesson(aws):
    return lesson_definitions()


def try_connect(url: str, **options) -> str:
    """The handshake's outcome, as the lesson prints it."""
    try:
        Client(url, **options).close()
        return "101 connected"
    except websocket.WebSocketBadStatusException as error:
        return f"{error.status_code} refused"


def secured(lesson, name: str, connect: str, authorizer: str, identity_source: list[str],
            **deploy_options):
    api = deploy_websocket_api(name, {"$connect": connect, "whoami": lesson["WHOAMI"],
                                      "sendmessage": lesson["SENDMESSAGE"]},
                               two_way=["whoami", "sendmessage"], **deploy_options)
    lesson["protect"](api, authorizer, identity_source, f"{name}-authorizer")
    return api


def test_the_authorizer_allows_denies_403_and_a_missing_token_is_401_unasked(lesson, serve_api):
    gateway = serve_api(secured(lesson, "secure", lesson["CONNECT"], lesson["DEMO_AUTHORIZER"],
                             QUERY))
    outcomes = [try_connect(gateway.url + query)
                for query in ("?token=let-me-in", "?token=guess", "")]
    assert outcomes == ["101 connected", "403 refused", "401 refused"]
    assert len(gateway.log.invocations("$connect (authorizer)")) == 2  # not for the 401


def test_later_events_carry_the_principal_and_the_context_as_strings(lesson, serve_api):
    gateway = serve_api(secured(lesson, "secure", lesson["CONNECT"], lesson["DEMO_AUTHORIZER"],
                             QUERY))
    with Client(gateway.url + "?token=let-me-in") as demo:
        demo.send_json({"action": "whoami"})
        who = json.loads(demo.recv())
    assert who == {"principalId": "demo-user", "plan": "free", "level": "3", "beta": "true"}


def header_authorizer(lesson) -> str:
    return lesson["DEMO_AUTHORIZER"].replace(  # as the lesson derives it
        'event["queryStringParameters"]["token"]',
        'event["headers"]["Sec-WebSocket-Protocol"].split(",")[-1].strip()')


def test_a_subprotocol_token_needs_connect_to_echo_a_protocol(lesson, serve_api):
    gateway = serve_api(secured(lesson, "plain", lesson["CONNECT"], header_authorizer(lesson),
                             HEADER))
    with pytest.raises(websocket.WebSocketException, match="Invalid WebSocket Header"):
        Client(gateway.url, subprotocols=["chat", "let-me-in"])
    checked = serve_api(secured(lesson, "checked", lesson["CONNECT_CHECKED"],
                             header_authorizer(lesson), HEADER,
                             environment={"ALLOWED_ORIGINS": ""}))
    with Client(checked.url, subprotocols=["chat", "let-me-in"]) as browser_like:
        assert browser_like._ws.getsubprotocol() == "chat"  # the first offered, not the token


def test_connect_refuses_an_origin_not_on_its_list_with_403(lesson, serve_api):
    gateway = serve_api(secured(lesson, "origin", lesson["CONNECT_CHECKED"],
                             header_authorizer(lesson), HEADER,
                             environment={"ALLOWED_ORIGINS": "https://chat.example.com"}))
    outcomes = {origin: try_connect(gateway.url, subprotocols=["chat", "let-me-in"],
                                    origin=origin)
                for origin in ("https://chat.example.com", "https://evil.example.net")}
    assert outcomes == {"https://chat.example.com": "101 connected",
                        "https://evil.example.net": "403 refused"}


def test_a_push_without_manage_connections_is_refused_403_until_the_policy_allows_it(
        lesson, serve_api):
    iam, lam = boto3.client("iam"), boto3.client("lambda")
    api = deploy_websocket_api("secure-poke", {"poke": lesson["POKE"]}, two_way=["poke"])
    iam.create_role(RoleName="bare", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))
    lam.update_function_configuration(FunctionName=api.functions["poke"],
                                      Role=iam.get_role(RoleName="bare")["Role"]["Arn"])
    gateway = serve_api(api)
    with Client(gateway.url) as poked:
        poked.send_json({"action": "poke"})
        refused = poked.recv()
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "execute-api:ManageConnections",
            "Resource": f"arn:aws:execute-api:us-east-1:123456789012:{api.api_id}/dev/POST/"
                        "@connections/*"}]}
        iam.put_role_policy(RoleName="bare", PolicyName="push-here",
                            PolicyDocument=json.dumps(policy))
        poked.send_json({"action": "poke"})
        allowed = sorted([poked.recv(), poked.recv()])
    assert refused.startswith("403 AccessDeniedException: ")
    assert "execute-api:ManageConnections" in refused
    assert allowed == ["pushed", "the push was allowed"]


def test_the_handler_limits_each_connection_to_five_messages_a_minute(lesson, serve_api):
    api = secured(lesson, "limited", lesson["CONNECT"], lesson["DEMO_AUTHORIZER"], QUERY)
    boto3.client("dynamodb").create_table(
        TableName="rate", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"},
                   {"AttributeName": "minute", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"},
                              {"AttributeName": "minute", "AttributeType": "N"}])
    lam = boto3.client("lambda")
    lam.update_function_code(FunctionName=api.functions["sendmessage"],
                             ZipFile=handler_zip(lesson["LIMITED"]))
    lam.update_function_configuration(FunctionName=api.functions["sendmessage"], Environment={
        "Variables": {"MESSAGES_PER_MINUTE": "5"}})
    clock = VirtualClock()
    gateway = serve_api(api, clock=clock)
    with Client(gateway.url + "?token=let-me-in") as flooder, \
            Client(gateway.url + "?token=let-me-in") as neighbour:
        for n in range(8):
            flooder.send_json({"action": "sendmessage", "text": f"spam {n}"})
        answers = Counter(flooder.recv().split(":")[0] for _ in range(8))
        neighbour.send_json({"action": "sendmessage", "text": "me too"})
        neighbours = neighbour.recv()
        clock.advance(minutes=1)
        flooder.send_json({"action": "sendmessage", "text": "calm again"})
        later = flooder.recv()
        flooder.send_json({"action": "sendmessage", "text": "x" * 5000})
        too_long = flooder.recv()
    assert answers == {"ok": 5, "slow down": 3}
    assert neighbours == "ok: me too"  # the limit is per connection
    assert later == "ok: calm again"
    assert too_long == "too long: at most 1000 characters"


def test_the_connect_rate_quota_refuses_a_storm_with_429(lesson, serve_api):
    api = secured(lesson, "stormy", lesson["CONNECT"], lesson["DEMO_AUTHORIZER"], QUERY)
    gateway = serve_api(api, clock=VirtualClock(), max_connections_per_second=2)
    outcomes = [try_connect(gateway.url + "?token=let-me-in") for _ in range(6)]
    assert outcomes[:2] == ["101 connected", "101 connected"]
    assert "429 refused" in outcomes
