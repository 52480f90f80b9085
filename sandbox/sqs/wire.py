"""SQS's wire protocol as current SDKs speak it: AWS JSON 1.0, the operation named by
`X-Amz-Target: AmazonSQS.<Operation>`.

Errors carry SQS's query-compatible code in `x-amzn-query-error` ("AWS.SimpleQueueService.
NonExistentQueue;Sender"), which is the code boto3 reports, and `__type` in the body
("com.amazonaws.sqs#QueueDoesNotExist"), as the SQS developer guide shows.
"""

from __future__ import annotations

import json
from typing import Any

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
