"""Lambda's asynchronous routes, and SNS topics as targets and destinations: one event on the
part's bus is handed by a rule to four functions (invoked asynchronously) and to a topic.

- `DestinationsSucceeds` succeeds: its record goes OnSuccess to a bus, whose rule hands the
  "Lambda Function Invocation Result - Success" event to an echo function.
- `DestinationsFails` always raises: after one retry its record goes OnFailure to a topic, which
  a queue (notification JSON) and an echo function (SNS event) subscribe to, and the event goes
  to its DeadLetterConfig queue with Lambda's attributes.
- `DestinationsFailsToLambda` always raises, no retry: its record goes OnFailure to an echo
  function.
- `DestinationsThrottled` reserves 0 concurrent executions: never runs; its record goes OnFailure
  to a queue at once (condition ZeroReservedConcurrency).
- The rule's fifth target is a topic whose queue subscription takes raw messages.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs

from breadth.app import function

SOURCE = "breadth.destinations"
DETAIL_TYPE = "job started"


def add(stack: cdk.Stack) -> None:
    bus = events.EventBus(stack, "DestinationsBus")
    results = events.EventBus(stack, "DestinationsResults")
    events.Rule(stack, "DestinationsResultsRule", event_bus=results,
                event_pattern=events.EventPattern(source=["lambda"]),
                targets=[targets.LambdaFunction(
                    function(stack, "DestinationsResultEcho", "echo"))])

    failures = sns.Topic(stack, "DestinationsFailures")
    failures.add_subscription(subscriptions.SqsSubscription(
        sqs.Queue(stack, "DestinationsTopicQueue")))
    failures.add_subscription(subscriptions.LambdaSubscription(
        function(stack, "DestinationsTopicEcho", "echo")))
    notices = sns.Topic(stack, "DestinationsNotices")
    notices.add_subscription(subscriptions.SqsSubscription(
        sqs.Queue(stack, "DestinationsRawQueue"), raw_message_delivery=True))

    succeeds = function(stack, "DestinationsSucceeds", "destinations_succeeds",
                        on_success=destinations.EventBridgeDestination(results),
                        retry_attempts=0)
    fails = function(stack, "DestinationsFails", "destinations_fails",
                     on_failure=destinations.SnsDestination(failures), retry_attempts=1,
                     max_event_age=cdk.Duration.minutes(5),
                     dead_letter_queue=sqs.Queue(stack, "DestinationsDeadLetters"))
    fails_to_lambda = function(
        stack, "DestinationsFailsToLambda", "destinations_fails", retry_attempts=0,
        on_failure=destinations.LambdaDestination(
            function(stack, "DestinationsFailureEcho", "echo")))
    throttled = function(
        stack, "DestinationsThrottled", "destinations_succeeds", retry_attempts=0,
        reserved_concurrent_executions=0,
        on_failure=destinations.SqsDestination(sqs.Queue(stack, "DestinationsZeroQueue")))

    events.Rule(stack, "DestinationsRule", event_bus=bus,
                event_pattern=events.EventPattern(source=[SOURCE], detail_type=[DETAIL_TYPE]),
                targets=[targets.LambdaFunction(succeeds), targets.LambdaFunction(fails),
                         targets.LambdaFunction(fails_to_lambda),
                         targets.LambdaFunction(throttled), targets.SnsTopic(notices)])
