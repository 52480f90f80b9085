"""What Lambda's SQS pollers hand a function and take back, pure: the record shape of AWS's
documented example event, filtering, and the partial batch answer."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from sandbox_process import wait_for

from sandbox.core.history import BatchRun, InvocationRun, Record
from sandbox.core.state import Message
from sandbox.events.patterns import compile_pattern
from sandbox.lambda_.backend import throttled
from sandbox.lambda_.records import invocation_record
from sandbox.lambda_.runtime_api import Invocation
from sandbox.lambda_.sqs_source import SqsMapping, SqsPollers, failed_items, matches, sqs_record

QUEUE = "arn:aws:sqs:us-east-1:000000000000:my-queue"


def message(body: str = "Test message.", **fields: object) -> Message:
    return Message("059f36b4-87a3-44ab-83d2-661975830a7d", QUEUE, body,
                   {"myAttribute": {"DataType": "String", "StringValue": "myValue"}},
                   1545082649.183, receives=1, first_receive=1545082649.185, **fields)


def test_a_record_has_the_shape_of_awss_example_event() -> None:
    record = sqs_record(message(), QUEUE, "us-east-1", "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...")
    assert record == {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": "Test message.",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183",
                       "SenderId": "000000000000",
                       "ApproximateFirstReceiveTimestamp": "1545082649185"},
        "messageAttributes": {"myAttribute": {
            "stringValue": "myValue", "binaryValue": None, "stringListValues": [],
            "binaryListValues": [], "dataType": "String"}},
        "md5OfBody": hashlib.md5(b"Test message.").hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE,
        "awsRegion": "us-east-1",
    }


def test_a_fifo_record_carries_its_group_deduplication_and_sequence() -> None:
    record = sqs_record(message(group_id="1", dedup_id="abc", sequence=18849496460467696128),
                        QUEUE + ".fifo", "us-east-1", "h")
    assert record["attributes"]["MessageGroupId"] == "1"
    assert record["attributes"]["MessageDeduplicationId"] == "abc"
    assert record["attributes"]["SequenceNumber"] == "18849496460467696128"


def test_a_filter_matches_the_body_as_json_when_it_is_json() -> None:
    orders = [compile_pattern({"body": {"kind": ["order"]}})]
    assert matches(orders, sqs_record(message('{"kind": "order"}'), QUEUE, "us-east-1", "h"))
    assert not matches(orders, sqs_record(message('{"kind": "refund"}'), QUEUE, "us-east-1",
                                          "h"))
    plain = [compile_pattern({"body": ["Test message."]})]
    assert matches(plain, sqs_record(message(), QUEUE, "us-east-1", "h"))
    assert matches([], sqs_record(message(), QUEUE, "us-east-1", "h")), "no filter: all"


def test_a_partial_batch_answer_keeps_the_failures_or_on_doubt_the_whole_batch() -> None:
    batch = ["a", "b", "c"]
    assert failed_items(b'{"batchItemFailures": [{"itemIdentifier": "b"}]}', batch) == {"b"}
    assert failed_items(b'{"batchItemFailures": []}', batch) == set()
    assert failed_items(b"null", batch) == set()
    assert failed_items(b"{}", batch) == set()
    # Lambda cannot use these: the whole batch fails.
    assert failed_items(b'{"batchItemFailures": [{"itemIdentifier": "z"}]}', batch) is None
    assert failed_items(b'{"batchItemFailures": [{"itemIdentifier": ""}]}', batch) is None
    assert failed_items(b'{"batchItemFailures": "b"}', batch) is None
    assert failed_items(b"not json", batch) is None


class OneBatchQueue:
    """A queue holding one message, invisible for 60 s once taken: what the pollers settle."""

    def __init__(self) -> None:
        self.batch = [(message(visible=time.time() + 60), "h")]
        self.settled: list[Message] = []
        self.history: list[Record] = []

    def take(self, queue_arn: str, limit: int, wait_s: float) -> list[tuple[Message, str]]:
        batch, self.batch = self.batch, []
        return batch

    def settle(self, queue_arn: str, messages: list[Message],
               history: list[Record] | None = None) -> None:
        self.settled += messages
        self.history += history or []


def test_a_throttled_batch_is_retried_while_invisible_and_the_poller_lives_on() -> None:
    """Lambda retries a throttled SQS batch, backing off, while the batch is invisible (it used
    to kill the poller thread, with a traceback, and the mapping polled no more)."""
    queue, tries = OneBatchQueue(), []

    def run(function_arn: str, payload: bytes, **context: Any) -> tuple[Invocation,
                                                                         InvocationRun]:
        tries.append(payload)
        if len(tries) < 3:
            raise throttled()
        invocation = Invocation("r", "f", True, b"null", None, time.time(), 1.0, None, 64, 128)
        return invocation, invocation_record(invocation, "F", context)

    mapping = SqsMapping("u", QUEUE, "f", 10, 0.0, [], False, 2, fifo=True)
    pollers = SqsPollers(mapping, queue, run, "us-east-1")
    pollers.start()
    try:
        wait_for(lambda: queue.settled, 10, "the batch deleted after two throttles")
    finally:
        pollers.stop()
    assert len(tries) == 3 and len(set(tries)) == 1, "the same batch, tried three times"
    assert [m.id for m in queue.settled] == [message().id]
    # One run recorded, in the commit that deleted its batch.
    [recorded, batch_run] = queue.history
    assert isinstance(recorded, InvocationRun) and recorded.request_id == "r"
    assert batch_run == BatchRun(QUEUE, "f", "r", [message().id], [], True)
