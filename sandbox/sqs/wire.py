"""SQS's wire protocol as current SDKs speak it: AWS JSON 1.0, the operation named by
`X-Amz-Target: AmazonSQS.<Operation>`; and as older ones do (the AWS CLI 2.9 of Debian 12):
the query protocol, at the end of this module.

Errors carry SQS's query-compatible code in `x-amzn-query-error` ("AWS.SimpleQueueService.
NonExistentQueue;Sender"), which is the code boto3 reports, and `__type` in the body
("com.amazonaws.sqs#QueueDoesNotExist"), as the SQS developer guide shows.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from sandbox.core import ids, query
from sandbox.core.state import StorageFull
from sandbox.core.wire import Response, json_request
from sandbox.sqs.backend import Queues, SqsError
from sandbox.sqs.messages import MessageError

TARGET_PREFIX = "AmazonSQS."
CONTENT_TYPE = "application/x-amz-json-1.0"
OPERATIONS = {
    "SendMessage": Queues.send_message,
    "SendMessageBatch": Queues.send_message_batch,
    "ReceiveMessage": Queues.receive_message,
    "DeleteMessage": Queues.delete_message,
    "DeleteMessageBatch": Queues.delete_message_batch,
    "ChangeMessageVisibility": Queues.change_message_visibility,
    "ChangeMessageVisibilityBatch": Queues.change_message_visibility_batch,
    "GetQueueUrl": Queues.get_queue_url,
    "GetQueueAttributes": Queues.get_queue_attributes,
    "ListQueues": Queues.list_queues,
    "PurgeQueue": Queues.purge_queue,
}
# The code SQS's query protocol gave each error, which SDKs still report.
QUERY_CODES = {
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "MessageNotInflight": "AWS.SimpleQueueService.MessageNotInflight",
    "PurgeQueueInProgress": "AWS.SimpleQueueService.PurgeQueueInProgress",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "InvalidBatchEntryId": "AWS.SimpleQueueService.InvalidBatchEntryId",
    "BatchRequestTooLong": "AWS.SimpleQueueService.BatchRequestTooLong",
    "UnsupportedOperation": "AWS.SimpleQueueService.UnsupportedOperation",
}


def error(code: str, message: str, status: int = 400) -> Response:
    query_code = QUERY_CODES.get(code, code)
    fault = "Sender" if status < 500 else "Receiver"
    body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()
    return status, [("Content-Type", CONTENT_TYPE),
                    ("x-amzn-query-error", f"{query_code};{fault}")], body


def handle(queues: Queues, operation: str, body: bytes) -> Response:
    if operation not in OPERATIONS:
        return error("UnsupportedOperation",
                     f"The sandbox serves the template's queues and does not emulate SQS "
                     f"{operation}.")
    request = json_request(body)
    if request is None:
        return error("SerializationException", "Start of structure or map found")
    try:
        answer: Any = OPERATIONS[operation](queues, request)
    except (SqsError, MessageError) as failure:
        return error(failure.code, failure.message)
    except StorageFull as full:  # SQS's common error (API reference, "Common Errors")
        return error("InternalFailure", str(full), 500)
    return 200, [("Content-Type", CONTENT_TYPE)], json.dumps(answer).encode()


# The query protocol: what SDKs older than SQS's JSON protocol (botocore before 1.31, among
# them the AWS CLI 2.9 of Debian 12) speak. The same operations, their input flattened into
# form fields (`AttributeName.1`, `MessageAttribute.1.Value.StringValue`,
# `SendMessageBatchRequestEntry.1.Id`: SQS's lists are flattened, without `.member`), answered
# in XML with flattened lists (`<Message>` repeated, `<Attribute><Name/><Value/></Attribute>`).

QUERY_NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"
# Form field -> the JSON protocol's member, for lists and maps.
_QUERY_LISTS = {"AttributeName": "AttributeNames", "MessageAttributeName": "MessageAttributeNames",
                "MessageSystemAttributeName": "MessageSystemAttributeNames"}
_QUERY_MAPS = {"Attribute": "Attributes", "MessageAttribute": "MessageAttributes",
               "MessageSystemAttribute": "MessageSystemAttributes"}
_QUERY_NUMBERS = {"MaxNumberOfMessages", "WaitTimeSeconds", "VisibilityTimeout", "DelaySeconds",
                  "MaxResults"}
# The JSON answer's list member -> the element each item is in the XML answer.
_XML_ITEMS = {"Messages": "Message", "QueueUrls": "QueueUrl", "Failed": "BatchResultErrorEntry"}


def _numbered(node: Any) -> list[Any]:
    if not isinstance(node, dict):
        return []
    return [value for _, value in sorted((int(k), v) for k, v in node.items() if k.isdigit())]


def query_request(node: dict[str, Any]) -> dict[str, Any]:
    """A JSON-protocol request from a query-protocol one (unflattened)."""
    request: dict[str, Any] = {}
    for name, value in node.items():
        if name in _QUERY_LISTS:
            request[_QUERY_LISTS[name]] = _numbered(value)
        elif name in _QUERY_MAPS:
            request[_QUERY_MAPS[name]] = {entry.get("Name", ""): entry.get("Value")
                                          for entry in _numbered(value)
                                          if isinstance(entry, dict)}
        elif name.endswith("RequestEntry"):
            request["Entries"] = [query_request(entry) for entry in _numbered(value)
                                  if isinstance(entry, dict)]
        elif name in _QUERY_NUMBERS and isinstance(value, str) and value.lstrip("-").isdigit():
            request[name] = int(value)
        elif name not in ("Action", "Version"):
            request[name] = value
    return request


def _flattened(action: str, value: Any) -> Any:
    """The XML answer's elements, from the JSON protocol's answer: lists and maps flattened."""
    if not isinstance(value, dict):
        return value
    items: list[tuple[str, Any]] = []
    for key, item in value.items():
        if key in ("Attributes", "MessageAttributes") and isinstance(item, dict):
            items += [(key[:-1], _Elements([("Name", name), ("Value", _flattened(action, v))]))
                      for name, v in item.items()]
        elif isinstance(item, list):
            element = _XML_ITEMS.get(key, f"{action}ResultEntry")
            items += [(element, _flattened(action, v)) for v in item]
        else:
            items.append((key, _flattened(action, item)))
    return _Elements(items)


class _Elements(list):
    """Child elements in order, names repeated: what a flattened XML list is."""


class SqsQueryWire:
    """SQS's operations through the query protocol (`core/query`)."""

    def __init__(self, queues: Queues) -> None:
        self.queues = queues

    def owns(self, action: str) -> bool:
        return action in OPERATIONS

    def handle(self, action: str, params: dict[str, str]) -> Response:
        try:
            result = OPERATIONS[action](self.queues, query_request(query.unflatten(params)))
        except (SqsError, MessageError) as failure:
            return query.error(400, QUERY_CODES.get(failure.code, failure.code),
                               failure.message, QUERY_NAMESPACE)
        return _xml_answer(action, _flattened(action, result))


def _xml_answer(action: str, result: Any) -> Response:
    def fill(element: ET.Element, value: Any) -> None:
        if isinstance(value, _Elements):
            for name, item in value:
                if item is not None:
                    fill(ET.SubElement(element, name), item)
        elif isinstance(value, bool):
            element.text = str(value).lower()
        else:
            element.text = str(value)

    root = ET.Element(f"{action}Response", xmlns=QUERY_NAMESPACE)
    fill(ET.SubElement(root, f"{action}Result"), result)
    metadata = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(metadata, "RequestId").text = ids.uuid4()
    return 200, [("Content-Type", "text/xml")], ET.tostring(root, encoding="utf-8")
