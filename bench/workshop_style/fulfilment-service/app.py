"""fulfilment-service as the original workshop wrote it: the AWS clients are made inside the
handler, so every invocation pays for them again."""

import datetime
import json
import logging
import os

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def lambda_handler(event, context):
    logger.info(event)  # as the original: the whole event, at every call
    dynamodb = boto3.resource("dynamodb")
    table = dynamodb.Table(os.environ["TABLE_NAME"])
    events = boto3.client("events")
    order_id = event["detail"]["data"]["ID"]
    now = datetime.datetime.now().strftime("%m-%d-%Y %H:%M:%S")
    table.update_item(
        Key={"ID": order_id},
        UpdateExpression=("SET time_fulfilment_service = "
                          "if_not_exists(time_fulfilment_service, :now)"),
        ExpressionAttributeValues={":now": now},
    )
    response = events.put_events(Entries=[{
        "EventBusName": os.environ["EVENTBUS_NAME"],
        "Source": "fulfilment_service",
        "DetailType": "fulfilment_completed",
        "Detail": json.dumps({"metadata": event["detail"]["metadata"],
                              "data": event["detail"]["data"]}),
    }])
    if response["FailedEntryCount"] > 0:
        raise RuntimeError(f"fulfilment_completed rejected: {response['Entries']}")
