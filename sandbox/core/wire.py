"""What every service's wire layer shares: the answer as (status, headers, body), and the error
shape of AWS's JSON protocols (`{"__type": code, "message": ...}` with `x-amzn-ErrorType`),
which EventBridge, SQS, Logs and DynamoDB all answer with."""

from __future__ import annotations

import json

Response = tuple[int, list[tuple[str, str]], bytes]
AWS_JSON = "application/x-amz-json-1.1"


def aws_error(status: int, code: str, message: str, content_type: str = AWS_JSON) -> Response:
    body = json.dumps({"__type": code, "message": message}).encode()
    return status, [("Content-Type", content_type), ("x-amzn-ErrorType", code)], body


def json_answer(value: object, content_type: str = AWS_JSON) -> Response:
    return 200, [("Content-Type", content_type)], json.dumps(value).encode()


def json_request(body: bytes) -> dict | None:
    """A JSON protocol's request body as an object; None when it is not one (AWS answers
    `SerializationException`)."""
    try:
        request = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
        return None
    return request if isinstance(request, dict) else None
