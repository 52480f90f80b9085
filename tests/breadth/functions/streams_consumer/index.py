"""Consumes a batch of DynamoDB stream records, the outbox pattern's relay: fails the whole
batch when a record's new image carries `poison`, otherwise prints each record it handled as
`HANDLED <json>`, in the order it got them."""

import json


def handler(event, context):
    records = event["Records"]
    if any("poison" in (r["dynamodb"].get("NewImage") or {}) for r in records):
        raise ValueError("a poison record in the batch")
    for record in records:
        print("HANDLED " + json.dumps(record, sort_keys=True))
