"""The capstone chat room's Lambda code: one module, one handler per route.

The same file runs on the local gateway (lesson 07 zips it for `lambda.create_function`) and
on AWS (`template.yaml` beside this folder points `CodeUri` here). Only boto3 and the standard
library: nothing from the course's helpers.

Tables (names from the environment):
- CONNECTIONS_TABLE: one row per open connection, `connectionId` -> `nickname`, `joinedAt`,
  `expiresAt`.
- MESSAGES_TABLE: the room's history, key (`room`, `id`); `id` 0 holds the room's counter.
  Rows carry `expiresAt` (epoch seconds), the table's TTL attribute.

What clients receive is JSON with a `type`: `message`, `join`, `leave` (each with the `id`
clients use to de-duplicate and to catch up), `members`, `error` or `help`.
"""

import json
import os
import re
import time

import boto3
from boto3.dynamodb.conditions import Key

ROOM = os.environ.get("ROOM", "lobby")
TTL_SECONDS = int(os.environ.get("TTL_SECONDS", "86400"))
#: Rows per scan or query page. DynamoDB pages at 1 MB; a small value shows paging at work.
PAGE_SIZE = int(os.environ.get("PAGE_SIZE", "0")) or None
HISTORY = 20  # messages a newcomer gets when it has seen none
NICKNAME = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
#: A connection answers 410 (GoneException) until its `$connect` returns, and `$connect` may
#: run up to 29 s (API Gateway's integration timeout): a row younger than this that answers
#: 410 may be a member still joining, not a stale one.
JOINING_SECONDS = 30

dynamodb = boto3.resource("dynamodb")
connections = dynamodb.Table(os.environ.get("CONNECTIONS_TABLE", "chat_connections"))
messages = dynamodb.Table(os.environ.get("MESSAGES_TABLE", "chat_messages"))


#: @connections clients by endpoint, kept while this execution environment lives: Lambda's best
#: practices reuse SDK clients across invocations (docs/aws-behaviour.md §4.3a).
management_apis = {}


def management_api(event):
    """The @connections client for this API and stage (from the event, the AWS way)."""
    ctx = event["requestContext"]
    endpoint = f"https://{ctx['domainName']}/{ctx['stage']}"
    if endpoint not in management_apis:
        management_apis[endpoint] = boto3.client("apigatewaymanagementapi",
                                                 endpoint_url=endpoint)
    return management_apis[endpoint]


def pages(read, **request):
    """Every item of a paginated `scan` or `query`: follow LastEvaluatedKey to the end."""
    if PAGE_SIZE:
        request["Limit"] = PAGE_SIZE
    count = 0
    while True:
        page = read(**request)
        count += 1
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            if count > 1:
                print(f"{read.__name__}: {count} pages")
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def members():
    """{connectionId: nickname} of everyone in the room (a paginated scan)."""
    return {row["connectionId"]: row["nickname"]
            for row in pages(connections.scan, ProjectionExpression="connectionId, nickname",
                             ConsistentRead=True)}


def forget(connection_id):
    """Delete a stale connection's row, unless it may belong to a member still joining."""
    try:
        connections.delete_item(
            Key={"connectionId": connection_id},
            ConditionExpression="attribute_not_exists(joinedAt) OR joinedAt < :joining",
            ExpressionAttributeValues={":joining": int(time.time()) - JOINING_SECONDS})
        print(f"stale connection {connection_id}: deleting it")
    except connections.meta.client.exceptions.ConditionalCheckFailedException:
        print(f"connection {connection_id} is still joining: keeping it")


def send(api, connection_id, payload):
    """Post JSON to one connection; a gone connection is forgotten. Returns whether it arrived."""
    try:
        api.post_to_connection(ConnectionId=connection_id, Data=json.dumps(payload).encode())
        return True
    except api.exceptions.GoneException:  # before ClientError: it is a subclass
        forget(connection_id)
        return False


def alive(api, connection_id):
    """Whether a stored connection is still open; a gone one is forgotten (a lost $disconnect)."""
    try:
        api.get_connection(ConnectionId=connection_id)
        return True
    except api.exceptions.GoneException:
        forget(connection_id)
        return False


def store(payload):
    """Give `payload` the room's next message id, save it with a TTL, and return it."""
    counter = messages.update_item(
        Key={"room": ROOM, "id": 0}, UpdateExpression="ADD lastId :one",
        ExpressionAttributeValues={":one": 1}, ReturnValues="UPDATED_NEW")
    payload = {"id": int(counter["Attributes"]["lastId"]), "time": int(time.time()), **payload}
    messages.put_item(Item={"room": ROOM, **payload, "expiresAt": payload["time"] + TTL_SECONDS})
    return payload


