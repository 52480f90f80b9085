"""DynamoDB and DynamoDB Streams on the sandbox's endpoint: every call is passed as it is to
DynamoDB Local, whose port the sandbox does not advertise. One kept-alive connection per
endpoint thread."""

from __future__ import annotations

import http.client
import threading
from urllib.parse import urlsplit

from sandbox.core.wire import Response, aws_error

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}
# DynamoDB's API and its Streams API (stream ARNs are DynamoDB Local's: region `ddblocal`).
TARGET_PREFIXES = ("DynamoDB_", "DynamoDBStreams_")


class DynamoDBPassThrough:
    def __init__(self, dynamodb_url: str) -> None:
        self.dynamodb = urlsplit(dynamodb_url)
        self._local = threading.local()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
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
