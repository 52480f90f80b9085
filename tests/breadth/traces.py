"""A failing asynchronous invocation's trace: an event put on the part's bus is handed by a rule
to `TracesFails`, which always raises; Lambda retries it once, then sends the event to the
function's dead-letter queue and its record OnFailure to a queue (tests/test_traces_breadth.py
reads the trace: the retry, the dead letter and the destination, each with its reason)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs

from breadth.app import function

SOURCE = "breadth.traces"


def add(stack: cdk.Stack) -> None:
    fails = function(stack, "TracesFails", "destinations_fails", retry_attempts=1,
                     dead_letter_queue=sqs.Queue(stack, "TracesDeadLetters"),
                     on_failure=destinations.SqsDestination(sqs.Queue(stack, "TracesFailures")))
    events.Rule(stack, "TracesRule", event_bus=events.EventBus(stack, "TracesBus"),
                event_pattern=events.EventPattern(source=[SOURCE]),
                targets=[targets.LambdaFunction(fails)])
