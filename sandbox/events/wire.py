"""EventBridge's wire protocol: AWS JSON 1.1, the operation named by `X-Amz-Target:
AWSEvents.<Operation>`. Parses the request, calls the backend, shapes its answer or error.

Paging is the wire's: the backend answers whole lists, and ListRules / ListTargetsByRule hand
them out `Limit` at a time (1-100, the service model's `LimitMax100`; 100 when absent) with an
opaque `NextToken` for the rest. An out-of-range Limit gets the validation message AWS's model
layer words; a NextToken this sandbox did not give out is refused as a ValidationException
(AWS's exact message for it is not documented).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from sandbox.core.state import StorageFull
from sandbox.core.wire import Response, aws_error, json_answer, json_request
from sandbox.events.backend import EventBus, EventsApiError

TARGET_PREFIX = "AWSEvents."
OPERATIONS = {
    "PutEvents": EventBus.put_events,
    "TestEventPattern": EventBus.test_event_pattern,
    "ListEventBuses": EventBus.list_event_buses,
    "ListRules": EventBus.list_rules,
    "DescribeRule": EventBus.describe_rule,
    "ListTargetsByRule": EventBus.list_targets_by_rule,
}
PAGED = {"ListRules": "Rules", "ListTargetsByRule": "Targets"}  # operation -> its list
MAX_LIMIT = 100


def handle(bus: EventBus, operation: str, body: bytes) -> Response:
    if operation not in OPERATIONS:
        return aws_error(400, "UnknownOperationException",
                         f"The sandbox does not emulate EventBridge {operation}")
    request = json_request(body)
    if request is None:
        return aws_error(400, "SerializationException", "Start of structure or map found")
    try:
        if operation in PAGED:
            start, limit = _paging(request, operation)
            return json_answer(_page(OPERATIONS[operation](bus, request), PAGED[operation],
                                     operation, start, limit))
        return json_answer(OPERATIONS[operation](bus, request))
    except EventsApiError as error:
        return aws_error(400, error.code, error.message)
    except StorageFull as full:  # nothing was accepted: the caller may try again
        return aws_error(500, "InternalException", str(full))


def _paging(request: dict[str, Any], operation: str) -> tuple[int, int]:
    """(first index, page size) the request asks for."""
    limit = request.get("Limit", MAX_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise EventsApiError("SerializationException", "Limit must be an integer")
    if not 1 <= limit <= MAX_LIMIT:
        bound = "greater than or equal to 1" if limit < 1 else f"less than or equal to {MAX_LIMIT}"
        raise EventsApiError("ValidationException",
                             f"1 validation error detected: Value '{limit}' at 'limit' failed to "
                             f"satisfy constraint: Member must have value {bound}")
    token = request.get("NextToken")
    return (0 if token is None else _offset(token, operation)), limit


def _token(operation: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([operation, offset]).encode()).decode()


def _offset(token: Any, operation: str) -> int:
    try:
        name, offset = json.loads(base64.urlsafe_b64decode(str(token).encode()))
    except (ValueError, TypeError, binascii.Error):
        name, offset = None, None
    if name != operation or not isinstance(offset, int) or offset < 1:
        raise EventsApiError("ValidationException", "The NextToken provided is not valid.")
    return offset


def _page(answer: dict[str, Any], key: str, operation: str, start: int,
          limit: int) -> dict[str, Any]:
    items = answer[key]
    paged = {**answer, key: items[start:start + limit]}
    if start + limit < len(items):
        paged["NextToken"] = _token(operation, start + limit)
    return paged
