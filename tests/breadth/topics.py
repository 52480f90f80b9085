"""SNS topics: a standard topic fanning out to a raw SQS subscriber filtered on an attribute, an
enveloped SQS subscriber filtered on the message body, and an echo function; a FIFO topic with
content-based deduplication delivering to a FIFO queue under the message's group."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs

from breadth.app import function


def add(stack: cdk.Stack) -> None:
    topic = sns.Topic(stack, "TopicsTopic")
    topic.add_subscription(subscriptions.SqsSubscription(
        sqs.Queue(stack, "TopicsRawQueue"), raw_message_delivery=True,
        filter_policy={"kind": sns.SubscriptionFilter.string_filter(allowlist=["big"])}))
    topic.add_subscription(subscriptions.SqsSubscription(
        sqs.Queue(stack, "TopicsBodyQueue"),
        filter_policy_with_message_body={"order": sns.FilterOrPolicy.policy({
            "total": sns.FilterOrPolicy.filter(
                sns.SubscriptionFilter.numeric_filter(greater_than=100))})}))
    topic.add_subscription(subscriptions.LambdaSubscription(
        function(stack, "TopicsEcho", "echo")))

    fifo_topic = sns.Topic(stack, "TopicsFifoTopic", fifo=True,
                           content_based_deduplication=True)
    fifo_topic.add_subscription(subscriptions.SqsSubscription(
        sqs.Queue(stack, "TopicsFifoQueue", fifo=True), raw_message_delivery=True))
