"""SNS: the template's topics and subscriptions, as targets of other services (a rule, a Lambda
destination or dead-letter queue) and through SNS's API (Publish, PublishBatch and the read
calls, served by `wire`), fanning each message out to their SQS queues and Lambda functions.

A topic is a sink in `Targets`: what it receives becomes one `Notification`, delivered to every
subscription whose filter policy it matches, in one `Writes`, so the fan-out is all or nothing. A
queue gets the notification JSON (or the bare message with `RawMessageDelivery`); a function is
invoked asynchronously (a Lambda job, through the function's own sink), from then on Lambda's to
retry. A subscription whose endpoint refuses the message (a queue or function the sandbox does
not run, a payload over Lambda's limit) sends it to the subscription's `RedrivePolicy`
dead-letter queue, else it is dropped with its reason in the history.

Subscriptions come from `AWS::SNS::Subscription` resources and a topic's `Subscription`
property. What SNS refuses at subscription time stops the start: an unknown protocol, raw
delivery to a function, a FIFO topic with other than queue subscribers, a FIFO queue on a
standard topic, a malformed filter policy (in SNS's words). Protocols the sandbox does not
deliver to (http, email, sms...) are named at start.

Publishing, from the SNS API reference ("Publish", "PublishBatch") and developer guide:
- A message and its attributes are at most 256 KiB (262,144 bytes, the default
  `MaximumMessageSize`), else `InvalidParameter` "Invalid parameter: Message too long"; a batch
  holds 1 to 10 entries with distinct ids, at most 256 KiB in all.
- Message attributes are String, Number or Binary, optionally with a `.label` (String.Array is
  one); a bad one is `ParameterValueInvalid`.
- `MessageStructure=json` carries one message per protocol, "default" required.
- A FIFO topic needs a `MessageGroupId`, and a `MessageDeduplicationId` unless
  `ContentBasedDeduplication` (the body's SHA-256); a repeat within 5 minutes is accepted and
  not delivered again. Its queues get the group and the notification's `SequenceNumber`.
- An unknown topic is `NotFound` "Topic does not exist" (HTTP 404).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sandbox.assembly import AssemblyError, Stack
from sandbox.core import ids
from sandbox.core.delivery import Failure
from sandbox.core.history import DeadLetter
from sandbox.core.state import Writes
from sandbox.core.targets import Parcel, Targets
from sandbox.sns.envelopes import (
    Notification,
    lambda_event,
    sqs_body,
    string_attributes,
    timestamp,
)
from sandbox.sns.filter_policy import FilterPolicy, FilterPolicyError

TOPIC = "AWS::SNS::Topic"
SUBSCRIPTION = "AWS::SNS::Subscription"
PROTOCOLS = {"http", "https", "email", "email-json", "sms", "sqs", "application", "lambda",
             "firehose"}
DELIVERED = {"sqs", "lambda"}
MAX_MESSAGE_BYTES = 262_144
MAX_BATCH = 10
DEDUPLICATION_S = 300.0
_BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_ATTRIBUTE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


class SnsError(Exception):
    """An error SNS answers with: `code` as its API reference names it, and its HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _invalid(message: str) -> SnsError:
    return SnsError("InvalidParameter", f"Invalid parameter: {message}")


def _value_invalid(message: str) -> SnsError:
    return SnsError("ParameterValueInvalid", message)


@dataclass(frozen=True)
class Subscription:
    arn: str
    topic_arn: str
    protocol: str
    endpoint: str
    raw: bool = False  # RawMessageDelivery
    dead_letter_arn: str | None = None  # RedrivePolicy.deadLetterTargetArn
    filter: FilterPolicy | None = None

    def attributes(self) -> dict[str, str]:
        """As GetSubscriptionAttributes answers."""
        attributes = {"SubscriptionArn": self.arn, "TopicArn": self.topic_arn,
                      "Owner": _account(self.arn), "Protocol": self.protocol,
                      "Endpoint": self.endpoint, "RawMessageDelivery": str(self.raw).lower(),
                      "PendingConfirmation": "false", "ConfirmationWasAuthenticated": "true"}
        if self.filter is not None:
            attributes["FilterPolicy"] = json.dumps(self.filter.policy)
            attributes["FilterPolicyScope"] = self.filter.scope
        if self.dead_letter_arn:
            attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn":
                                                      self.dead_letter_arn})
        return attributes


