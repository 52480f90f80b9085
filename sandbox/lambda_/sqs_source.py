"""Lambda's event source mappings on SQS queues: pollers that receive batches and invoke the
function synchronously with them, as Lambda's own pollers do.

From Lambda's developer guide ("Using Lambda with Amazon SQS"):
- a batch is up to `BatchSize` messages (default 10), gathered for up to
  `MaximumBatchingWindowInSeconds` (default 0) or until 6 MB;
- the event is `{"Records": [...]}`, each record with `messageId`, `receiptHandle`, `body`,
  `attributes`, `messageAttributes` (camelCase: `stringValue`, `dataType`...), `md5OfBody`,
  `eventSource` "aws:sqs", `eventSourceARN` and `awsRegion`;
- `FilterCriteria`: a record matching no filter is deleted without an invocation (the body is
  matched as JSON when it is JSON);
- success deletes the batch; a function error leaves it, so each message comes back after the
  queue's visibility timeout and is redriven by the queue's policy; with
  `ReportBatchItemFailures` the answer's `batchItemFailures` lists the messages to keep, and an
  answer that does not parse, or names a message not in the batch, keeps them all;
- `ScalingConfig.MaximumConcurrency` (2 to 1000) caps the invocations at once; without it the
  pollers here run five at a time, Lambda's starting number of pollers;
- on a FIFO queue a batch holds messages in group order; a failure keeps the rest of the batch;
- a throttled invocation (Lambda's operator guide, "Handling errors for an SQS event source") is
  retried with a growing backoff while the batch is still invisible; then the batch returns to
  the queue, as a batch Lambda refuses for its size does at once.

This module reads queues only through the `QueueReader` it is given (the SQS backend), so the
Lambda package does not import the SQS package.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from sandbox.core.history import BatchRun, InvocationRun, Record
from sandbox.core.jobs import STORAGE_FULL_PAUSE_S, Abandoned
from sandbox.core.state import Message, StorageFull
from sandbox.events.patterns import EventPattern, compile_pattern
from sandbox.lambda_.backend import InvokeRefused
from sandbox.lambda_.runtime_api import Invocation
from sandbox.traces import context as traces

DEFAULT_BATCH = 10
DEFAULT_POLLERS = 5
MAX_PAYLOAD = 6 * 1024 * 1024
POLL_WAIT_S = 1.0  # long-poll slices, so a stop is seen within a second
FIRST_BACKOFF_S = 0.1  # after a throttle; doubled at each, up to POLL_WAIT_S


class QueueReader(Protocol):
    def take(self, queue_arn: str, limit: int, wait_s: float) -> list[tuple[Message, str]]:
        """Receive up to `limit` messages of the queue, under its visibility timeout, each
        with its receipt handle."""
        ...

    def settle(self, queue_arn: str, messages: list[Message],
               history: list[Record] | None = None) -> None:
        """Delete these received messages and write `history`, in one transaction: a batch's
        end is one commit, not one a message and two for its records."""
        ...


@dataclass(frozen=True)
class SqsMapping:
    uuid: str
    queue_arn: str
    function_arn: str
    batch_size: int
    window_s: float
    filters: list[EventPattern]
    report_item_failures: bool
    max_concurrency: int
    fifo: bool


def sqs_record(message: Message, queue_arn: str, region: str, receipt: str) -> dict[str, Any]:
    """One message as Lambda hands it to the function."""
    attributes = {
        "ApproximateReceiveCount": str(message.receives),
        "SentTimestamp": str(int(message.sent * 1000)),
        "SenderId": "000000000000",
        "ApproximateFirstReceiveTimestamp": str(int((message.first_receive or 0) * 1000)),
    }
    if message.sequence is not None:
        attributes["SequenceNumber"] = f"{message.sequence:020d}"
    if message.group_id:
        attributes["MessageGroupId"] = message.group_id
    if message.dedup_id:
        attributes["MessageDeduplicationId"] = message.dedup_id
    for name in ("AWSTraceHeader", "DeadLetterQueueSourceArn"):
        if name in message.system:
            attributes[name] = message.system[name]
    message_attributes = {}
    for name, value in message.attributes.items():
        value = value if isinstance(value, dict) else {"DataType": "String", "StringValue": value}
        message_attributes[name] = {
            "stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
            "stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    return {
        "messageId": message.id,
        "receiptHandle": receipt,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": hashlib.md5(message.body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def matches(filters: list[EventPattern], record: dict[str, Any]) -> bool:
    """Lambda's event filtering on an SQS record: the body is matched as JSON when it is."""
    if not filters:
        return True
    try:
        body = json.loads(record["body"])
    except ValueError:
        body = record["body"]
    subject = {**record, "body": body}
    return any(f.matches(subject) for f in filters)


