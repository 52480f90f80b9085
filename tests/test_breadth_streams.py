"""The outbox pattern end to end: boto3 writes items through the sandbox's endpoint, the table's
stream feeds the consumer through Lambda's DynamoDB event source mapping, in order per item, a
filter drops what it does not match, and a poison record is isolated by bisection and, once its
retry is spent, lands in the on-failure queue with its batch info."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest
from breadth_sandbox import breadth  # noqa: F401
from sandbox_process import SandboxProcess, wait_for

pytestmark = pytest.mark.slow


def handled(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    prefix = "[StreamsConsumer] HANDLED "
    return [json.loads(line.removeprefix(prefix)) for line in list(sandbox.lines)
            if line.startswith(prefix)]


def test_the_stream_feeds_its_consumer_in_order_and_sends_the_poison_record_on(
        breadth: SandboxProcess) -> None:  # noqa: F811
    ddb = breadth.client("dynamodb")
    (table,) = [t for t in ddb.list_tables()["TableNames"] if "StreamsOutbox" in t]
    for n in range(3):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"order-{n}"}, "v": {"N": "1"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "order-bad"}, "poison": {"BOOL": True}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "note-1"}, "v": {"N": "1"}})
    for n in range(3):
        ddb.update_item(TableName=table, Key={"pk": {"S": f"order-{n}"}},
                        UpdateExpression="SET v = :v", ExpressionAttributeValues={
                            ":v": {"N": "2"}})
    ddb.delete_item(TableName=table, Key={"pk": {"S": "order-0"}})

    records = wait_for(lambda: (h := handled(breadth)) and len(h) >= 7 and h, 60,
                       "the seven records of the good order items handled")
    per_item: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for record in records:
        new = record["dynamodb"].get("NewImage", {}).get("v", {}).get("N")
        per_item[record["dynamodb"]["Keys"]["pk"]["S"]].append((record["eventName"], new))
    assert dict(per_item) == {
        "order-0": [("INSERT", "1"), ("MODIFY", "2"), ("REMOVE", None)],
        "order-1": [("INSERT", "1"), ("MODIFY", "2")],
        "order-2": [("INSERT", "1"), ("MODIFY", "2")],
    }, "each item's records once, in order; the note filtered out, the poison not handled"
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == sorted(numbers)
    first = records[0]
    assert (first["eventSource"], first["eventVersion"]) == ("aws:dynamodb", "1.1")
    assert first["awsRegion"] == first["eventSourceARN"].split(":")[3] != "ddblocal"
    assert first["eventSourceARN"].endswith(f":table/{table}/stream/1970-01-01T00:00:00.000")
    assert first["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    modify = next(r for r in records if r["eventName"] == "MODIFY")
    assert modify["dynamodb"]["OldImage"]["v"] == {"N": "1"}

    sqs = breadth.client("sqs")
    (failures,) = [u for u in sqs.list_queues()["QueueUrls"] if "StreamsFailures" in u]
    (message,) = wait_for(lambda: sqs.receive_message(QueueUrl=failures, WaitTimeSeconds=1)
                          .get("Messages"), 60, "the poison record's on-failure message")
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2  # the try and one retry
    assert record["responseContext"]["functionError"] == "Unhandled"
    info = record["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1, "bisection isolated the poison record"
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert info["streamArn"] == first["eventSourceARN"]
    handled_numbers = {r["dynamodb"]["SequenceNumber"] for r in records}
    assert info["startSequenceNumber"] not in handled_numbers


def test_the_streams_api_is_served_on_the_endpoint(breadth: SandboxProcess) -> None:  # noqa: F811
    """A user reads a table's stream through AWS_ENDPOINT_URL, as with DynamoDB itself."""
    dynamodb = breadth.client("dynamodb")
    (table,) = [t for t in dynamodb.list_tables()["TableNames"] if "Streams" in t]
    stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = breadth.client("dynamodbstreams")
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    assert shards, "the stream has a shard"