@dataclass
class Topic:
    arn: str
    fifo: bool
    content_dedup: bool = False  # ContentBasedDeduplication
    display_name: str = ""
    subscriptions: list[Subscription] = field(default_factory=list)

    def attributes(self) -> dict[str, str]:
        """As GetTopicAttributes answers."""
        attributes = {"TopicArn": self.arn, "Owner": _account(self.arn),
                      "DisplayName": self.display_name,
                      "SubscriptionsConfirmed": str(len(self.subscriptions)),
                      "SubscriptionsPending": "0", "SubscriptionsDeleted": "0"}
        if self.fifo:
            attributes["FifoTopic"] = "true"
            attributes["ContentBasedDeduplication"] = str(self.content_dedup).lower()
        return attributes


@dataclass(frozen=True)
class Message:
    """One message to publish, checked."""

    body: str
    subject: str | None = None
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)  # {Type, Value}
    per_protocol: dict[str, str] | None = None  # MessageStructure=json
    group_id: str | None = None
    dedup_id: str | None = None


def _account(arn: str) -> str:
    return arn.split(":")[4]


def _true(value: Any) -> bool:
    return str(value).lower() == "true"


def subscription_arn(topic_arn: str, stack: Stack, key: str) -> str:
    """Stable across restarts: the same subscription keeps its ARN."""
    return f"{topic_arn}:{uuid.uuid5(uuid.NAMESPACE_URL, f'{stack.name}/{key}')}"