def failed_items(payload: bytes, batch: list[str]) -> set[str] | None:
    """The message ids a `ReportBatchItemFailures` answer keeps; None keeps the whole batch
    (an answer Lambda cannot use). An empty or null answer, or an empty list, keeps none."""
    try:
        answer = json.loads(payload or b"null")
    except ValueError:
        return None
    if answer is None or answer == {}:
        return set()
    if not isinstance(answer, dict):
        return None
    failures = answer.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    kept = set()
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(item, str) or item not in batch:
            return None
        kept.add(item)
    return kept


def compile_filters(criteria: Any) -> list[EventPattern]:
    filters = (criteria or {}).get("Filters") or []
    return [compile_pattern(f["Pattern"]) for f in filters]


class SqsPollers:
    """The pollers of one mapping: each receives a batch, invokes, settles, and again."""

    def __init__(self, mapping: SqsMapping, queues: QueueReader, run: Any,
                 region: str) -> None:
        self.mapping = mapping
        self.queues = queues
        self.run = run  # LambdaService.run: the record is written with the batch's end
        self.region = region
        self._running = True
        self._threads = [threading.Thread(target=self._poll, name=f"sqs-esm-{i}", daemon=True)
                         for i in range(1 if mapping.fifo else mapping.max_concurrency)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._running = False
        for thread in self._threads:
            thread.join(timeout=POLL_WAIT_S + 5)

    def _poll(self) -> None:
        while self._running:
            try:
                batch = self._gather()
                if batch:
                    self._run(batch)
            except Abandoned:
                return  # the sandbox is stopping: the batch comes back at the next start
            except StorageFull:  # the batch comes back when its visibility timeout ends
                time.sleep(STORAGE_FULL_PAUSE_S)

    def _gather(self) -> list[tuple[Message, str]]:
        """A batch: up to BatchSize messages within the batching window (or the first that
        come when there is no window)."""
        mapping = self.mapping
        deadline = time.monotonic() + mapping.window_s
        batch: list[tuple[Message, str]] = []
        size = 0
        while self._running and len(batch) < mapping.batch_size:
            wait = max(0.0, deadline - time.monotonic()) if batch else POLL_WAIT_S
            taken = self.queues.take(mapping.queue_arn, min(10, mapping.batch_size - len(batch)),
                                     min(wait, POLL_WAIT_S))
            batch += taken
            size += sum(len(m.body) for m, _ in taken)
            if size >= MAX_PAYLOAD or (batch and time.monotonic() >= deadline):
                break
            if not taken and not batch:
                deadline = time.monotonic() + mapping.window_s
        return batch

    def _run(self, batch: list[tuple[Message, str]]) -> None:
        mapping = self.mapping
        records = [sqs_record(m, mapping.queue_arn, self.region, handle) for m, handle in batch]
        kept = [(m, r) for (m, _), r in zip(batch, records, strict=True)
                if matches(mapping.filters, r)]
        dropped = [m for (m, _), r in zip(batch, records, strict=True)
                   if not matches(mapping.filters, r)]
        if dropped:
            self.queues.settle(mapping.queue_arn, dropped)  # filtered out: deleted, as on AWS
        if not kept:
            return
        payload = json.dumps({"Records": [r for _, r in kept]}).encode()
        # The batch continues its first message's trace (SQS's AWSTraceHeader), as X-Ray does.
        with traces.resume_header(kept[0][0].system.get("AWSTraceHeader")), \
                traces.span("batch"):
            self._settle_run(kept, payload)

    def _settle_run(self, kept: list[tuple[Message, dict[str, Any]]], payload: bytes) -> None:
        mapping = self.mapping
        ran = self._invoke(payload, until=min(m.visible for m, _ in kept))
        if ran is None:
            return  # the batch comes back after the visibility timeout
        invocation, run = ran
        ids = [m.id for m, _ in kept]
        failed: set[str] | None = None  # the batch comes back after the visibility timeout
        if invocation.ok:
            failed = failed_items(invocation.payload, ids) if mapping.report_item_failures \
                else set()
        kept_back = ids if failed is None else [i for i in ids if i in failed]
        self.queues.settle(mapping.queue_arn,
                           [] if failed is None else [m for m, _ in kept if m.id not in failed],
                           [run, BatchRun(mapping.queue_arn, invocation.function,
                                          invocation.request_id, ids, kept_back, invocation.ok)])

    def _invoke(self, payload: bytes, until: float) -> tuple[Invocation, InvocationRun] | None:
        """The invocation and its record; None when Lambda refused the batch: too large, or
        throttled until the batch's visibility timeout (`until`, epoch seconds) was about to
        end."""
        backoff = FIRST_BACKOFF_S
        while True:
            try:
                return self.run(self.mapping.function_arn, payload, trigger="sqs",
                                rule=self.mapping.uuid)
            except InvokeRefused as refused:
                if refused.status != 429 or time.time() + backoff >= until or not self._running:
                    return None
            time.sleep(backoff)
            backoff = min(2 * backoff, POLL_WAIT_S)
