"""forecasting-service: on order_created, records that the order went into the forecast.

EventBridge may deliver the same event more than once; the first stamp wins (`if_not_exists`),
so a redelivery changes nothing.
"""

import json
import os
from datetime import UTC, datetime
from typing import Any

import boto3

SERVICE = "forecasting-service"
STAMP = "time_forecasting_service"
TABLE_NAME = os.environ["TABLE_NAME"]

# Created once per execution environment, reused by every invocation it serves.
dynamodb = boto3.client("dynamodb")


class BadEvent(ValueError):
    """The event does not name an order: retrying will not help, so it ends in the failure
    queue, where it can be inspected."""


def log(level: str, message: str, order_id: str | None, **fields: Any) -> None:
    """One JSON object a line, carrying the order ID, so one order can be followed across
    the five services' log groups."""
    print(json.dumps({"level": level, "service": SERVICE, "message": message,
                      "ID": order_id, **fields}))


def now() -> str:
    """ISO 8601 UTC with milliseconds and a Z: sorts as a string, shows sub-second order."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def order_id_of(event: Any) -> str:
    """The order's ID at detail.data.ID, or BadEvent naming what is missing."""
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        raise BadEvent("event has no 'detail' object: expected detail.data.ID")
    data = detail.get("data")
    if not isinstance(data, dict):
        raise BadEvent("event has no 'detail.data' object: expected detail.data.ID")
    order_id = data.get("ID")
    if not isinstance(order_id, str) or not order_id:
        raise BadEvent(f"event's detail.data.ID must be a non-empty string, got {order_id!r}")
    return order_id


def record(order_id: str) -> None:
    """Stamps this service's step; the first stamp wins, so a redelivery changes nothing."""
    dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"ID": {"S": order_id}},
        UpdateExpression="SET #stamp = if_not_exists(#stamp, :now)",
        ExpressionAttributeNames={"#stamp": STAMP},
        ExpressionAttributeValues={":now": {"S": now()}},
    )


def lambda_handler(event: Any, context: Any) -> None:
    try:
        order_id = order_id_of(event)
    except BadEvent as error:
        log("ERROR", "event rejected", None, error=str(error))
        raise
    record(order_id)
    log("INFO", "order added to the forecast", order_id)