class Topics:
    def __init__(self, stacks: list[Stack], targets: Targets) -> None:
        self.targets = targets
        self.topics: dict[str, Topic] = {}  # ARN -> topic
        self.notes: list[str] = []  # what is not delivered as on AWS, for the start summary
        self._seen: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}  # FIFO dedup
        self._lock = threading.Lock()
        for stack in stacks:
            for resource in stack.of_type(TOPIC):
                arn = stack.ref(resource.logical_id)
                props = stack.properties(resource.logical_id)
                self.topics[arn] = Topic(arn, _true(props.get("FifoTopic")),
                                         _true(props.get("ContentBasedDeduplication")),
                                         str(props.get("DisplayName", "")))
                for i, inline in enumerate(props.get("Subscription") or []):
                    self._subscribe(stack, resource.logical_id, f"Subscription[{i}].", arn,
                                    inline, subscription_arn(arn, stack, f"{arn}/{i}"))
        for stack in stacks:
            for resource in stack.of_type(SUBSCRIPTION):
                props = stack.properties(resource.logical_id)
                topic_arn = props.get("TopicArn", "")
                self._subscribe(stack, resource.logical_id, "", topic_arn, props,
                                subscription_arn(topic_arn, stack, resource.logical_id))
        for arn, topic in self.topics.items():
            targets.register(arn, _TopicSink(topic, self))

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
        try:
            policy = props.get("FilterPolicy")
            scope = props.get("FilterPolicyScope")
            filter_policy = FilterPolicy.parse(policy, scope) if policy or scope else None
        except FilterPolicyError as failure:
            prop = "FilterPolicyScope" if "FilterPolicyScope:" in str(failure) else "FilterPolicy"
            raise error(prop, str(failure)) from None
        topic = self.topics.get(topic_arn)
        label = f"{stack.name}/{logical_id}"
        if topic is None:
            self.notes.append(f"{label}: topic {topic_arn} is not in the assembly")
            return
        endpoint = str(props.get("Endpoint", ""))
        if topic.fifo and protocol != "sqs":
            raise error("Protocol", f"Invalid parameter: a FIFO topic delivers to SQS queues "
                                    f"only, not over {protocol}")
        if not topic.fifo and protocol == "sqs" and endpoint.endswith(".fifo"):
            raise error("Endpoint", "Invalid parameter: Invalid parameter: Endpoint Reason: FIFO "
                                    "SQS Queues can not be subscribed to standard SNS topics")
        if protocol not in DELIVERED:
            self.notes.append(f"{label}: {protocol} subscription not delivered")
            return
        redrive = props.get("RedrivePolicy") or {}
        if isinstance(redrive, str):
            with contextlib.suppress(ValueError):
                redrive = json.loads(redrive)
        if not isinstance(redrive, dict):
            raise error("RedrivePolicy", "Invalid parameter: RedrivePolicy Reason: not a JSON "
                                         "object")
        topic.subscriptions.append(Subscription(arn, topic_arn, protocol, endpoint, raw,
                                                redrive.get("deadLetterTargetArn"),
                                                filter_policy or None))

    # The API (see `wire` for the protocol): each call answers and says what to write.

    def topic(self, arn: Any) -> Topic:
        if not arn:
            raise _invalid("TopicArn or TargetArn Reason: no value for required parameter")
        topic = self.topics.get(str(arn))
        if topic is None:
            raise SnsError("NotFound", "Topic does not exist", 404)
        return topic

    def publish(self, request: dict[str, Any]) -> tuple[dict[str, str], Writes]:
        topic = self.topic(request.get("TopicArn") or request.get("TargetArn"))
        message = check_message(topic, request)
        if _size(message) > MAX_MESSAGE_BYTES:
            raise _invalid("Message too long")
        return self._accept(topic, message, {})

    def publish_batch(self, request: dict[str, Any]) -> tuple[dict[str, Any], Writes]:
        topic = self.topic(request.get("TopicArn"))
        entries = request.get("PublishBatchRequestEntries") or []
        _check_batch(entries)
        checked: list[tuple[str, Message]] = []
        failed = []
        for entry in entries:
            try:
                checked.append((entry["Id"], check_message(topic, entry)))
            except SnsError as error:
                failed.append({"Id": entry["Id"], "Code": error.code, "Message": error.message,
                               "SenderFault": True})
        if sum(_size(message) for _, message in checked) > MAX_MESSAGE_BYTES:
            raise SnsError("BatchRequestTooLong", "The length of all the messages put together "
                                                  "is more than the limit.")
        writes = Writes()
        successful = []
        for entry_id, message in checked:
            answer, more = self._accept(topic, message, {})
            successful.append({"Id": entry_id, **answer})
            writes += more
        return {"Successful": successful, "Failed": failed}, writes

    def list_topics(self) -> list[str]:
        return list(self.topics)

    def list_subscriptions(self, topic_arn: str | None = None) -> list[dict[str, str]]:
        topics = [self.topic(topic_arn)] if topic_arn is not None else self.topics.values()
        return [{"SubscriptionArn": s.arn, "Owner": _account(s.arn), "Protocol": s.protocol,
                 "Endpoint": s.endpoint, "TopicArn": s.topic_arn}
                for topic in topics for s in topic.subscriptions]

    def subscription(self, arn: Any) -> Subscription:
        for topic in self.topics.values():
            for subscription in topic.subscriptions:
                if subscription.arn == arn:
                    return subscription
        raise SnsError("NotFound", "Subscription does not exist", 404)

    def _accept(self, topic: Topic, message: Message,
                context: dict[str, Any]) -> tuple[dict[str, str], Writes]:
        """The message's id (and a FIFO topic's sequence number), and its fan-out; a FIFO
        repeat within the deduplication window answers as the first did and delivers nothing."""
        answer = {"MessageId": ids.uuid4()}
        if topic.fifo:
            answer["SequenceNumber"] = f"{time.time_ns():020d}"
            key = (topic.arn, message.dedup_id or hashlib.sha256(message.body.encode()).hexdigest())
            now = time.monotonic()
            with self._lock:
                self._seen = {k: v for k, v in self._seen.items() if v[0] > now}
                if key in self._seen:
                    return self._seen[key][1], Writes()
                self._seen[key] = (now + DEDUPLICATION_S, answer)
        notification = Notification(
            message_id=answer["MessageId"], topic_arn=topic.arn, message=message.body,
            timestamp=timestamp(datetime.now(UTC)), subject=message.subject,
            attributes=message.attributes, sequence_number=answer.get("SequenceNumber"))
        return answer, self.fan_out(topic, notification, message, context)

    def fan_out(self, topic: Topic, notification: Notification, message: Message,
                context: dict[str, Any]) -> Writes:
        """The notification to each subscription whose filter policy it matches."""
        writes = Writes()
        for subscription in topic.subscriptions:
            text = (message.per_protocol or {}).get(subscription.protocol, notification.message)
            if subscription.filter and not subscription.filter.matches(notification.attributes,
                                                                       text):
                continue
            writes += self._deliver(subscription, replace(notification, message=text),
                                    message.group_id, context)
        return writes

    def _deliver(self, subscription: Subscription, notification: Notification,
                 group_id: str | None, context: dict[str, Any]) -> Writes:
        attributes: dict[str, Any] = {}
        if subscription.protocol == "lambda":
            body = json.dumps(lambda_event(notification, subscription.arn))
        elif subscription.raw:  # the attributes become the queue message's, with their types
            body = notification.message
            attributes = {name: sqs_attribute(a) for name, a in notification.attributes.items()}
        else:
            body = sqs_body(notification, subscription.arn)
        out = Parcel(body, dict(context), group_id=group_id, attributes=attributes, via="topic")
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


