"""SQS: the template's queues, as targets of other services and through SQS's API.

Every queue of the assembly is served: rule targets, dead-letter queues and destinations are
ordinary queues, readable with `ReceiveMessage`. Messages live in `State` (statements in
`store`), so they outlast a killed sandbox with their receive counts and visibility; `python -m
sandbox dlq` lists them from another process.

Semantics from the SQS API reference and developer guide: visibility timeout (default 30 s, at
most 12 h), `DelaySeconds` (queue default and per message, at most 15 min; not per message on a
FIFO queue), retention (default 4 days), long polling (`WaitTimeSeconds` up to 20 s, or the
queue's `ReceiveMessageWaitTimeSeconds`), the redrive policy (a message received
`maxReceiveCount` times goes to the dead-letter queue at its next receive), FIFO queues (a
message group waits while one of its messages is in flight; deduplication by id or by the
body's SHA-256 for 5 minutes). The maximum message size is AWS's current default, 1 MiB.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from sandbox.assembly import AssemblyError, Stack
from sandbox.core import ids
from sandbox.core.delivery import Failure
from sandbox.core.history import Record
from sandbox.core.state import Message, State, Writes
from sandbox.core.targets import Parcel, Targets
from sandbox.sqs.messages import (
    MessageError,
    check_attributes,
    check_body,
    md5_of_attributes,
    md5_of_body,
    new_token,
    parse_receipt_handle,
    receipt_handle,
    size_of,
)
from sandbox.sqs.store import QueueStore, Redrive, queued, sequence_number
from sandbox.traces import context as traces

QUEUE = "AWS::SQS::Queue"
MAX_BATCH = 10
MAX_VISIBILITY_S = 43_200
MAX_DELAY_S = 900
MAX_WAIT_S = 20
PURGE_INTERVAL_S = 60.0
_BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
SYSTEM_ATTRIBUTES = ("SenderId", "SentTimestamp", "ApproximateReceiveCount",
                     "ApproximateFirstReceiveTimestamp", "SequenceNumber",
                     "MessageDeduplicationId", "MessageGroupId", "AWSTraceHeader",
                     "DeadLetterQueueSourceArn")
QUEUE_ATTRIBUTES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed", "CreatedTimestamp",
                    "LastModifiedTimestamp", "QueueArn", "VisibilityTimeout",
                    "MaximumMessageSize", "MessageRetentionPeriod", "DelaySeconds",
                    "ReceiveMessageWaitTimeSeconds", "RedrivePolicy", "FifoQueue",
                    "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
                    "SqsManagedSseEnabled", "RedriveAllowPolicy", "Policy")


class SqsError(Exception):
    """An error SQS answers with: `code` as its API reference names it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _not_exist() -> SqsError:
    return SqsError("QueueDoesNotExist", "The specified queue does not exist.")


@dataclass(frozen=True)
class Queue:
    arn: str
    name: str
    url: str
    fifo: bool
    visibility_s: int
    retention_s: int
    delay_s: int
    max_size: int
    wait_s: int
    content_dedup: bool
    redrive: Redrive | None
    created: float
    template: dict[str, Any]  # the resolved properties, for the attributes SQS echoes

    @classmethod
    def of(cls, stack: Stack, logical_id: str) -> Queue:
        props = stack.properties(logical_id)
        return cls(
            arn=stack.get_att(logical_id, "Arn"),
            name=stack.get_att(logical_id, "QueueName"),
            url=stack.ref(logical_id),
            fifo=str(props.get("FifoQueue", "false")).lower() == "true",
            visibility_s=int(props.get("VisibilityTimeout", 30)),
            retention_s=int(props.get("MessageRetentionPeriod", 345_600)),
            delay_s=int(props.get("DelaySeconds", 0)),
            max_size=int(props.get("MaximumMessageSize", 1_048_576)),
            wait_s=int(props.get("ReceiveMessageWaitTimeSeconds", 0)),
            content_dedup=str(props.get("ContentBasedDeduplication", "false")).lower() == "true",
            redrive=_redrive(stack, logical_id, props.get("RedrivePolicy")),
            created=time.time(),
            template=props,
        )


