"""A work queue under load and faults: an SQS event source mapping at Lambda's default batch size
(10) and five pollers, on a queue whose short visibility timeout (2 s) and redrive policy (to a
dead-letter queue after 2 receives) let the fault and load tests see redelivery and redrive in
seconds. The consumer reports the messages it fails as batch item failures and can be told to
hold a batch, so a test can kill its worker or the sandbox while the batch is in flight."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs

from breadth.app import function

MAX_RECEIVES = 2
VISIBILITY_S = 2


def add(stack: cdk.Stack) -> None:
    dead_letters = sqs.Queue(stack, "QueueLoadDeadLetters")
    work = sqs.Queue(stack, "QueueLoadWork", visibility_timeout=cdk.Duration.seconds(VISIBILITY_S),
                     dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters,
                                                           max_receive_count=MAX_RECEIVES))
    consumer = function(stack, "QueueLoadConsumer", "queue_load_consumer",
                        timeout=cdk.Duration.seconds(VISIBILITY_S))
    consumer.add_event_source(sources.SqsEventSource(
        work, batch_size=10, report_batch_item_failures=True, max_concurrency=5))