def broadcast(api, payload, skip=(), people=None):
    """Post `payload` to every member (`people`, or a fresh scan) except those in `skip`."""
    people = members() if people is None else people
    return sum(send(api, cid, payload) for cid in people if cid not in skip)


def on_connect(event, context):
    """`$connect`: a nickname from `?nick=`, unique in the room; tell the others."""
    ctx = event["requestContext"]
    nick = (event.get("queryStringParameters") or {}).get("nick", "")
    if not NICKNAME.match(nick):
        return {"statusCode": 400, "body": "add ?nick=yourname (letters, digits, - or _)"}
    api, people = management_api(event), members()
    holder = next((cid for cid, name in people.items() if name == nick), None)
    if holder is not None and alive(api, holder):
        return {"statusCode": 409, "body": f"{nick} is already in the room"}
    now = int(time.time())
    connections.put_item(Item={"connectionId": ctx["connectionId"], "nickname": nick,
                               "joinedAt": now, "expiresAt": now + 3 * 3600})
    # Not to the newcomer: its socket opens only after this handler returns (410 now).
    people.pop(holder, None)  # gone (alive() deleted its row)
    broadcast(api, store({"type": "join", "nick": nick}), people=people,
              skip={ctx["connectionId"]})
    return {"statusCode": 200}


def on_disconnect(event, context):
    """`$disconnect` (best effort): forget the connection and tell the others."""
    cid = event["requestContext"]["connectionId"]
    row = connections.get_item(Key={"connectionId": cid}).get("Item")
    if row:
        connections.delete_item(Key={"connectionId": cid})
        broadcast(management_api(event), store({"type": "leave", "nick": row["nickname"]}))
    return {"statusCode": 200}


def on_sendmessage(event, context):
    """`sendmessage`: {"text": ..., "to"?: nickname}; stored, then pushed (sender included)."""
    cid = event["requestContext"]["connectionId"]
    body = json.loads(event["body"])
    api = management_api(event)
    row = connections.get_item(Key={"connectionId": cid}).get("Item")
    sender = row and row["nickname"]
    text = str(body.get("text", ""))
    if sender is None or not text:
        send(api, cid, {"type": "error", "error": "join with ?nick= and send a non-empty text"})
        return {"statusCode": 400}
    to = body.get("to")
    if to is None:
        payload = store({"type": "message", "from": sender, "text": text})
        # The members are read after the message is stored: one who joins in between is
        # either in this list or catches up (its `catchup` comes after its row is written).
        for member in members():
            send(api, member, payload)
        return {"statusCode": 200}
    targets = [m for m, nick in members().items() if nick == to]
    if not targets:
        send(api, cid, {"type": "error", "error": f"nobody called {to} is here"})
        return {"statusCode": 404}
    payload = store({"type": "message", "from": sender, "to": to, "text": text})
    for member in {*targets, cid}:  # the recipient, and the sender's own copy
        send(api, member, payload)
    return {"statusCode": 200}


def on_members(event, context):
    """`members`: the sorted nicknames of everyone here, to the one who asked."""
    send(management_api(event), event["requestContext"]["connectionId"],
         {"type": "members", "members": sorted(members().values())})
    return {"statusCode": 200}


def visible(item, nick, now):
    """Whether a stored message may go to `nick`: not expired, and public or theirs."""
    if item["id"] == 0 or item.get("expiresAt", now + 1) <= now:  # TTL deletes lazily
        return False
    return "to" not in item or nick in (item["to"], item["from"])


def on_catchup(event, context):
    """`catchup`: {"after": last id seen or null}; the messages since, oldest first."""
    cid = event["requestContext"]["connectionId"]
    after = json.loads(event["body"]).get("after")
    nick = members().get(cid)
    now = int(time.time())
    if after is None:  # a newcomer: the last HISTORY messages
        newest = messages.query(KeyConditionExpression=Key("room").eq(ROOM) & Key("id").gt(0),
                                ScanIndexForward=False, Limit=HISTORY)["Items"]
        items = sorted(newest, key=lambda item: item["id"])
    else:
        items = pages(messages.query,
                      KeyConditionExpression=Key("room").eq(ROOM) & Key("id").gt(int(after)))
    api, sent = management_api(event), 0
    for item in items:
        if visible(item, nick, now):
            item = {k: int(v) if k in ("id", "time") else v
                    for k, v in item.items() if k not in ("room", "expiresAt")}
            sent += send(api, cid, item)
    print(f"caught {nick} up after {after}: {sent} message(s)")
    return {"statusCode": 200}


def on_default(event, context):
    """`$default` (two-way): anything else gets the list of actions."""
    return {"statusCode": 200, "body": json.dumps({
        "type": "help", "actions": ["sendmessage", "members", "catchup"],
        "example": {"action": "sendmessage", "text": "hello", "to": "optional nickname"}})}
