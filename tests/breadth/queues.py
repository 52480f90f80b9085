"""A queue in front of a slow consumer: an SQS event source mapping with batches, a filter and
partial batch failures, on a queue whose redrive policy sends a message that keeps failing to its
dead-letter queue after two receives."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs

from breadth.app import function

MAX_RECEIVES = 2


def add(stack: cdk.Stack) -> None:
    dead_letters = sqs.Queue(stack, "QueuesDeadLetters")
    work = sqs.Queue(stack, "QueuesWork", visibility_timeout=cdk.Duration.seconds(3),
                     dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters,
                                                           max_receive_count=MAX_RECEIVES))
    consumer = function(stack, "QueuesConsumer", "queues_consumer",
                        timeout=cdk.Duration.seconds(3))
    consumer.add_event_source(sources.SqsEventSource(
        work, batch_size=5, max_batching_window=cdk.Duration.seconds(1),
        report_batch_item_failures=True, max_concurrency=2,
        filters=[lambda_.FilterCriteria.filter({"body": {"kind": ["order"]}})]))
    cdk.CfnOutput(stack, "QueuesWorkUrl", value=work.queue_url)
