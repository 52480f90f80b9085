"""A tiny CDK app of its own in a temporary folder, as another project holding the sandbox
would have: a function behind a REST API writing to a table and putting an event that a rule
sends to a queue. `EXTRA_RULE = True` in its app.py adds a second rule and queue (the change a
watch test makes), `VERSION` in its handler is what the function answers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from conftest import ROOT

APP = '''import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs

EXTRA_RULE = False

app = cdk.App()
stack = cdk.Stack(app, "Tiny")
table = ddb.Table(stack, "Items", partition_key=ddb.Attribute(
    name="id", type=ddb.AttributeType.STRING), removal_policy=cdk.RemovalPolicy.DESTROY)
bus = events.EventBus(stack, "Bus")
function = lambda_.Function(
    stack, "Hello", runtime=lambda_.Runtime.PYTHON_3_11, handler="index.handler",
    code=lambda_.Code.from_asset("handler"),
    environment={"TABLE": table.table_name, "BUS": bus.event_bus_name})
table.grant_read_write_data(function)
bus.grant_put_events_to(function)
apigw.LambdaRestApi(stack, "Api", handler=function)
pattern = events.EventPattern(source=["tiny"])
events.Rule(stack, "ToKept", event_bus=bus, event_pattern=pattern,
            targets=[targets.SqsQueue(sqs.Queue(stack, "Kept"))])
if EXTRA_RULE:
    events.Rule(stack, "ToAdded", event_bus=bus, event_pattern=pattern,
                targets=[targets.SqsQueue(sqs.Queue(stack, "Added"))])
app.synth()
'''

HANDLER = '''import json
import os

import boto3

VERSION = "v1"


def handler(event, context):
    item = context.aws_request_id
    boto3.client("dynamodb").put_item(TableName=os.environ["TABLE"], Item={
        "id": {"S": item}, "version": {"S": VERSION}})
    boto3.client("events").put_events(Entries=[{
        "Source": "tiny", "DetailType": "item", "Detail": json.dumps({"id": item}),
        "EventBusName": os.environ["BUS"]}])
    return {"statusCode": 200, "body": json.dumps({"id": item, "version": VERSION})}
'''

CDK_JSON = '''{
  "app": "python3 app.py",
  "watch": {"include": ["**"], "exclude": ["README.md", "cdk*.json", "**/__pycache__", "tests"]}
}
'''


def make_project(folder: Path) -> Path:
    (folder / "handler").mkdir(parents=True)
    (folder / "app.py").write_text(APP)
    (folder / "cdk.json").write_text(CDK_JSON)
    (folder / "handler" / "index.py").write_text(HANDLER)
    return folder


def project_path() -> str:
    """This repository's CDK CLI and a Python with aws-cdk-lib first on the PATH, so the
    project's `cdk synth` needs no `npm install` of its own."""
    return os.pathsep.join([str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent),
                            os.environ["PATH"]])