def _redrive(stack: Stack, logical_id: str, policy: Any) -> Redrive | None:
    """A RedrivePolicy (an object, or its JSON text), refused as SetQueueAttributes refuses
    it."""
    def invalid(reason: str) -> AssemblyError:
        return AssemblyError(f"{stack.template_file}: Resources.{logical_id}.Properties."
                             f"RedrivePolicy: InvalidParameterValue: Value {policy} for "
                             f"parameter RedrivePolicy is invalid. Reason: {reason}")

    if not policy:
        return None
    if isinstance(policy, str):
        with contextlib.suppress(ValueError):
            policy = json.loads(policy)
    if not isinstance(policy, dict):
        raise invalid("Redrive policy is not a valid JSON map.")
    if not isinstance(policy.get("deadLetterTargetArn"), str):
        raise invalid("Dead-letter target ARN is missing.")
    count = str(policy.get("maxReceiveCount"))
    if not count.isdigit() or not 1 <= int(count) <= 1000:
        raise invalid(f"Invalid value for maxReceiveCount: {count}, valid values are from 1 "
                      "to 1000 both inclusive.")
    return Redrive(policy["deadLetterTargetArn"], int(count))


class Queues:
    def __init__(self, stacks: list[Stack], state: State, targets: Targets) -> None:
        self.state = state
        self.store = QueueStore(state)
        self.queues: dict[str, Queue] = {}  # ARN -> queue
        self.names: dict[str, str] = {}  # ARN -> queue name
        for stack in stacks:
            for resource in stack.of_type(QUEUE):
                queue = Queue.of(stack, resource.logical_id)
                self.queues[queue.arn] = queue
                self.names[queue.arn] = queue.name
                targets.register(queue.arn, _QueueSink(queue))
        self._by_name = {queue.name: queue for queue in self.queues.values()}
        self._arrived = threading.Condition()
        self._purged: dict[str, float] = {}
        state.on_messages.append(self.arrived)

    def arrived(self, arns: set[str]) -> None:
        """Messages were stored or made visible: wake the long polls."""
        with self._arrived:
            self._arrived.notify_all()

    def queue(self, request: dict[str, Any]) -> Queue:
        """The queue a request's `QueueUrl` names: by its last path segment, so the URL the
        template gives and an AWS-style one (`https://sqs.<region>.amazonaws.com/<account>/
        <name>`) both work."""
        url = request.get("QueueUrl")
        if not isinstance(url, str) or not url:
            raise SqsError("MissingParameter", "The request must contain the parameter "
                                               "QueueUrl.")
        queue = self._by_name.get(url.rstrip("/").rsplit("/", 1)[-1])
        if queue is None:
            raise _not_exist()
        return queue

    # Sending

    def send_message(self, request: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(request)
        with traces.span("queued"):  # its AWSTraceHeader names this span
            (message,) = self._send(queue, [self._message(queue, request)])
        return _sent(message)

    def send_message_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(request)
        entries = _entries(request, "SendMessage")
        total = sum(size_of(str(e.get("MessageBody", "")),
                            e.get("MessageAttributes") or {}) if isinstance(
                                e.get("MessageAttributes") or {}, dict) else 0
                    for e in entries)
        if total > queue.max_size:
            raise SqsError("BatchRequestTooLong", f"Batch requests cannot be longer than "
                                                  f"{queue.max_size} bytes. You have sent "
                                                  f"{total} bytes.")
        accepted: list[tuple[str, Message]] = []
        failed = []
        with traces.span("queued"):  # the first message's span; the others', its children
            for entry in entries:
                try:
                    accepted.append((entry["Id"], self._message(queue, entry)))
                except (SqsError, MessageError) as error:
                    failed.append(_failed(entry["Id"], error))
            sent = self._send(queue, [message for _, message in accepted])
        return {"Successful": [{"Id": entry_id, **_sent(message)}
                               for (entry_id, _), message in zip(accepted, sent, strict=True)],
                "Failed": failed}

    def _message(self, queue: Queue, request: dict[str, Any]) -> Message:
        body = check_body(request.get("MessageBody"))
        attributes = check_attributes(request.get("MessageAttributes"))
        size = size_of(body, attributes)
        if size > queue.max_size:
            raise SqsError("InvalidParameterValue", "One or more parameters are invalid. "
                                                    f"Reason: Message must be shorter than "
                                                    f"{queue.max_size} bytes.")
        delay = request.get("DelaySeconds")
        group = request.get("MessageGroupId")
        dedup = request.get("MessageDeduplicationId")
        if queue.fifo:
            if delay is not None:
                raise _not_for_this_queue("DelaySeconds", delay)
            if not group:
                raise SqsError("MissingParameter",
                               "The request must contain the parameter MessageGroupId.")
            if not dedup and not queue.content_dedup:
                raise SqsError("InvalidParameterValue",
                               "The queue should either have ContentBasedDeduplication enabled "
                               "or MessageDeduplicationId provided explicitly")
            dedup = dedup or hashlib.sha256(body.encode()).hexdigest()
        elif dedup is not None:
            raise _not_for_this_queue("MessageDeduplicationId", dedup)
        delay = queue.delay_s if delay is None else _bounded("DelaySeconds", delay, MAX_DELAY_S)
        now = time.time()
        system = {name: value.get("StringValue", "") for name, value in
                  (request.get("MessageSystemAttributes") or {}).items()
                  if isinstance(value, dict)}
        return Message(ids.uuid4(), queue.arn, body, attributes, now,
                       group_id=group or None, dedup_id=dedup,
                       sequence=sequence_number() if queue.fifo else None,
                       visible=now + delay, system={"AWSTraceHeader": traces.header(), **system})

    def _send(self, queue: Queue, messages: list[Message]) -> list[Message]:
        sent = self.store.send(messages, time.time())
        self.arrived({queue.arn})
        return sent

    # Receiving

    def receive_message(self, request: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(request)
        limit = _bounded("MaxNumberOfMessages", request.get("MaxNumberOfMessages", 1),
                         MAX_BATCH, low=1, reason="Must be between 1 and 10, if provided.")
        visibility = _bounded("VisibilityTimeout",
                              request.get("VisibilityTimeout", queue.visibility_s),
                              MAX_VISIBILITY_S)
        wait = _bounded("WaitTimeSeconds", request.get("WaitTimeSeconds", queue.wait_s),
                        MAX_WAIT_S, reason="Must be >= 0 and <= 20, if provided.")
        names = set(request.get("MessageSystemAttributeNames") or []) | set(
            request.get("AttributeNames") or [])
        wanted = request.get("MessageAttributeNames") or []
        messages = self.receive(queue, limit, visibility, wait)
        if not messages:
            return {}
        return {"Messages": [_received(m, names, wanted) for m in messages]}

    def receive(self, queue: Queue, limit: int, visibility_s: float,
                wait_s: float) -> list[Message]:
        """Up to `limit` messages, waiting up to `wait_s` for the first (long polling)."""
        deadline = time.monotonic() + wait_s
        while True:
            token = new_token()
            received, redriven = self.store.receive(
                queue.arn, limit, visibility_s, time.time(), token, queue.retention_s,
                queue.fifo, queue.redrive if self._redrive_ok(queue) else None)
            if redriven:
                self.arrived({queue.redrive.dead_letter_arn})  # type: ignore[union-attr]
            left = deadline - time.monotonic()
            if received or left <= 0:
                return received
            with self._arrived:
                self._arrived.wait(min(left, self._next_visible(queue)))

    def _redrive_ok(self, queue: Queue) -> bool:
        return queue.redrive is not None and queue.redrive.dead_letter_arn in self.queues

    def _next_visible(self, queue: Queue) -> float:
        """Seconds until a delayed or in-flight message of `queue` becomes visible."""
        now = time.time()
        at = self.store.next_visible(queue.arn, now)
        return MAX_WAIT_S if at is None else max(0.01, at - now)

    # For Lambda's pollers (sandbox.lambda_.sqs_source.QueueReader)

    def take(self, queue_arn: str, limit: int, wait_s: float) -> list[tuple[Message, str]]:
        queue = self.queues[queue_arn]
        return [(m, receipt_handle(m.id, m.receipt or ""))
                for m in self.receive(queue, limit, queue.visibility_s, wait_s)]

    def settle(self, queue_arn: str, messages: list[Message],
               history: list[Record] | None = None) -> None:
        if messages or history:
            self.store.settle(queue_arn, messages, history or [])

    def settings(self) -> dict[str, tuple[bool, int]]:
        """Queue ARN -> (FIFO, visibility timeout): what Lambda checks of a mapping's queue."""
        return {arn: (q.fifo, q.visibility_s) for arn, q in self.queues.items()}

    # Deleting and visibility

    def delete_message(self, request: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(request)
        handle = _required(request, "ReceiptHandle")
        message_id, token = parse_receipt_handle(handle)
        self.store.delete(queue.arn, message_id, token, handle, queue.fifo)
        return {}

    def delete_message_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._batch(request, "DeleteMessage", self.delete_message)

    def change_message_visibility(self, request: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(request)
        handle = _required(request, "ReceiptHandle")
        timeout = _bounded("VisibilityTimeout", _required(request, "VisibilityTimeout"),
                           MAX_VISIBILITY_S)
        message_id, token = parse_receipt_handle(handle)
        self.store.change_visibility(queue.arn, message_id, token, handle, timeout, time.time())
        self.arrived({queue.arn})
        return {}

    def change_message_visibility_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._batch(request, "ChangeMessageVisibility", self.change_message_visibility)

    def _batch(self, request: dict[str, Any], action: str, one: Any) -> dict[str, Any]:
        self.queue(request)
        successful, failed = [], []
        for entry in _entries(request, action):
            try:
                one({**entry, "QueueUrl": request["QueueUrl"]})
                successful.append({"Id": entry["Id"]})
            except (SqsError, MessageError) as error:
                failed.append(_failed(entry["Id"], error))
        return {"Successful": successful, "Failed": failed}

    # The queues

    def get_queue_url(self, request: dict[str, Any]) -> dict[str, Any]:
        queue = self._by_name.get(_required(request, "QueueName"))
        if queue is None:
            raise _not_exist()
        return {"QueueUrl": queue.url}

    def list_queues(self, request: dict[str, Any]) -> dict[str, Any]:
        prefix = request.get("QueueNamePrefix") or ""
        urls = sorted(q.url for q in self.queues.values() if q.name.startswith(prefix))
        if "MaxResults" not in request:
            return {"QueueUrls": urls[:1000]} if urls else {}
        size = _bounded("MaxResults", request["MaxResults"], 1000, low=1)
        token = str(request.get("NextToken") or "0")
        if not token.isdigit():
            raise SqsError("InvalidParameterValue", "Invalid NextToken value.")
        start = int(token)
        page = urls[start:start + size]
        answer: dict[str, Any] = {"QueueUrls": page} if page else {}
        if start + size < len(urls):
            answer["NextToken"] = str(start + size)
        return answer

    def get_queue_attributes(self, request: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(request)
        names = request.get("AttributeNames") or []
        for name in names:
            if name != "All" and name not in QUEUE_ATTRIBUTES:
                raise SqsError("InvalidAttributeName", f"Unknown Attribute {name}.")
        everything = self._attributes(queue)
        chosen = everything if "All" in names else {
            name: everything[name] for name in names if name in everything}
        return {"Attributes": chosen} if chosen else {}

    def _attributes(self, queue: Queue) -> dict[str, str]:
        counts = self.store.counts(queue.arn, time.time())
        attributes = {
            "QueueArn": queue.arn,
            "ApproximateNumberOfMessages": str(counts.visible),
            "ApproximateNumberOfMessagesNotVisible": str(counts.in_flight),
            "ApproximateNumberOfMessagesDelayed": str(counts.delayed),
            "CreatedTimestamp": str(int(queue.created)),
            "LastModifiedTimestamp": str(int(queue.created)),
            "VisibilityTimeout": str(queue.visibility_s),
            "MaximumMessageSize": str(queue.max_size),
            "MessageRetentionPeriod": str(queue.retention_s),
            "DelaySeconds": str(queue.delay_s),
            "ReceiveMessageWaitTimeSeconds": str(queue.wait_s),
            "SqsManagedSseEnabled": str(queue.template.get("SqsManagedSseEnabled", True)).lower(),
        }
        if queue.redrive:
            attributes["RedrivePolicy"] = json.dumps({
                "deadLetterTargetArn": queue.redrive.dead_letter_arn,
                "maxReceiveCount": queue.redrive.max_receive_count})
        if queue.fifo:
            attributes |= {
                "FifoQueue": "true",
                "ContentBasedDeduplication": str(queue.content_dedup).lower(),
                "DeduplicationScope": queue.template.get("DeduplicationScope", "queue"),
                "FifoThroughputLimit": queue.template.get("FifoThroughputLimit", "perQueue"),
            }
        return attributes

    def purge_queue(self, request: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(request)
        now = time.monotonic()
        if now - self._purged.get(queue.arn, -PURGE_INTERVAL_S) < PURGE_INTERVAL_S:
            raise SqsError("PurgeQueueInProgress", f"Only one PurgeQueue operation on "
                                                   f"{queue.name} is allowed every 60 seconds.")
        self._purged[queue.arn] = now
        self.store.purge(queue.arn)
        return {}


class _QueueSink:
    """A queue as a target: a rule's, a destination, a dead-letter queue."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def accept(self, parcel: Parcel) -> Writes:
        if self.queue.fifo and not parcel.group_id:
            raise Failure("InvalidParameterValue", "The request must contain the parameter "
                          f"MessageGroupId ({self.queue.arn})", retryable=False)
        try:  # what SendMessage refuses, a sender's delivery is refused too (a plain-text
            check_body(parcel.body)  # input template may hold any character)
        except MessageError as refused:
            raise Failure(refused.code, refused.message, retryable=False) from None
        attributes = {name: value if isinstance(value, dict) else
                      {"DataType": "String", "StringValue": value}
                      for name, value in parcel.attributes.items()}
        now = time.time()
        with traces.span("queued"):
            message = Message(ids.uuid4(), self.queue.arn, parcel.body, attributes, now,
                              group_id=parcel.group_id if self.queue.fifo else None,
                              sequence=sequence_number() if self.queue.fifo else None,
                              visible=now + self.queue.delay_s,
                              system={"AWSTraceHeader": traces.header()})
            return Writes(messages=[message], history=[queued(message, parcel.via)])


# Request and answer shapes


def _required(request: dict[str, Any], name: str) -> Any:
    if request.get(name) in (None, ""):
        raise SqsError("MissingParameter", f"The request must contain the parameter {name}.")
    return request[name]


def _bounded(name: str, value: Any, high: int, low: int = 0, reason: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(
            value).lstrip("-").isdigit() or not low <= int(value) <= high:
        why = reason or f"Must be between {low} and {high}, if provided."
        raise SqsError("InvalidParameterValue",
                       f"Value {value} for parameter {name} is invalid. Reason: {why}")
    return int(value)


def _not_for_this_queue(name: str, value: Any) -> SqsError:
    return SqsError("InvalidParameterValue",
                    f"Value {value} for parameter {name} is invalid. Reason: The request "
                    "include parameter that is not valid for this queue type.")


def _entries(request: dict[str, Any], action: str) -> list[dict[str, Any]]:
    entries = request.get("Entries") or []
    if not isinstance(entries, list) or not entries:
        raise SqsError("EmptyBatchRequest", f"There should be at least one {action}Batch"
                                            "RequestEntry in the request.")
    if len(entries) > MAX_BATCH:
        raise SqsError("TooManyEntriesInBatchRequest", "Maximum number of entries per request "
                                                       f"are 10. You have sent {len(entries)}.")
    seen = set()
    for entry in entries:
        entry_id = entry.get("Id") if isinstance(entry, dict) else None
        if not isinstance(entry_id, str) or not _BATCH_ID.match(entry_id):
            raise SqsError("InvalidBatchEntryId", "A batch entry id can only contain "
                                                  "alphanumeric characters, hyphens and "
                                                  "underscores. It can be at most 80 letters "
                                                  "long.")
        if entry_id in seen:
            raise SqsError("BatchEntryIdsNotDistinct", f"Id {entry_id} repeated.")
        seen.add(entry_id)
    return entries


def _failed(entry_id: str, error: SqsError | MessageError) -> dict[str, Any]:
    return {"Id": entry_id, "SenderFault": True, "Code": error.code, "Message": error.message}


def _sent(message: Message) -> dict[str, Any]:
    answer = {"MD5OfMessageBody": md5_of_body(message.body), "MessageId": message.id}
    digest = md5_of_attributes(message.attributes)
    if digest:
        answer["MD5OfMessageAttributes"] = digest
    if message.sequence is not None:
        answer["SequenceNumber"] = f"{message.sequence:020d}"
    return answer


def _received(message: Message, system_names: set[str], wanted: list[str]) -> dict[str, Any]:
    assert message.receipt is not None
    answer: dict[str, Any] = {
        "MessageId": message.id,
        "ReceiptHandle": receipt_handle(message.id, message.receipt),
        "MD5OfBody": md5_of_body(message.body),
        "Body": message.body,
    }
    system = _system_attributes(message)
    chosen = {name: value for name, value in system.items()
              if "All" in system_names or name in system_names}
    if chosen:
        answer["Attributes"] = chosen
    attributes = {name: value for name, value in _typed(message).items()
                  if _wanted(name, wanted)}
    if attributes:
        answer["MessageAttributes"] = attributes
        answer["MD5OfMessageAttributes"] = md5_of_attributes(attributes)
    return answer


def _typed(message: Message) -> dict[str, dict[str, str]]:
    return {name: value if isinstance(value, dict) else
            {"DataType": "String", "StringValue": value}
            for name, value in message.attributes.items()}


def _wanted(name: str, wanted: list[str]) -> bool:
    return any(w in ("All", ".*") or w == name or (w.endswith(".*") and name.startswith(w[:-1]))
               for w in wanted)


def _system_attributes(message: Message) -> dict[str, str]:
    system = {
        "SenderId": "000000000000",
        "SentTimestamp": str(int(message.sent * 1000)),
        "ApproximateReceiveCount": str(message.receives),
        "ApproximateFirstReceiveTimestamp": str(int((message.first_receive or 0) * 1000)),
    }
    if message.group_id:
        system["MessageGroupId"] = message.group_id
    if message.dedup_id:
        system["MessageDeduplicationId"] = message.dedup_id
    if message.sequence is not None:
        system["SequenceNumber"] = f"{message.sequence:020d}"
    for name in ("AWSTraceHeader", "DeadLetterQueueSourceArn"):
        if name in message.system:
            system[name] = message.system[name]
    return system
