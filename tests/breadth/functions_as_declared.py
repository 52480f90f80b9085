"""Functions as templates declare them: a function whose code is inline (`Code.ZipFile`, so
Lambda's `index.py`) imports a module from a layer (an asset folder with `python/`), is
published as version 1 (`current_version`) behind an alias `live`, and the alias is what an
API integration and a rule target invoke. A second inline function names a handler its code
does not have."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_

from breadth.app import FUNCTIONS

STAGE = "functions"
ALIAS = "live"
SOURCE = "breadth.functions"
# Prints what it got, answers the API with what ran it: the layer's greeting, the version and
# the ARN it was invoked by.
INLINE = """
import json
import os
import sys

from breadth_greeting import GREETING


def handler(event, context):
    print("RECEIVED " + json.dumps(event, sort_keys=True))
    ran = {"greeting": GREETING, "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
           "context_version": context.function_version,
           "invoked_arn": context.invoked_function_arn, "python": sys.executable}
    return {"statusCode": 200, "body": json.dumps(ran)}
"""


def add(stack: cdk.Stack) -> None:
    layer = lambda_.LayerVersion(
        stack, "FunctionsLayer", code=lambda_.Code.from_asset(str(FUNCTIONS / "functions_layer")),
        compatible_runtimes=[lambda_.Runtime.PYTHON_3_12])
    inline = lambda_.Function(
        stack, "FunctionsInline", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
        code=lambda_.Code.from_inline(INLINE), layers=[layer], timeout=cdk.Duration.seconds(10))
    live = lambda_.Alias(stack, "FunctionsLive", alias_name=ALIAS,
                         version=inline.current_version)
    api = apigateway.RestApi(stack, "FunctionsApi",
                             deploy_options=apigateway.StageOptions(stage_name=STAGE))
    api.root.add_resource("live").add_method("GET", apigateway.LambdaIntegration(live))
    bus = events.EventBus(stack, "FunctionsBus")
    events.Rule(stack, "FunctionsRule", event_bus=bus,
                event_pattern=events.EventPattern(source=[SOURCE]),
                targets=[targets.LambdaFunction(live)])
    lambda_.Function(
        stack, "FunctionsNoHandler", runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.absent", code=lambda_.Code.from_inline("def handler(event, context):\n"
                                                              "    return event\n"))
