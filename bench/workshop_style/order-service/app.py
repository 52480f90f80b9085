"""order-service as the original workshop wrote it: the AWS clients are made inside the handler,
so every invocation pays for them again. The bench runs it beside ours to measure that cost."""

import datetime
import json
import logging
import os
import uuid

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def lambda_handler(event, context):
    logger.info(event)  # as the original: the whole event, at every call
    dynamodb = boto3.resource("dynamodb")
    table = dynamodb.Table(os.environ["TABLE_NAME"])
    events = boto3.client("events")
    order_id = str(uuid.uuid4())
    now = datetime.datetime.now().strftime("%m-%d-%Y %H:%M:%S")
    table.update_item(
        Key={"ID": order_id},
        UpdateExpression="SET time_order_service = if_not_exists(time_order_service, :now)",
        ExpressionAttributeValues={":now": now},
    )
    response = events.put_events(Entries=[{
        "EventBusName": os.environ["EVENTBUS_NAME"],
        "Source": "order_service",
        "DetailType": "order_created",
        "Detail": json.dumps({"metadata": {"service": "demo-eventbridge"},
                              "data": {"ID": order_id}}),
    }])
    if response["FailedEntryCount"] > 0:
        return {"statusCode": 500, "body": json.dumps({"status": "order_creation_failed"})}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"status": "order_created", "ID": order_id})}
