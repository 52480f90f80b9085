"""fulfilment-service: on order_created, records the fulfilment, then publishes
fulfilment_completed with the same metadata and data it received.

If the publish fails, the invocation fails, so Lambda retries it. The first stamp wins
(`if_not_exists`), so a retry or a redelivery changes nothing in the table; it may publish
fulfilment_completed again, which logistic-service's own first-stamp-wins makes harmless.
"""

import json
import os
from datetime import UTC, datetime
from typing import Any

import boto3

SERVICE = "fulfilment-service"
STAMP = "time_fulfilment_service"
TABLE_NAME = os.environ["TABLE_NAME"]
EVENTBUS_NAME = os.environ["EVENTBUS_NAME"]

# Created once per execution environment, reused by every invocation it serves.
dynamodb = boto3.client("dynamodb")
events = boto3.client("events")


class BadEvent(ValueError):
    """The event does not name an order: retrying will not help, so it ends in the failure
    queue, where it can be inspected."""


class PublishRejected(RuntimeError):
    """The bus answered but did not accept the event (FailedEntryCount > 0)."""


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


def publish(detail: dict[str, Any]) -> None:
    """Puts fulfilment_completed on the order bus, passing on what order_created carried."""
    passed_on = {key: detail[key] for key in ("metadata", "data") if key in detail}
    response = events.put_events(Entries=[{
        "EventBusName": EVENTBUS_NAME,
        "Source": "fulfilment_service",
        "DetailType": "fulfilment_completed",
        "Detail": json.dumps(passed_on),
    }])
    if response["FailedEntryCount"] > 0:
        entry = response["Entries"][0]
        raise PublishRejected(f"fulfilment_completed rejected by the bus: "
                              f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")


def lambda_handler(event: Any, context: Any) -> None:
    try:
        order_id = order_id_of(event)
    except BadEvent as error:
        log("ERROR", "event rejected", None, error=str(error))
        raise
    record(order_id)
    try:
        publish(event["detail"])
    except Exception as error:
        log("ERROR", "fulfilment_completed not published", order_id,
            error=f"{type(error).__name__}: {error}")
        raise
    log("INFO", "order fulfilled", order_id)
