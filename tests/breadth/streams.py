"""The outbox pattern: a table with a NEW_AND_OLD_IMAGES stream, and a consumer reading it
through a DynamoDB event source mapping with a filter (order items only), bisection on error, a
retry limit and an SQS queue as on-failure destination."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs

from breadth.app import function

BATCH_SIZE = 10
RETRIES = 1


def add(stack: cdk.Stack) -> None:
    outbox = dynamodb.Table(
        stack, "StreamsOutbox",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
        removal_policy=cdk.RemovalPolicy.DESTROY)
    failures = sqs.Queue(stack, "StreamsFailures")
    consumer = function(stack, "StreamsConsumer", "streams_consumer",
                        timeout=cdk.Duration.seconds(5))
    consumer.add_event_source(sources.DynamoEventSource(
        outbox, starting_position=lambda_.StartingPosition.TRIM_HORIZON,
        batch_size=BATCH_SIZE, max_batching_window=cdk.Duration.seconds(1),
        bisect_batch_on_error=True, retry_attempts=RETRIES,
        on_failure=sources.SqsDlq(failures),
        filters=[lambda_.FilterCriteria.filter(
            {"dynamodb": {"Keys": {"pk": {"S": lambda_.FilterRule.begins_with("order")}}}})]))
