"""moto's DynamoDB under a chat's workload: atomic requests, and bounded memory.

Concurrent ``ADD`` updates from many threads (as concurrent invocations make them) each count,
as AWS's atomic counters do. And it reproduces moto's leak (every ``Item`` ever built stays
in ``Item.instances_tracked``) and checks `helpers.gateway.moto_gaps.dynamodb` stops it: live
``Item`` objects stay within the table's size plus a small constant, however many operations run.
"""

from __future__ import annotations

import gc
import threading

import boto3
import pytest

from helpers.gateway import patches

ROWS = 20


def _live_items() -> int:
    from moto.dynamodb.models.dynamo_type import Item

    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, Item))


def _chat_traffic(ddb, operations: int) -> None:
    """What the demo chat does: store and forget connections, scan them for every message."""
    for i in range(operations):
        ddb.put_item(TableName="connections",
                     Item={"connectionId": {"S": f"c{i % ROWS}"}, "name": {"S": "x" * 100}})
        if i % 5 == 0:
            ddb.scan(TableName="connections", ProjectionExpression="connectionId")
        ddb.delete_item(TableName="connections",
                        Key={"connectionId": {"S": f"c{(i + ROWS // 2) % ROWS}"}})


@pytest.fixture
def ddb(aws):
    patches.install_moto_parts()
    client = boto3.client("dynamodb")
    client.create_table(
        TableName="connections",
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def test_dynamodb_items_do_not_accumulate(ddb):
    from moto.dynamodb.models.dynamo_type import Item

    _chat_traffic(ddb, 100)
    after_warm_up = _live_items()
    _chat_traffic(ddb, 400)  # 800 writes and 80 scans later (moto kept 1,000 more Items)
    assert _live_items() <= max(after_warm_up, ROWS) + 10
    assert Item.instances_tracked == []


def test_other_moto_models_are_still_tracked(aws):
    patches.install_moto_parts()
    boto3.client("sqs").create_queue(QueueName="still-tracked")
    from moto.sqs.models import Queue

    assert any(queue.name == "still-tracked" for queue in Queue.instances_tracked)


def test_concurrent_atomic_counter_updates_all_count(ddb):
    """Eight threads x 50 ``ADD n :one``: the counter ends at 400 and no two calls saw one value
    (without the lock, moto lost about 5% of them)."""
    seen: list[int] = []

    def add_fifty() -> None:
        client = boto3.client("dynamodb")
        for _ in range(50):
            answer = client.update_item(
                TableName="connections", Key={"connectionId": {"S": "counter"}},
                UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW")
            seen.append(int(answer["Attributes"]["n"]["N"]))

    threads = [threading.Thread(target=add_fifty) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == list(range(1, 401))
