"""DynamoDB and DynamoDB Streams on the sandbox's endpoint: every call is passed as it is to
DynamoDB Local, whose port the sandbox does not advertise. One kept-alive connection per
endpoint thread.

By default the functions call DynamoDB Local directly (`AWS_ENDPOINT_URL_DYNAMODB`): passing a
call through here cost 0.45-0.5 ms more per `UpdateItem` (p50 over 600 calls each way, taking
turns, on the 2-core machine: 2.37 against 2.82 ms), and an order's critical path holds three
writes, more than the traces' budget of 1 ms an order. With `up --trace-dynamodb` the functions
call through here, and each call that carries a trace (botocore sends the invocation's
`X-Amzn-Trace-Id`) is recorded as a span under its invocation, as X-Ray shows a DynamoDB
subsegment: `call_record` is what it records, pure.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from sandbox.core.history import AwsCall
from sandbox.core.wire import Response, aws_error
from sandbox.traces import context as traces

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}
# DynamoDB's API and its Streams API (stream ARNs are DynamoDB Local's: region `ddblocal`).
TARGET_PREFIXES = ("DynamoDB_", "DynamoDBStreams_")


def call_record(headers: Mapping[str, str], body: bytes, answer: Response) -> AwsCall:
    """What one passed-through call was: its operation, the table it named, and how it ended
    (the error's code without its namespace: `ConditionalCheckFailedException`)."""
    prefix, _, operation = headers.get("x-amz-target", "").partition(".")
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        request = {}
    status, answer_headers, data = answer
    error_code = None
    if status >= 400:
        try:
            error_code = str(json.loads(data).get("__type", "")).rsplit("#", 1)[-1] or None
        except (ValueError, AttributeError):
            error_code = None
    request_id = next((v for k, v in answer_headers if k.lower() == "x-amzn-requestid"), None)
    return AwsCall("DynamoDB Streams" if prefix.startswith("DynamoDBStreams_") else "DynamoDB",
                   operation, table_of(request), status, request_id, error_code)


def table_of(request: object) -> str | None:
    """The table a request names: `TableName`, or the first of a batch's `RequestItems` or of a
    transaction's items; a stream's calls name none (their ARN says it)."""
    if not isinstance(request, dict):
        return None
    if isinstance(request.get("TableName"), str):
        return request["TableName"]
    items = request.get("RequestItems")
    if isinstance(items, dict) and items:
        return str(next(iter(items)))
    for item in request.get("TransactItems") or ():
        for action in item.values() if isinstance(item, dict) else ():
            if isinstance(action, dict) and isinstance(action.get("TableName"), str):
                return action["TableName"]
    return None


class DynamoDBPassThrough:
    def __init__(self, dynamodb_url: str,
                 record: Callable[[AwsCall], None] | None = None) -> None:
        """`record`: where a traced call's span goes (`State.record`); None records nothing."""
        self.dynamodb = urlsplit(dynamodb_url)
        self.record = record
        self._local = threading.local()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        if self.record is None or traces.current() is None:
            return self._forward(method, path, headers, body)
        with traces.span(AwsCall.KIND):
            answer = self._forward(method, path, headers, body)
            self.record(call_record(headers, body, answer))
        return answer

    def _forward(self, method: str, path: str, headers: dict[str, str],
                 body: bytes) -> Response:
        connection = getattr(self._local, "dynamodb", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.dynamodb.hostname, self.dynamodb.port,
                                                    timeout=30)
            self._local.dynamodb = connection
        forwarded = {k: v for k, v in headers.items() if k not in HOP_BY_HOP}
        try:
            connection.request(method, path, body, forwarded)
            answer = connection.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException):
            self._local.dynamodb = None
            connection.close()
            return aws_error(503, "ServiceUnavailable", "DynamoDB Local is not answering")
        passed = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
        return answer.status, passed, data
