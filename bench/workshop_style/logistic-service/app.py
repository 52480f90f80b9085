"""logistic-service as the original workshop wrote it: the AWS client is made inside the handler,
so every invocation pays for it again."""

import datetime
import logging
import os

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def lambda_handler(event, context):
    logger.info(event)  # as the original: the whole event, at every call
    dynamodb = boto3.resource("dynamodb")
    table = dynamodb.Table(os.environ["TABLE_NAME"])
    order_id = event["detail"]["data"]["ID"]
    now = datetime.datetime.now().strftime("%m-%d-%Y %H:%M:%S")
    table.update_item(
        Key={"ID": order_id},
        UpdateExpression=("SET time_logistic_service = "
                          "if_not_exists(time_logistic_service, :now)"),
        ExpressionAttributeValues={":now": now},
    )
