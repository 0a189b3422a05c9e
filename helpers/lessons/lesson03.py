"""Lesson 03's graded check: deploy the learner's three handlers for real and watch the table.

Each run deploys a fresh API and table (`lesson03-check-N`), so the check can be re-run, and
stops its own gateway when done. Failures raise `CheckFailed` with a hint (helpers.checks).
"""

from __future__ import annotations

import itertools

import boto3
import websocket

from helpers.aws import deploy_websocket_api
from helpers.checks import check
from helpers.client import Client
from helpers.gateway import LocalGateway

SORRY = "Sorry, I didn't understand that command."
_runs = itertools.count(1)


def _stored_ids(table_name: str) -> set[str]:
    items = boto3.client("dynamodb").scan(TableName=table_name, ConsistentRead=True)["Items"]
    return {item["connectionId"]["S"] for item in items if "connectionId" in item}


def _last_error(gateway: LocalGateway, route: str) -> str | None:
    for entry in reversed(gateway.log.invocations(route)):
        if entry.get("error"):
            return str(entry["error"]).splitlines()[0]
    return None


def check_lifecycle_handlers(connect_source: str, disconnect_source: str,
                             default_source: str) -> None:
    """Two clients connect, one sends a message, one leaves; the table must follow."""
    run = next(_runs)
    name = f"lesson03-check-{run}"
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    api = deploy_websocket_api(
        name,
        {"$connect": connect_source, "$disconnect": disconnect_source, "$default": default_source},
        two_way=["$default"], environment={"TABLE": name},
    )
    gateway = LocalGateway.from_api(api.api_id, api.stage).start()
    clients: list[Client] = []
    try:
        for who in ("alice", "bob"):
            try:
                clients.append(Client(gateway.url, name=who))
            except websocket.WebSocketBadStatusException as error:
                raised = _last_error(gateway, "$connect")
                check(raised is None,
                      f"{who}'s handshake failed with HTTP {error.status_code}: your $connect "
                      f"handler raised {raised}",
                      hint="save the id with table.put_item(Item={'connectionId': connection_id})"
                           " and return {'statusCode': 200}")
                check(False, f"{who}'s handshake failed with HTTP {error.status_code}",
                      hint="$connect must return {'statusCode': 200} to let the client in")
        alice, bob = clients
        alice_id, bob_id = gateway.connections
        stored = _stored_ids(name)
        check(stored, "two clients are connected but the table is empty",
              hint="in $connect, call table.put_item(Item={'connectionId': connection_id})")
        check(stored == {alice_id, bob_id},
              f"the table holds {len(stored)} item(s), not the 2 connection ids",
              hint="store event['requestContext']['connectionId'] under the key 'connectionId'")

        bob.send("hello?")
        reply = bob.try_recv(3)
        raised = _last_error(gateway, "$default")
        check(raised is None, f"your $default handler raised {raised}",
              hint="look at the traceback in the exercise's handler; return "
                   "{'statusCode': 200, 'body': ...}")
        check(reply is not None, "bob sent a message and got no reply",
              hint="$default must return a 'body' (the route is two-way)")
        check(reply == SORRY, f"the reply was {reply!r}, not {SORRY!r}",
              hint="return {'statusCode': 200, 'body': \"Sorry, I didn't understand that "
                   "command.\"}")

        alice.close()
        try:
            gateway.log.wait_for_invocations("$disconnect", 1, timeout=5)
        except TimeoutError:
            check(False, "alice closed but $disconnect did not finish within 5 s",
                  hint="is your $disconnect handler stuck?")
        raised = _last_error(gateway, "$disconnect")
        check(raised is None, f"your $disconnect handler raised {raised}",
              hint="table.delete_item(Key={'connectionId': connection_id})")
        stored = _stored_ids(name)
        check(alice_id not in stored,
              "alice has gone but her connection id is still in the table",
              hint="in $disconnect, call table.delete_item(Key={'connectionId': connection_id})")
        check(stored == {bob_id}, "after alice left, the table should hold only bob's id",
              hint="$disconnect must delete only the id of the connection that closed")
    finally:
        for client in clients:
            client.close()
        gateway.stop()
