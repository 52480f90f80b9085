"""What Lambda writes about an invocation, pure: the history record of a run, and the invocation
record it sends to an asynchronous invocation's destination.

The destination record has the shape of AWS's documentation ("Capturing records of Lambda
asynchronous invocations"): `version`, `timestamp`, `requestContext` (`requestId`,
`functionArn` with its qualifier, `condition`, `approximateInvokeCount`), `requestPayload`,
`responseContext` (`statusCode`, `executedVersion`, `functionError` on failure) and
`responsePayload`. Sent to an event bus, it is the `detail` of an event whose source is `lambda`,
whose detail-type is "Lambda Function Invocation Result - Success" or "- Failure", and whose
`resources` are the bus's ARN then the function's qualified ARN (as events captured from AWS
show them). An invocation that never ran (reserved concurrency 0: condition
`ZeroReservedConcurrency`, `approximateInvokeCount` 0) has no `responseContext` nor
`responsePayload`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.assembly import ACCOUNT
from sandbox.core import ids
from sandbox.core.history import InvocationRun
from sandbox.lambda_.runtime_api import Invocation

# The condition of an asynchronous invocation Lambda refused to run at all.
ZERO_RESERVED_CONCURRENCY = "ZeroReservedConcurrency"
SUCCESS_DETAIL_TYPE = "Lambda Function Invocation Result - Success"
FAILURE_DETAIL_TYPE = "Lambda Function Invocation Result - Failure"


def error_of(invocation: Invocation) -> dict[str, Any]:
    try:
        error = json.loads(invocation.payload)
    except ValueError:
        error = None
    if not isinstance(error, dict):
        error = {"errorMessage": invocation.payload.decode(errors="replace")}
    error.setdefault("errorType", invocation.error_type)
    return error


def invocation_record(invocation: Invocation, label: str, context: dict[str, Any]
                      ) -> InvocationRun:
    error = {} if invocation.ok else error_of(invocation)
    response = None
    if context.get("trigger") == "api":
        # The answer says what the request created (e.g. an order ID): keep its start.
        response = invocation.payload[:4096].decode(errors="replace")
    return InvocationRun(
        request_id=invocation.request_id,
        function=invocation.function,
        service=label,
        ok=invocation.ok,
        started=invocation.started,
        delivered=invocation.delivered,
        duration_ms=round(invocation.duration_ms, 2),
        init_duration_ms=invocation.init_duration_ms,
        max_memory_mb=invocation.max_memory_mb,
        memory_mb=invocation.memory_mb,
        trigger=context.get("trigger", "event"),
        attempt=context.get("attempt"),
        api_request_id=context.get("api_request_id"),
        received=context.get("received"),
        event_id=context.get("event_id"),
        rule=context.get("rule"),
        target_id=context.get("target_id"),
        response=response,
        error_type=error.get("errorType"),
        error_message=error.get("errorMessage"),
        version=None if invocation.version == "$LATEST" else invocation.version,
    )


def _timestamp(now: datetime) -> str:
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class DestinationRecord:
    record: dict[str, Any]
    function_arn: str
    success: bool

    def body(self, destination_arn: str) -> str:
        """What the destination receives: the record, or on a bus the event that carries it."""
        if ":event-bus/" not in destination_arn:
            return json.dumps(self.record)
        region = destination_arn.split(":")[3]
        return json.dumps({
            "version": "0",
            "id": ids.uuid4(),
            "detail-type": SUCCESS_DETAIL_TYPE if self.success else FAILURE_DETAIL_TYPE,
            "source": "lambda",
            "account": ACCOUNT,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [destination_arn, qualified(self.function_arn)],
            "detail": self.record,
        })


def qualified(function_arn: str) -> str:
    """The ARN a record names: as invoked (`:live`, `:3`), `:$LATEST` when it was unqualified."""
    return function_arn if function_arn.count(":") == 7 else f"{function_arn}:$LATEST"


def destination_event(
    function_arn: str,
    job_payload: dict[str, Any],
    invoke_count: int,
    condition: str,
    invocation: Invocation | None,
    failure: Exception | None,
) -> DestinationRecord:
    """The invocation record Lambda sends to an OnSuccess or OnFailure destination.

    `invocation` is the last run (None when the function could not run at all); `failure` is
    set when the invocation failed.
    """
    success = failure is None
    response_context: dict[str, Any] = {
        "statusCode": 200, "executedVersion": invocation.version if invocation else "$LATEST"}
    response_payload: Any = None
    if condition == ZERO_RESERVED_CONCURRENCY:
        response_context = {}
    elif invocation is None:
        response_payload = {"errorType": getattr(failure, "code", "ServiceException"),
                                 "errorMessage": str(failure)}
        response_context = {"statusCode": 404 if failure else 200}
    elif success:
        try:
            response_payload = json.loads(invocation.payload)
        except ValueError:
            response_payload = invocation.payload.decode(errors="replace")
    else:
        response_payload = error_of(invocation)
        response_context["functionError"] = "Unhandled"
    body = job_payload["body"]
    try:
        request_payload: Any = json.loads(body)
    except ValueError:
        request_payload = body
    record = {
        "version": "1.0",
        "timestamp": _timestamp(datetime.now(UTC)),
        "requestContext": {
            "requestId": job_payload["request_id"],
            "functionArn": qualified(function_arn),
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": request_payload,
    }
    if response_context:
        record["responseContext"] = response_context
        record["responsePayload"] = response_payload
    return DestinationRecord(record, function_arn, success)
