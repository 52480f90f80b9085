"""Bad input to SQS gets AWS's answer, as boto3 shows it, from a running sandbox: the code boto3
reports is SQS's query-compatible one (`x-amzn-query-error`), its exception class the JSON
`__type`'s. The answers are those of the SQS API reference and of AWS as users have recorded
them ("One or more parameters are invalid. Reason: Message must be shorter than ... bytes.";
"Value ... for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.").

The queue used is `queue_load`'s dead-letter queue: nothing consumes it in the shared sandbox.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError
from breadth_sandbox import breadth  # noqa: F401
from queue_accounting import url_of
from sandbox_process import SandboxProcess

pytestmark = pytest.mark.slow

MAX_SIZE = 1_048_576


@pytest.fixture
def queue(breadth: SandboxProcess) -> tuple[Any, str]:  # noqa: F811
    return breadth.client("sqs"), url_of(breadth, "QueueLoadDeadLetters")


def error_of(call: Any, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return raised.value.response["Error"]


def test_an_oversized_message_is_refused_whole_or_as_its_batch_entry(
        queue: tuple[Any, str]) -> None:
    sqs, url = queue
    error = error_of(sqs.send_message, QueueUrl=url, MessageBody="x" * (MAX_SIZE + 1))
    assert (error["Code"], error["Message"]) == (
        "InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be "
                                 f"shorter than {MAX_SIZE} bytes.")
    # The attributes count towards the size.
    error = error_of(sqs.send_message, QueueUrl=url, MessageBody="x" * (MAX_SIZE - 3),
                     MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    assert error["Code"] == "InvalidParameterValue"
    error = error_of(sqs.send_message_batch, QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "x" * (MAX_SIZE // 2 + 1)},
        {"Id": "b", "MessageBody": "x" * (MAX_SIZE // 2 + 1)}])
    assert error["Code"] == "AWS.SimpleQueueService.BatchRequestTooLong"
    assert error["Message"] == (f"Batch requests cannot be longer than {MAX_SIZE} bytes. "
                                f"You have sent {MAX_SIZE + 2} bytes.")


def test_invalid_attributes_are_refused_with_the_attribute_named(
        queue: tuple[Any, str]) -> None:
    sqs, url = queue
    error = error_of(sqs.send_message, QueueUrl=url, MessageBody="{}", MessageAttributes={
        "count": {"DataType": "Number", "StringValue": "many"}})
    assert (error["Code"], error["Message"]) == (
        "InvalidParameterValue",
        "Can't cast the value of message (user) attribute 'count' to a number.")
    error = error_of(sqs.send_message, QueueUrl=url, MessageBody="{}", MessageAttributes={
        "AWS.mine": {"DataType": "String", "StringValue": "v"}})
    assert error["Code"] == "InvalidParameterValue"
    assert "'AWS.mine' is invalid" in error["Message"]
    # In a batch, only the bad entry fails, with the same code and message.
    answer = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "bad", "MessageBody": "{}", "MessageAttributes": {
            "count": {"DataType": "Number", "StringValue": "many"}}}])
    assert answer["Failed"] == [{
        "Id": "bad", "SenderFault": True, "Code": "InvalidParameterValue",
        "Message": "Can't cast the value of message (user) attribute 'count' to a number."}]
    with pytest.raises(sqs.exceptions.InvalidAttributeName) as raised:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Colour"])
    assert raised.value.response["Error"]["Message"] == "Unknown Attribute Colour."


def test_an_unknown_queue_url_is_queue_does_not_exist(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    unknown = url.rsplit("/", 1)[0] + "/no-such-queue"
    for call, kwargs in ((sqs.send_message, {"MessageBody": "{}"}),
                         (sqs.receive_message, {}),
                         (sqs.get_queue_attributes, {"AttributeNames": ["All"]})):
        with pytest.raises(sqs.exceptions.QueueDoesNotExist) as raised:
            call(QueueUrl=unknown, **kwargs)
        assert raised.value.response["Error"] == {
            "Code": "AWS.SimpleQueueService.NonExistentQueue",
            "Message": "The specified queue does not exist.",
            "QueryErrorCode": "QueueDoesNotExist", "Type": "Sender"}
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="no-such-queue")


def test_a_receipt_handle_expires_when_its_message_is_received_again(
        queue: tuple[Any, str]) -> None:
    sqs, url = queue
    sent = sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"expires": True}))
    (first,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    (again,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"]
    assert first["MessageId"] == again["MessageId"] == sent["MessageId"]
    old = first["ReceiptHandle"]

    error = error_of(sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=old,
                     VisibilityTimeout=10)
    assert (error["Code"], error["Message"]) == (
        "InvalidParameterValue",
        f"Value {old} for parameter ReceiptHandle is invalid. Reason: The receipt handle has "
        "expired.")
    # On a standard queue, deleting by an old handle succeeds and deletes nothing.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=old)
    answer = sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"],
                                           VisibilityTimeout=0)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-one-the-sandbox-gave")


def post(sandbox: SandboxProcess, target: str, body: bytes) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(sandbox.url, data=body, method="POST", headers={
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_a_malformed_body_is_a_serialization_exception(breadth: SandboxProcess) -> None:  # noqa: F811
    status, headers, body = post(breadth, "AmazonSQS.SendMessage", b"{not json")
    assert status == 400
    assert body["__type"] == "com.amazonaws.sqs#SerializationException"
    assert headers["x-amzn-query-error"] == "SerializationException;Sender"


def test_an_operation_the_sandbox_does_not_emulate_is_unsupported(
        queue: tuple[Any, str]) -> None:
    sqs, _ = queue
    with pytest.raises(sqs.exceptions.UnsupportedOperation) as raised:
        sqs.create_queue(QueueName="made-at-run-time")
    error = raised.value.response["Error"]
    assert error["Code"] == "AWS.SimpleQueueService.UnsupportedOperation"
    assert "does not emulate SQS CreateQueue" in error["Message"]
