"""order-service: GET /order records a new order, then announces it with one event.

Recording comes first: an order that could not be recorded must never reach the other services.
The answer is `order_created` only when both the record and the publish succeeded.
"""

import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3

SERVICE = "order-service"
STAMP = "time_order_service"
TABLE_NAME = os.environ["TABLE_NAME"]
EVENTBUS_NAME = os.environ["EVENTBUS_NAME"]

# Created once per execution environment, reused by every invocation it serves.
dynamodb = boto3.client("dynamodb")
events = boto3.client("events")


class PublishRejected(RuntimeError):
    """The bus answered but did not accept the event (FailedEntryCount > 0)."""


def log(level: str, message: str, order_id: str, **fields: Any) -> None:
    """One JSON object a line, carrying the order ID, so one order can be followed across
    the five services' log groups."""
    print(json.dumps({"level": level, "service": SERVICE, "message": message,
                      "ID": order_id, **fields}))


def now() -> str:
    """ISO 8601 UTC with milliseconds and a Z: sorts as a string, shows sub-second order."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record(order_id: str) -> None:
    """Stamps this service's step; the first stamp wins, so a retry changes nothing."""
    dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"ID": {"S": order_id}},
        UpdateExpression="SET #stamp = if_not_exists(#stamp, :now)",
        ExpressionAttributeNames={"#stamp": STAMP},
        ExpressionAttributeValues={":now": {"S": now()}},
    )


def publish(order_id: str) -> None:
    """Puts order_created on the order bus; a rejected entry is a failure, not a success."""
    response = events.put_events(Entries=[{
        "EventBusName": EVENTBUS_NAME,
        "Source": "order_service",
        "DetailType": "order_created",
        "Detail": json.dumps({"metadata": {"service": "demo-eventbridge"},
                              "data": {"ID": order_id}}),
    }])
    if response["FailedEntryCount"] > 0:
        entry = response["Entries"][0]
        raise PublishRejected(f"order_created rejected by the bus: "
                              f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")


def answer(status_code: int, body: dict[str, str]) -> dict[str, Any]:
    """A Lambda proxy integration answer."""
    return {"statusCode": status_code,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body)}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    order_id = str(uuid.uuid4())
    try:
        record(order_id)
        publish(order_id)
    except Exception as error:  # any failure, expected or not, is a failed order for the caller
        log("ERROR", "order creation failed", order_id,
            error=f"{type(error).__name__}: {error}")
        return answer(500, {"status": "order_creation_failed"})
    log("INFO", "order created", order_id)
    return answer(200, {"status": "order_created", "ID": order_id})
