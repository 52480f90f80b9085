"""SQS's semantics in-process: the template's queues over a real state file, driven through the
same operations the endpoint serves (request and answer as SQS's JSON protocol shapes them)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest
from test_assembly import only_stack, write_assembly

from sandbox.core.delivery import Failure
from sandbox.core.state import State
from sandbox.core.targets import Parcel, Targets
from sandbox.sqs.backend import Queues, SqsError
from sandbox.sqs.messages import MessageError, md5_of_attributes

URL = "http://127.0.0.1:4000/000000000000/"
TEMPLATE = {
    "Work": {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": "work", "VisibilityTimeout": 30,
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dead", "Arn"]},
                          "maxReceiveCount": 2}}},
    "Dead": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "dead"}},
    "Slow": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "slow", "DelaySeconds": 600}},
    "Ordered": {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": "ordered.fifo", "FifoQueue": True}},
    "Deduped": {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": "deduped.fifo", "FifoQueue": True, "ContentBasedDeduplication": True}},
}


@pytest.fixture
def queues(tmp_path: Path) -> Queues:
    stack = only_stack(write_assembly(tmp_path / "assembly", TEMPLATE))
    return Queues([stack], State(tmp_path / "state" / "sandbox.db"), Targets())


def send(queues: Queues, queue: str, body: str = "hello", **fields: Any) -> dict[str, Any]:
    return queues.send_message({"QueueUrl": URL + queue, "MessageBody": body, **fields})


def receive(queues: Queues, queue: str, **fields: Any) -> list[dict[str, Any]]:
    answer = queues.receive_message({"QueueUrl": URL + queue, "MessageSystemAttributeNames":
                                     ["All"], "MessageAttributeNames": ["All"], **fields})
    return answer.get("Messages", [])


def error_of(call: Any) -> tuple[str, str]:
    with pytest.raises((SqsError, MessageError)) as caught:
        call()
    return caught.value.code, caught.value.message


def test_a_message_is_received_with_its_attributes_and_digests(queues: Queues) -> None:
    attributes = {"kind": {"DataType": "String", "StringValue": "order"},
                  "count": {"DataType": "Number", "StringValue": "3"}}
    sent = send(queues, "work", "hello", MessageAttributes=attributes)
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"hello").hexdigest()
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes)

    (message,) = receive(queues, "work")
    assert (message["MessageId"], message["Body"]) == (sent["MessageId"], "hello")
    assert message["MessageAttributes"] == attributes
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert message["Attributes"]["SenderId"] == "000000000000"
    assert receive(queues, "work") == [], "in flight: invisible until its timeout"


def test_the_md5_of_attributes_is_the_one_aws_documents() -> None:
    """The digest the SDKs check: name, type, transport byte and value, lengths big-endian."""
    digest = hashlib.md5(b"\x00\x00\x00\x01a" + b"\x00\x00\x00\x06String" + b"\x01"
                         + b"\x00\x00\x00\x01x").hexdigest()
    assert md5_of_attributes({"a": {"DataType": "String", "StringValue": "x"}}) == digest


def test_visibility_returns_a_message_with_its_receive_count(queues: Queues) -> None:
    send(queues, "work")
    (first,) = receive(queues, "work")
    queues.change_message_visibility({"QueueUrl": URL + "work",
                                      "ReceiptHandle": first["ReceiptHandle"],
                                      "VisibilityTimeout": 0})
    (again,) = receive(queues, "work")
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again["ReceiptHandle"] != first["ReceiptHandle"]


def test_only_the_latest_receipt_deletes_and_an_expired_one_is_refused(queues: Queues) -> None:
    send(queues, "dead")
    (first,) = receive(queues, "dead", VisibilityTimeout=0)
    (second,) = receive(queues, "dead", VisibilityTimeout=0)
    # A standard queue takes an older receipt without error, and deletes nothing.
    queues.delete_message({"QueueUrl": URL + "dead", "ReceiptHandle": first["ReceiptHandle"]})
    code, message = error_of(lambda: queues.change_message_visibility({
        "QueueUrl": URL + "dead", "ReceiptHandle": first["ReceiptHandle"],
        "VisibilityTimeout": 10}))
    assert code == "InvalidParameterValue"
    assert message.endswith("Reason: The receipt handle has expired.")
    (third,) = receive(queues, "dead")
    queues.delete_message({"QueueUrl": URL + "dead", "ReceiptHandle": third["ReceiptHandle"]})
    assert queues.state.messages() == []
    assert error_of(lambda: queues.delete_message({"QueueUrl": URL + "dead",
                                                   "ReceiptHandle": "not one"}))[0] == \
        "ReceiptHandleIsInvalid"
    assert second["MessageId"] == third["MessageId"]


def test_a_message_received_max_receive_count_times_moves_to_the_dead_letter_queue(
        queues: Queues) -> None:
    sent = send(queues, "work")
    for count in ("1", "2"):
        (message,) = receive(queues, "work", VisibilityTimeout=0)
        assert message["Attributes"]["ApproximateReceiveCount"] == count
    assert receive(queues, "work") == [], "the third receive redrives it instead"
    (dead,) = receive(queues, "dead")
    assert dead["MessageId"] == sent["MessageId"]
    assert dead["Attributes"]["DeadLetterQueueSourceArn"].endswith(":work")


def test_a_delayed_message_waits_and_is_counted_as_delayed(queues: Queues) -> None:
    send(queues, "slow")
    assert receive(queues, "slow") == []
    attributes = queues.get_queue_attributes({"QueueUrl": URL + "slow",
                                              "AttributeNames": ["All"]})["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert attributes["DelaySeconds"] == "600"
    assert attributes["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:slow"


def test_a_fifo_group_waits_while_one_of_its_messages_is_in_flight(queues: Queues) -> None:
    for body, group in (("a1", "A"), ("a2", "A"), ("b1", "B")):
        send(queues, "ordered.fifo", body, MessageGroupId=group, MessageDeduplicationId=body)
    (a1,) = receive(queues, "ordered.fifo", MaxNumberOfMessages=1)
    (b1,) = receive(queues, "ordered.fifo", MaxNumberOfMessages=1)
    assert (a1["Body"], b1["Body"]) == ("a1", "b1")
    assert receive(queues, "ordered.fifo") == []
    queues.delete_message({"QueueUrl": URL + "ordered.fifo", "ReceiptHandle": a1["ReceiptHandle"]})
    (a2,) = receive(queues, "ordered.fifo")
    assert a2["Body"] == "a2"
    assert int(a2["Attributes"]["SequenceNumber"]) > int(a1["Attributes"]["SequenceNumber"])


def test_a_fifo_queue_keeps_one_copy_of_a_message_sent_twice(queues: Queues) -> None:
    first = send(queues, "deduped.fifo", "same", MessageGroupId="g")
    again = send(queues, "deduped.fifo", "same", MessageGroupId="g")
    assert again["MessageId"] == first["MessageId"]
    assert len(receive(queues, "deduped.fifo", MaxNumberOfMessages=10)) == 1


def test_bad_input_gets_sqs_answers(queues: Queues) -> None:
    assert error_of(lambda: send(queues, "nope")) == ("QueueDoesNotExist",
                                                      "The specified queue does not exist.")
    assert error_of(lambda: send(queues, "work", "x" * 1_048_577))[1] == (
        "One or more parameters are invalid. Reason: Message must be shorter than 1048576 "
        "bytes.")
    assert error_of(lambda: send(queues, "work", MessageAttributes={
        "AWS.reserved": {"DataType": "String", "StringValue": "x"}}))[0] == \
        "InvalidParameterValue"
    assert error_of(lambda: send(queues, "work", MessageAttributes={
        "n": {"DataType": "Number", "StringValue": "many"}}))[0] == "InvalidParameterValue"
    assert error_of(lambda: send(queues, "work", "\x00"))[0] == "InvalidMessageContents"
    assert error_of(lambda: send(queues, "ordered.fifo"))[0] == "MissingParameter"
    assert error_of(lambda: send(queues, "ordered.fifo", MessageGroupId="g"))[1] == (
        "The queue should either have ContentBasedDeduplication enabled or "
        "MessageDeduplicationId provided explicitly")
    assert error_of(lambda: receive(queues, "work", MaxNumberOfMessages=11))[1] == (
        "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 "
        "and 10, if provided.")
    assert error_of(lambda: queues.get_queue_url({"QueueName": "nope"}))[0] == \
        "QueueDoesNotExist"


def test_a_batch_answers_each_entry(queues: Queues) -> None:
    answer = queues.send_message_batch({"QueueUrl": URL + "work", "Entries": [
        {"Id": "ok", "MessageBody": "fine"},
        {"Id": "bad", "MessageBody": "x", "MessageAttributes": {"": {"DataType": "String",
                                                                     "StringValue": "v"}}}]})
    assert [e["Id"] for e in answer["Successful"]] == ["ok"]
    assert [(e["Id"], e["Code"], e["SenderFault"]) for e in answer["Failed"]] == [
        ("bad", "InvalidParameterValue", True)]
    assert error_of(lambda: queues.send_message_batch({"QueueUrl": URL + "work", "Entries": [
        {"Id": "same", "MessageBody": "a"}, {"Id": "same", "MessageBody": "b"}]})) == (
        "BatchEntryIdsNotDistinct", "Id same repeated.")
    assert error_of(lambda: queues.send_message_batch({"QueueUrl": URL + "work",
                                                       "Entries": []}))[0] == "EmptyBatchRequest"


def test_a_long_poll_gets_a_message_sent_while_it_waits(queues: Queues) -> None:
    got: list[list[dict[str, Any]]] = []
    polling = threading.Thread(target=lambda: got.append(
        receive(queues, "work", WaitTimeSeconds=20)))
    polling.start()
    send(queues, "work", "late")
    polling.join(30)
    assert [m["Body"] for m in got[0]] == ["late"]


def test_a_message_a_rule_delivers_is_readable_with_its_attributes(tmp_path: Path) -> None:
    stack = only_stack(write_assembly(tmp_path / "assembly", TEMPLATE))
    state = State(tmp_path / "state" / "sandbox.db")
    targets = Targets()
    queues = Queues([stack], state, targets)
    writes = targets.deliver("arn:aws:sqs:us-east-1:000000000000:dead",
                             Parcel('{"id": "e-1"}', attributes={"ERROR_CODE": "Throttled"}))
    state.commit(writes)
    (message,) = receive(queues, "dead")
    assert message["MessageAttributes"]["ERROR_CODE"] == {"DataType": "String",
                                                          "StringValue": "Throttled"}


def test_messages_and_their_receive_counts_outlast_a_restart(tmp_path: Path) -> None:
    stack = only_stack(write_assembly(tmp_path / "assembly", TEMPLATE))
    path = tmp_path / "state" / "sandbox.db"
    before = Queues([stack], State(path), Targets())
    send(before, "work")
    receive(before, "work", VisibilityTimeout=0)
    after = Queues([stack], State(path), Targets())
    (message,) = receive(after, "work")
    assert message["Attributes"]["ApproximateReceiveCount"] == "2"


def test_a_delivery_sqs_would_refuse_is_refused_with_its_reason(tmp_path: Path) -> None:
    """A plain-text input template can make any text; SQS refuses what SendMessage refuses."""
    stack = only_stack(write_assembly(tmp_path / "assembly", TEMPLATE))
    targets = Targets()
    Queues([stack], State(tmp_path / "state" / "sandbox.db"), targets)
    with pytest.raises(Failure) as refused:
        targets.deliver("arn:aws:sqs:us-east-1:000000000000:dead", Parcel("lone \ud800"))
    assert (refused.value.code, refused.value.retryable) == ("InvalidMessageContents", False)
