"""An app unlike ours, for the console's test: hotel stays. Nothing in it looks like the order
choreography, so the console can only show it through what it knows of any app.

- `POST /stays/{hotel}` (body `{"night": ..., "guest": ...}`) runs Booker: it writes the stay
  into `Stays` (partition key `hotel`, sort key `night`: many items share a hotel) and puts
  `stay.booked` on the `Bookings` bus;
- a rule of `Bookings` runs Auditor, which puts `stay.audited` on a second bus, `Audit`;
- a rule of `Audit` runs Bookkeeper, which writes into `Ledger` (partition `guest`, sort `stay`).

So one request's trace crosses two buses and three functions, and each table shows its items
only under their full key. The functions are inline code (boto3 as Lambda's runtime has it).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_

STACK_NAME = "Hotels"

BOOKER = '''
import json, os, boto3
def handler(event, context):
    stay = json.loads(event["body"] or "{}")
    item = {"hotel": event["pathParameters"]["hotel"], "night": stay["night"],
            "guest": stay["guest"]}
    boto3.client("dynamodb").put_item(TableName=os.environ["STAYS"],
                                      Item={k: {"S": v} for k, v in item.items()})
    boto3.client("events").put_events(Entries=[{"EventBusName": os.environ["BUS"],
        "Source": "hotels.booker", "DetailType": "stay.booked", "Detail": json.dumps(item)}])
    print("booked", json.dumps(item))
    return {"statusCode": 201, "body": json.dumps(item)}
'''
AUDITOR = '''
import json, os, boto3
def handler(event, context):
    boto3.client("events").put_events(Entries=[{"EventBusName": os.environ["BUS"],
        "Source": "hotels.auditor", "DetailType": "stay.audited",
        "Detail": json.dumps(event["detail"])}])
    print("audited", event["detail"]["hotel"], event["detail"]["night"])
'''
BOOKKEEPER = '''
import os, boto3
def handler(event, context):
    stay = event["detail"]
    boto3.client("dynamodb").put_item(TableName=os.environ["LEDGER"], Item={
        "guest": {"S": stay["guest"]}, "stay": {"S": stay["hotel"] + "#" + stay["night"]}})
    print("entered", stay["guest"])
'''


def function(stack: cdk.Stack, name: str, source: str, **environment: str) -> lambda_.Function:
    return lambda_.Function(stack, name, runtime=lambda_.Runtime.PYTHON_3_12,
                            handler="index.handler", code=lambda_.Code.from_inline(source),
                            environment=environment, timeout=cdk.Duration.seconds(10))


def table(stack: cdk.Stack, name: str, partition: str, sort: str) -> dynamodb.Table:
    string = dynamodb.AttributeType.STRING
    return dynamodb.Table(stack, name, table_name=name,
                          partition_key=dynamodb.Attribute(name=partition, type=string),
                          sort_key=dynamodb.Attribute(name=sort, type=string),
                          removal_policy=cdk.RemovalPolicy.DESTROY)


def build(app: cdk.App) -> cdk.Stack:
    stack = cdk.Stack(app, STACK_NAME)
    stays = table(stack, "Stays", "hotel", "night")
    ledger_table = table(stack, "Ledger", "guest", "stay")
    bookings = events.EventBus(stack, "Bookings", event_bus_name="Bookings")
    audit = events.EventBus(stack, "Audit", event_bus_name="Audit")

    booker = function(stack, "Booker", BOOKER, STAYS=stays.table_name,
                      BUS=bookings.event_bus_name)
    auditor = function(stack, "Auditor", AUDITOR, BUS=audit.event_bus_name)
    bookkeeper = function(stack, "Bookkeeper", BOOKKEEPER, LEDGER=ledger_table.table_name)
    stays.grant_write_data(booker)
    ledger_table.grant_write_data(bookkeeper)
    bookings.grant_put_events_to(booker)
    audit.grant_put_events_to(auditor)

    events.Rule(stack, "Booked", event_bus=bookings, targets=[targets.LambdaFunction(auditor)],
                event_pattern=events.EventPattern(source=["hotels.booker"]))
    events.Rule(stack, "Audited", event_bus=audit, targets=[targets.LambdaFunction(bookkeeper)],
                event_pattern=events.EventPattern(detail_type=["stay.audited"]))

    api = apigateway.RestApi(stack, "HotelsApi")
    api.root.add_resource("stays").add_resource("{hotel}").add_method(
        "POST", apigateway.LambdaIntegration(booker))
    return stack
