"""EventBridge's wire protocol: AWS JSON 1.1, the operation named by `X-Amz-Target:
AWSEvents.<Operation>`. Parses the request, calls the backend, shapes its answer or error."""

from __future__ import annotations

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


def handle(bus: EventBus, operation: str, body: bytes) -> Response:
    if operation not in OPERATIONS:
        return aws_error(400, "UnknownOperationException",
                         f"The sandbox does not emulate EventBridge {operation}")
    request = json_request(body)
    if request is None:
        return aws_error(400, "SerializationException", "Start of structure or map found")
    try:
        return json_answer(OPERATIONS[operation](bus, request))
    except EventsApiError as error:
        return aws_error(400, error.code, error.message)