# Checking what is published


def check_message(topic: Topic, request: dict[str, Any]) -> Message:
    body = request.get("Message")
    if not isinstance(body, str) or not body:
        raise _invalid("Empty message")
    subject = request.get("Subject")
    if subject is not None and (not subject or len(subject) >= 100 or not subject.isascii()
                                or "\n" in subject):
        raise _invalid("Subject")
    attributes = check_attributes(request.get("MessageAttributes") or {})
    per_protocol = _per_protocol(body, request.get("MessageStructure"))
    group, dedup = request.get("MessageGroupId"), request.get("MessageDeduplicationId")
    if topic.fifo:
        if not group:
            raise _invalid("The MessageGroupId parameter is required for FIFO topics")
        if not dedup and not topic.content_dedup:
            raise _invalid("The topic should either have ContentBasedDeduplication enabled or "
                           "MessageDeduplicationId provided explicitly")
    elif dedup:
        raise _invalid("MessageDeduplicationId Reason: The request includes "
                       "MessageDeduplicationId parameter that is not valid for this topic type")
    return Message(per_protocol["default"] if per_protocol else body, subject, attributes,
                   per_protocol, group if topic.fifo else None, dedup)


def _per_protocol(body: str, structure: Any) -> dict[str, str] | None:
    if structure is None:
        return None
    if structure != "json":
        raise _invalid("MessageStructure")
    try:
        messages = json.loads(body)
    except ValueError:
        messages = None
    if not isinstance(messages, dict):
        raise _invalid("Message Structure - JSON message body failed to parse")
    if not isinstance(messages.get("default"), str):
        raise _invalid("Message Structure - No default entry in JSON message body")
    return {protocol: text for protocol, text in messages.items() if isinstance(text, str)}


