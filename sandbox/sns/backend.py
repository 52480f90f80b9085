"""SNS topics from the template and their subscriptions, as far as the sandbox needs them yet:
topics as targets (of a rule, of a Lambda destination or dead-letter queue) that fan a message
out to their SQS queues and Lambda functions. (The Publish API comes later.)

A topic is a sink in `Targets`: what it receives becomes one `Notification`, delivered to every
subscription in the same `Writes` as the step that handed it over, so the fan-out is all or
nothing. A queue gets the notification JSON (or the bare message with `RawMessageDelivery`); a
function is invoked asynchronously (a Lambda job, through the function's own sink), from then on
Lambda's to retry. A subscription whose endpoint refuses the message (a queue or function the
sandbox does not run, a payload over Lambda's limit) sends it to the subscription's
`RedrivePolicy` dead-letter queue, else it is dropped with its reason in the history.

Subscriptions come from `AWS::SNS::Subscription` resources and a topic's `Subscription`
property. What SNS refuses at subscription time stops the start: an unknown protocol, raw
delivery to a function, a FIFO topic with other than queue subscribers. Protocols the sandbox
does not deliver to (http, email, sms...) and filter policies are named at start: a filter
policy is not applied yet, so such a subscription gets every message.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.assembly import AssemblyError, Stack
from sandbox.core.delivery import Failure
from sandbox.core.history import DeadLetter
from sandbox.core.state import Writes
from sandbox.core.targets import Parcel, Targets
from sandbox.sns.envelopes import Notification, lambda_event, sqs_body, timestamp

TOPIC = "AWS::SNS::Topic"
SUBSCRIPTION = "AWS::SNS::Subscription"
PROTOCOLS = {"http", "https", "email", "email-json", "sms", "sqs", "application", "lambda",
             "firehose"}
DELIVERED = {"sqs", "lambda"}


@dataclass(frozen=True)
class Subscription:
    arn: str
    protocol: str
    endpoint: str
    raw: bool = False  # RawMessageDelivery
    dead_letter_arn: str | None = None  # RedrivePolicy.deadLetterTargetArn


@dataclass
class Topic:
    arn: str
    fifo: bool
    subscriptions: list[Subscription] = field(default_factory=list)


def _true(value: Any) -> bool:
    return value in (True, "true", "True")


def subscription_arn(topic_arn: str, stack: Stack, key: str) -> str:
    """Stable across restarts: the same subscription keeps its ARN."""
    return f"{topic_arn}:{uuid.uuid5(uuid.NAMESPACE_URL, f'{stack.name}/{key}')}"


class Topics:
    def __init__(self, stacks: list[Stack], targets: Targets) -> None:
        self.topics: dict[str, Topic] = {}  # ARN -> topic
        self.notes: list[str] = []  # what is not delivered as on AWS, for the start summary
        for stack in stacks:
            for resource in stack.of_type(TOPIC):
                arn = stack.ref(resource.logical_id)
                props = stack.resolve(resource.properties,
                                      f"Resources.{resource.logical_id}.Properties")
                self.topics[arn] = Topic(arn, _true(props.get("FifoTopic")))
                for i, inline in enumerate(props.get("Subscription") or []):
                    self._subscribe(stack, resource.logical_id, f"Subscription[{i}].", arn,
                                    inline, subscription_arn(arn, stack, f"{arn}/{i}"))
        for stack in stacks:
            for resource in stack.of_type(SUBSCRIPTION):
                props = stack.resolve(resource.properties,
                                      f"Resources.{resource.logical_id}.Properties")
                topic_arn = props.get("TopicArn", "")
                self._subscribe(stack, resource.logical_id, "", topic_arn, props,
                                subscription_arn(topic_arn, stack, resource.logical_id))
        for arn, topic in self.topics.items():
            targets.register(arn, _TopicSink(topic, targets))

    def _subscribe(self, stack: Stack, logical_id: str, prefix: str, topic_arn: str,
                   props: dict[str, Any], arn: str) -> None:
        def error(prop: str, message: str) -> AssemblyError:
            return AssemblyError(f"{stack.template_file}: Resources.{logical_id}.Properties."
                                 f"{prefix}{prop}: {message}")

        protocol = str(props.get("Protocol", "")).lower()
        if protocol not in PROTOCOLS:
            raise error("Protocol", f"Invalid parameter: Protocol {protocol!r} (SNS delivers "
                                    f"over {', '.join(sorted(PROTOCOLS))})")
        raw = _true(props.get("RawMessageDelivery"))
        if raw and protocol not in ("sqs", "http", "https", "firehose"):
            raise error("RawMessageDelivery", "Invalid parameter: Attributes Reason: raw "
                                              f"message delivery is not supported for {protocol}")
        topic = self.topics.get(topic_arn)
        label = f"{stack.name}/{logical_id}"
        if topic is None:
            self.notes.append(f"{label}: topic {topic_arn} is not in the assembly")
            return
        if topic.fifo and protocol != "sqs":
            raise error("Protocol", f"Invalid parameter: a FIFO topic delivers to SQS queues "
                                    f"only, not over {protocol}")
        if protocol not in DELIVERED:
            self.notes.append(f"{label}: {protocol} subscription not delivered")
            return
        if props.get("FilterPolicy"):
            self.notes.append(f"{label}: filter policy not applied yet (gets every message)")
        redrive = props.get("RedrivePolicy") or {}
        if isinstance(redrive, str):
            redrive = json.loads(redrive)
        topic.subscriptions.append(Subscription(arn, protocol, str(props.get("Endpoint", "")),
                                                raw, redrive.get("deadLetterTargetArn")))


class _TopicSink:
    """A topic as a target: one notification, fanned out to each subscription."""

    def __init__(self, topic: Topic, targets: Targets) -> None:
        self.topic = topic
        self.targets = targets

    def accept(self, parcel: Parcel) -> Writes:
        if self.topic.fifo and not parcel.group_id:
            raise Failure("InvalidParameterException", "Invalid parameter: The MessageGroupId "
                          f"parameter is required for FIFO topics ({self.topic.arn})",
                          retryable=False)
        notification = Notification(
            message_id=str(uuid.uuid4()), topic_arn=self.topic.arn, message=parcel.body,
            timestamp=timestamp(datetime.now(UTC)), subject=parcel.context.get("subject"),
            attributes=dict(parcel.attributes),
            sequence_number=f"{time.time_ns():020d}" if self.topic.fifo else None)
        writes = Writes()
        for subscription in self.topic.subscriptions:
            writes += self._deliver(subscription, notification, parcel)
        return writes

    def _deliver(self, subscription: Subscription, notification: Notification,
                 parcel: Parcel) -> Writes:
        if subscription.protocol == "lambda":
            body = json.dumps(lambda_event(notification, subscription.arn))
            attributes: dict[str, str] = {}
        elif subscription.raw:
            body, attributes = notification.message, notification.attributes
        else:
            body, attributes = sqs_body(notification, subscription.arn), {}
        out = Parcel(body, dict(parcel.context), group_id=parcel.group_id, attributes=attributes,
                     via="topic")
        try:
            return self.targets.deliver(subscription.endpoint, out)
        except Failure as failure:
            return self._undelivered(subscription, out, failure)

    def _undelivered(self, subscription: Subscription, parcel: Parcel,
                     failure: Failure) -> Writes:
        reason = {"ERROR_CODE": failure.code, "ERROR_MESSAGE": failure.message,
                  "SUBSCRIPTION_ARN": subscription.arn}
        queue = subscription.dead_letter_arn
        writes = Writes()
        if queue:
            try:
                writes = self.targets.deliver(queue, parcel)
            except Failure:
                queue = None  # the dead-letter queue names nothing: dropped, as on AWS
        writes.history.append(DeadLetter(queue, "sns", event_id=parcel.context.get("event_id"),
                                         attributes=reason, rule=parcel.context.get("rule"),
                                         target_id=parcel.context.get("target_id")))
        return writes
