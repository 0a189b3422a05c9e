"""Lesson 03's graded checks: deploy the learner's handlers for real and watch the table.

Each part tests one handler with known-good stand-ins for the other two, so a broken
`$connect` costs only the `$connect` points. Each run deploys a fresh API and table
(`lesson03-check-N`), so the check can be re-run, and stops its own gateway when done.
Failures raise `CheckFailed` with a hint (helpers.checks).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence

import boto3
import websocket

from helpers.aws import deploy_websocket_api
from helpers.checks import check
from helpers.client import Client
from helpers.gateway import LocalGateway
from helpers.lessons.real_aws import on_real_account

SORRY = "Sorry, I didn't understand that command."
_runs = itertools.count(1)
_TABLE = """
import os
import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE"])
"""
STAND_IN = {  # what the parts not under test run
    "$connect": _TABLE + """
def lambda_handler(event, context):
    table.put_item(Item={"connectionId": event["requestContext"]["connectionId"]})
    return {"statusCode": 200}
""",
    "$disconnect": "def lambda_handler(event, context):\n    return {'statusCode': 200}\n",
    "$default": "def lambda_handler(event, context):\n    return {'statusCode': 200, 'body': ''}\n",
}


def _stored_ids(table_name: str) -> set[str]:
    items = boto3.client("dynamodb").scan(TableName=table_name, ConsistentRead=True)["Items"]
    return {item["connectionId"]["S"] for item in items if "connectionId" in item}


def _open_ids(gateway: LocalGateway, candidates: set[str]) -> set[str]:
    """Which of `candidates` are open connections. Locally the gateway lists them; AWS lists
    none (docs/aws-behaviour.md §6.1), so there `get_connection` asks about each id."""
    if not on_real_account():
        return candidates & set(gateway.connections)
    api = boto3.client("apigatewaymanagementapi", endpoint_url=gateway.callback_url)
    found = set()
    for connection_id in candidates:
        with contextlib.suppress(api.exceptions.GoneException):
            api.get_connection(ConnectionId=connection_id)
            found.add(connection_id)
    return found


def _last_error(gateway: LocalGateway, route: str) -> str | None:
    for entry in reversed(gateway.log.invocations(route)):
        if entry.get("error"):
            return str(entry["error"]).splitlines()[0]
    return None


def _deploy(sources: dict[str, str]) -> tuple[str, LocalGateway]:
    name = f"lesson03-check-{next(_runs)}"
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    api = deploy_websocket_api(name, sources, two_way=["$default"], environment={"TABLE": name})
    return name, LocalGateway.from_api(api.api_id, api.stage).start()


def _connect(gateway: LocalGateway, who: str) -> Client:
    try:
        return Client(gateway.url, name=who)
    except websocket.WebSocketBadStatusException as error:
        raised = _last_error(gateway, "$connect")
        check(raised is None,
              f"{who}'s handshake failed with HTTP {error.status_code}: your $connect "
              f"handler raised {raised}",
              hint="save the id with table.put_item(Item={'connectionId': connection_id})"
                   " and return {'statusCode': 200}")
        check(False, f"{who}'s handshake failed with HTTP {error.status_code}",
              hint="$connect must return {'statusCode': 200} to let the client in")
        raise


def check_lifecycle_handlers(connect_source: str, disconnect_source: str,
                             default_source: str, part: str, *,
                             clients: Sequence[str] = ("alice", "bob"),
                             message: str = "hello?", leaving: int = 0) -> None:
    """One part of the exercise: "connect" (every client's id is stored), "default" (the
    reply to `message` is SORRY) or "disconnect" (client number `leaving` closes and only
    its id is deleted)."""
    learner = {"connect": ("$connect", connect_source),
               "default": ("$default", default_source),
               "disconnect": ("$disconnect", disconnect_source)}[part]
    if "raise NotImplementedError()" in learner[1]:
        raise NotImplementedError()  # the stub: `checking` says "not done yet"
    table, gateway = _deploy({**STAND_IN, learner[0]: learner[1]})
    opened: list[Client] = []
    try:
        for who in clients:
            opened.append(_connect(gateway, who))
        if part == "connect":
            stored = _stored_ids(table)
            check(stored, f"{len(clients)} clients are connected but the table is empty",
                  hint="in $connect, call table.put_item(Item={'connectionId': connection_id})")
            check(len(stored) == len(clients) and _open_ids(gateway, stored) == stored,
                  f"the table holds {len(stored)} item(s), not the {len(clients)} connection "
                  "ids",
                  hint="store event['requestContext']['connectionId'] under the key "
                       "'connectionId'")
        elif part == "default":
            sender = opened[-1]
            sender.send(message)
            reply = sender.try_recv(3)
            raised = _last_error(gateway, "$default")
            # Past its Timeout the call is frozen and logged as a timeout: a hung handler,
            # whichever came first, the timeout or the 3 s this check waits.
            check(raised not in ("function-timeout", "integration-timeout"),
                  "your $default handler was still running 3 s after the message (it ran "
                  "past its timeout)",
                  hint="is it waiting for something? it should return at once")
            check(raised is None, f"your $default handler raised {raised}",
                  hint="look at the traceback in the exercise's handler; return "
                       "{'statusCode': 200, 'body': ...}")
            finished = gateway.log.invocations("$default")
            check(reply is not None or finished,
                  "your $default handler was still running 3 s after the message",
                  hint="is it waiting for something? it should return at once")
            check(reply is not None, f"{sender.name} sent a message and got no reply",
                  hint="$default must return a 'body' (the route is two-way)")
            check(reply == SORRY, f"the reply to {message!r} was {reply!r}, not {SORRY!r}",
                  hint="return {'statusCode': 200, 'body': \"Sorry, I didn't understand "
                       "that command.\"}")
        else:
            before = _stored_ids(table)  # the stand-in $connect stored every id
            open_before = _open_ids(gateway, before)
            gone = opened[leaving]
            gone.close()
            try:
                gateway.log.wait_for_invocations("$disconnect", 1, timeout=5)
            except TimeoutError:
                check(False, f"{gone.name} closed but $disconnect did not finish within 5 s",
                      hint="is your $disconnect handler stuck?")
            raised = _last_error(gateway, "$disconnect")
            check(raised is None, f"your $disconnect handler raised {raised}",
                  hint="table.delete_item(Key={'connectionId': connection_id})")
            stored = _stored_ids(table)
            left = open_before - _open_ids(gateway, open_before)  # the id that closed
            check(not left & stored,
                  f"{gone.name} has gone but that connection id is still in the table",
                  hint="in $disconnect, call table.delete_item(Key={'connectionId': "
                       "connection_id})")
            others = open_before - left
            check(stored == others,
                  f"after {gone.name} left, the table should hold only the others' ids",
                  hint="$disconnect must delete only the id of the connection that closed")
    finally:
        for client in opened:
            client.close()
        gateway.stop()