def check_attributes(attributes: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Message attributes as Publish takes them ({DataType, StringValue|BinaryValue}), as
    subscribers see them ({Type, Value}; a Binary value stays base64)."""
    checked = {}
    for name, value in attributes.items():
        _check_attribute_name(name)
        kind = str(value.get("DataType") or "")
        if kind.split(".")[0] not in ("String", "Number", "Binary"):
            raise _value_invalid(f"The message attribute '{name}' has an invalid message "
                                 "attribute type, the set of supported type prefixes is Binary, "
                                 "Number, and String.")
        text = value.get("BinaryValue" if kind.startswith("Binary") else "StringValue")
        if not text:
            raise _value_invalid(f"The message attribute '{name}' must contain non-empty "
                                 "message attribute value for message attribute type "
                                 f"'{kind}'.")
        if kind.startswith("Number") and not _is_number(text):
            raise _value_invalid(f"Could not cast message attribute '{name}' value to number.")
        checked[name] = {"Type": kind, "Value": text}
    return checked


def _check_attribute_name(name: str) -> None:
    if len(name.encode()) > 256:
        raise _value_invalid("Length of message attribute name must be less than 256 bytes.")
    if name.startswith("."):
        raise _value_invalid("Invalid message attribute name starting with character '.' was "
                             "found.")
    if name.endswith("."):
        raise _value_invalid("Invalid message attribute name ending with character '.' was "
                             "found.")
    if bad := _ATTRIBUTE_CHARS.search(name):
        raise _value_invalid(f"Invalid non-alphanumeric character '#x{ord(bad.group()):X}' was "
                             "found in the message attribute name. Can only include "
                             "alphanumeric characters, hyphens, underscores, or dots.")
    if ".." in name:
        raise _value_invalid("Message attribute name can not have successive '.' character.")


def sqs_attribute(attribute: dict[str, str]) -> dict[str, str]:
    """An SNS message attribute ({Type, Value}) as raw delivery hands it to SQS: the same type
    (String.Array is SQS's String with a custom `.Array` label), a Binary value as base64."""
    kind = attribute["Type"]
    key = "BinaryValue" if kind == "Binary" else "StringValue"
    return {"DataType": kind, key: attribute["Value"]}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _size(message: Message) -> int:
    """What counts against the limit: the body and each attribute's name, type and value."""
    return len(message.body.encode()) + sum(
        len(name.encode()) + len(a["Type"].encode()) + len(a["Value"].encode())
        for name, a in message.attributes.items())


def _check_batch(entries: list[dict[str, Any]]) -> None:
    if not entries:
        raise SnsError("EmptyBatchRequest", "The batch request doesn't contain any entries.")
    if len(entries) > MAX_BATCH:
        raise SnsError("TooManyEntriesInBatchRequest",
                       "The batch request contains more entries than permissible.")
    ids = [entry.get("Id") for entry in entries]
    if not all(isinstance(i, str) and _BATCH_ID.match(i) for i in ids):
        raise SnsError("InvalidBatchEntryId", "The Id of a batch entry in a batch request "
                                              "doesn't abide by the specification.")
    if len(set(ids)) != len(ids):
        raise SnsError("BatchEntryIdsNotDistinct",
                       "Two or more batch entries in the request have the same Id.")


class _TopicSink:
    """A topic as a target of another service: one notification, fanned out."""

    def __init__(self, topic: Topic, topics: Topics) -> None:
        self.topic = topic
        self.topics = topics

    def accept(self, parcel: Parcel) -> Writes:
        if self.topic.fifo and not parcel.group_id:
            raise Failure("InvalidParameterException", "Invalid parameter: The MessageGroupId "
                          f"parameter is required for FIFO topics ({self.topic.arn})",
                          retryable=False)
        message = Message(parcel.body, parcel.context.get("subject"),
                          string_attributes(parcel.attributes), group_id=parcel.group_id)
        notification = Notification(
            message_id=ids.uuid4(), topic_arn=self.topic.arn, message=message.body,
            timestamp=timestamp(datetime.now(UTC)), subject=message.subject,
            attributes=message.attributes,
            sequence_number=f"{time.time_ns():020d}" if self.topic.fifo else None)
        return self.topics.fan_out(self.topic, notification, message, dict(parcel.context))
