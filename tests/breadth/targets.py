"""Rule targets of every kind with their inputs: on a custom bus, one rule sends each matching
event to an echo function through an InputTransformer (JSON template) and another through an
InputPath, to a queue through a plain-text template, to a FIFO queue under a MessageGroupId, to a
second bus (whose own rule hands it to an echo function), and to a function that does not exist,
whose failure lands in the target's dead-letter queue."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs

from breadth.app import function

SOURCE = "breadth.targets"
PATTERN = events.EventPattern(source=[SOURCE], detail_type=["order placed"])
ABSENT_FUNCTION = "arn:aws:lambda:us-east-1:000000000000:function:breadth-targets-absent"
PLAIN_TEXT = "order <detail-id> from <source>"  # no quotes: plain text; keys as CDK names them


def add(stack: cdk.Stack) -> None:
    bus = events.EventBus(stack, "TargetsBus")
    other_bus = events.EventBus(stack, "TargetsOtherBus")
    dead_letters = sqs.Queue(stack, "TargetsDeadLetters")
    text_queue = sqs.Queue(stack, "TargetsTextQueue")
    fifo_queue = sqs.Queue(stack, "TargetsFifoQueue", fifo=True,
                           content_based_deduplication=True)
    order_id = events.EventField.from_path("$.detail.id")
    rule = events.Rule(stack, "TargetsRule", event_bus=bus, event_pattern=PATTERN, targets=[
        targets.LambdaFunction(
            function(stack, "TargetsTransformEcho", "echo"),
            event=events.RuleTargetInput.from_object({
                "order": order_id, "rule": "<aws.events.rule-name>",
                "summary": f"order {order_id} placed"})),
        targets.LambdaFunction(function(stack, "TargetsPathEcho", "echo"),
                               event=events.RuleTargetInput.from_event_path("$.detail")),
        targets.SqsQueue(text_queue, message=events.RuleTargetInput.from_text(
            f"order {order_id} from {events.EventField.source}")),
    ])
    # A rule has at most five targets: the other kinds hang on a second rule.
    events.Rule(stack, "TargetsKindsRule", event_bus=bus, event_pattern=PATTERN, targets=[
        targets.SqsQueue(fifo_queue, message_group_id="breadth-orders"),
        targets.EventBus(other_bus),
        targets.LambdaFunction(
            lambda_.Function.from_function_arn(stack, "TargetsAbsent", ABSENT_FUNCTION),
            dead_letter_queue=dead_letters, retry_attempts=0),
    ])
    # CDK writes every text template as a JSON string; AWS also takes plain text.
    rule.node.default_child.add_property_override(  # type: ignore[union-attr]
        "Targets.2.InputTransformer.InputTemplate", PLAIN_TEXT)
    events.Rule(stack, "TargetsOtherRule", event_bus=other_bus, event_pattern=PATTERN,
                targets=[targets.LambdaFunction(function(stack, "TargetsCrossEcho", "echo"))])
