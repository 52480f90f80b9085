"""Spans and traces as people read them, built from history records.

A record says what happened in a service's own terms; its span says it the same way for every
kind: a name, a kind (OpenTelemetry's: SERVER for an API request, CONSUMER for an invocation or
a delivery, PRODUCER for an event or message put, INTERNAL for the rest), the resource it
touched, a status with the reason of a failure, and attributes named by OpenTelemetry's semantic
conventions (`faas.*` for invocations, `messaging.*` for events and messages, `rpc.*`/`aws.*`
for AWS calls, `http.*` for API requests), so a collector such as Jaeger shows them as it shows
any other service's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.core.history import (
    ApiRequest,
    AuthorizerRan,
    AwsCall,
    BatchRun,
    DeadLetter,
    DeliveryAttempt,
    DestinationTaken,
    Entry,
    EventPut,
    InvocationRun,
    MessageQueued,
    MessageRedriven,
    Record,
    ScheduleFired,
)
from sandbox.journey import strings_in, values_in_message

MAX_VALUE = 256  # longer strings are content, not something one searches by


@dataclass(frozen=True)
class Span:
    id: int  # the history row: the cursor
    trace_id: str
    span_id: str
    parent_id: str | None
    start: float
    end: float
    kind: str  # the record's KIND
    name: str
    span_kind: str  # SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL
    service: str  # who did it: a function's display name, "EventBridge", "SQS"...
    resource: str | None
    ok: bool
    reason: str | None  # why it failed, or where it went
    attributes: dict[str, Any]
    record: Record

    @property
    def duration_ms(self) -> float:
        return round((self.end - self.start) * 1000, 2)

    def as_dict(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "span_id": self.span_id, "parent_id": self.parent_id,
                "start": self.start, "end": self.end, "duration_ms": self.duration_ms,
                "kind": self.kind, "name": self.name, "span_kind": self.span_kind,
                "service": self.service, "resource": self.resource, "ok": self.ok,
                "reason": self.reason, "attributes": self.attributes, "cursor": self.id}


@dataclass
class Trace:
    """One trace's spans as a tree: `roots` are the spans whose parent is not in it (the entry
    point, or spans whose parent was never recorded)."""

    trace_id: str
    spans: list[Span]
    children: dict[str, list[Span]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = {s.span_id for s in self.spans}
        for s in sorted(self.spans, key=lambda s: (s.start, s.id)):
            self.children.setdefault(s.parent_id if s.parent_id in ids else "", []).append(s)

    @property
    def roots(self) -> list[Span]:
        return self.children.get("", [])

    @property
    def start(self) -> float:
        return min(s.start for s in self.spans)

    @property
    def end(self) -> float:
        return max(s.end for s in self.spans)

    def walk(self) -> list[tuple[int, Span]]:
        """Each span with its depth, parents before children, siblings by start."""
        out: list[tuple[int, Span]] = []
        todo = [(0, s) for s in reversed(self.roots)]
        while todo:
            depth, s = todo.pop()
            out.append((depth, s))
            todo += [(depth + 1, c) for c in reversed(self.children.get(s.span_id, []))]
        return out

    def summary(self) -> dict[str, Any]:
        entry = self.roots[0] if self.roots else self.spans[0]
        failed = [s for s in self.spans if not s.ok]
        return {"trace_id": self.trace_id, "entry": entry.name, "start": self.start,
                "duration_ms": round((self.end - self.start) * 1000, 2),
                "ok": not failed, "errors": [f"{s.name}: {s.reason}" for s in failed],
                "services": sorted({s.service for s in self.spans}), "spans": len(self.spans)}

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary(), "spans": [{**s.as_dict(), "depth": d} for d, s in self.walk()]}


def span_of(entry: Entry) -> Span:
    record = entry.record
    stamp = record.stamp
    start = stamp.start
    end = entry.at
    if isinstance(record, InvocationRun):  # a cold start's init is part of its invocation
        ran_ms = record.duration_ms + (record.init_duration_ms or 0)
        start, end = record.started, record.started + ran_ms / 1000
    described = _describe(record)
    return Span(entry.id, stamp.trace_id, stamp.span_id, stamp.parent_id, min(start, end), end,
                record.KIND, *described, record)


def resource_of(record: Record) -> str | None:
    """The ARN (or name) a record is about, for the by-resource views."""
    for name in ("function", "queue", "bus", "target", "schedule", "source", "table"):
        value = getattr(record, name, None)
        if isinstance(value, str):
            return value
    if isinstance(record, ApiRequest):
        return record.api
    return None


def values_of(record: Record) -> set[str]:
    """What a record is found by: the ids it carries and the strings of its event, answer or
    message (an order ID), short enough to be searched for."""
    values: set[str] = set()
    for name in ("request_id", "api_request_id", "message_id", "event_id"):
        value = getattr(record, name, None)
        if isinstance(value, str):
            values.add(value)
    if isinstance(record, EventPut):
        values.add(str(record.event.get("id", "")))
        values |= set(strings_in(record.event.get("detail")))
    elif isinstance(record, InvocationRun) and record.response is not None:
        values |= set(strings_in(record.response))
    elif isinstance(record, MessageQueued):
        values |= values_in_message(record.body)
    elif isinstance(record, BatchRun):
        values |= set(record.message_ids)
    return {v for v in values if v and len(v) <= MAX_VALUE}


Described = tuple[str, str, str, str | None, bool, str | None, dict[str, Any]]


def _describe(record: Record) -> Described:
    """name, span kind, service, resource, ok, reason, attributes."""
    resource = resource_of(record)
    if isinstance(record, ApiRequest):
        return (f"{record.method} {record.path}", "SERVER", "API Gateway", resource,
                record.status < 500, None if record.status < 400 else f"HTTP {record.status}",
                {"http.request.method": record.method, "url.path": record.path,
                 "http.response.status_code": record.status, "aws.api_gateway.stage":
                 record.stage, "aws.request_id": record.request_id})
    if isinstance(record, InvocationRun):
        reason = None if record.ok else f"{record.error_type}: {record.error_message}"
        attributes = {"faas.invocation_id": record.request_id, "faas.name": record.service,
                      "cloud.resource_id": record.function, "faas.trigger": _trigger(record),
                      "faas.coldstart": record.init_duration_ms is not None,
                      "faas.max_memory": record.memory_mb * 1024 * 1024}
        if record.attempt:
            attributes["aws.lambda.attempt"] = record.attempt
        return (f"{record.service} invoke", "CONSUMER" if record.trigger != "api" else "SERVER",
                record.service, resource, record.ok, reason, attributes)
    if isinstance(record, EventPut):
        return (f"{record.event.get('detail-type', 'event')} put", "PRODUCER", "EventBridge",
                resource, True, None,
                {"messaging.system": "aws.eventbridge", "messaging.operation.type": "publish",
                 "messaging.destination.name": record.bus,
                 "messaging.message.id": str(record.event.get("id", "")),
                 "rpc.system": "aws-api", "rpc.service": "EventBridge", "rpc.method": "PutEvents",
                 "aws.eventbridge.source": str(record.event.get("source", "")),
                 "aws.eventbridge.rules": record.rules, "aws.eventbridge.via": record.via})
    if isinstance(record, DeliveryAttempt):
        reason = None if record.ok else f"{record.error_code}: {record.error_message}"
        return (f"{record.rule} -> {record.target_id} (try {record.attempt})", "CONSUMER",
                "EventBridge", resource, record.ok, reason,
                {"messaging.system": "aws.eventbridge", "messaging.operation.type": "process",
                 "messaging.message.id": record.event_id, "aws.eventbridge.rule": record.rule,
                 "aws.eventbridge.target": record.target, "aws.retry.attempt": record.attempt})
    if isinstance(record, DeadLetter):
        where = record.queue or "dropped"
        reason = record.attributes.get("ERROR_MESSAGE") or _lambda_reason(record)
        # Lambda's OnFailure route is a destination, its DeadLetterConfig a dead-letter queue.
        name = "OnFailure destination" if record.route == "OnFailure" else "dead letter"
        routed = {"aws.lambda.route": record.route, "aws.lambda.destination": where,
                  "aws.lambda.condition": (record.record or {}).get("requestContext", {}).get(
                      "condition")} if record.route else {}
        return (f"{name} -> {where.split(':')[-1]}", "PRODUCER", _service(record),
                resource, False, f"{reason} (to {where})",
                {"messaging.system": _messaging_system(where),
                 "messaging.destination.name": where,
                 "aws.dead_letter.source": record.source, **routed, **{
                     f"aws.eventbridge.{k.lower()}": v for k, v in record.attributes.items()}})
    if isinstance(record, DestinationTaken):
        reason = f"{record.condition} -> {record.route} {record.destination}"
        return (f"{record.route} destination ({record.condition})", "PRODUCER", "Lambda",
                resource, record.ok and record.route == "OnSuccess",
                reason + (f": {record.error_message}" if record.error_message else ""),
                {"aws.lambda.destination": record.destination, "aws.lambda.route": record.route,
                 "aws.lambda.condition": record.condition,
                 "faas.invocation_id": record.request_id})
    if isinstance(record, MessageQueued):
        return (f"{record.queue.split(':')[-1]} send", "PRODUCER", "SQS", resource, True, None,
                {"messaging.system": "aws.sqs", "messaging.operation.type": "send",
                 "messaging.destination.name": record.queue.split(":")[-1],
                 "messaging.message.id": record.message_id, "aws.sqs.via": record.via})
    if isinstance(record, BatchRun):
        reason = None if record.ok else f"{len(record.failed_ids)} of the batch failed"
        return (f"{record.source.split(':')[-1]} batch", "CONSUMER", "Lambda", resource,
                record.ok, reason,
                {"messaging.system": "aws.sqs" if ":sqs:" in record.source else "aws.streams",
                 "messaging.batch.message_count": len(record.message_ids),
                 "faas.invocation_id": record.request_id})
    if isinstance(record, MessageRedriven):
        return (f"{record.queue.split(':')[-1]} redrive", "PRODUCER", "SQS", resource, False,
                f"received {record.receives} times: to {record.dead_letter_queue}",
                {"messaging.system": "aws.sqs", "messaging.message.id": record.message_id,
                 "aws.sqs.dead_letter_queue": record.dead_letter_queue})
    if isinstance(record, ScheduleFired):
        return (f"{record.schedule} fired", "PRODUCER", "EventBridge", resource, True, None,
                {"aws.schedule.expression": record.expression,
                 "aws.schedule.time": record.scheduled_time, "aws.schedule.manual": record.manual})
    if isinstance(record, AuthorizerRan):
        ok = record.effect == "Allow"
        return (f"authorizer {record.authorizer}", "INTERNAL", "API Gateway", resource, ok,
                None if ok else record.effect,
                {"aws.authorizer.effect": record.effect, "aws.authorizer.cached": record.cached})
    if isinstance(record, AwsCall):
        return (f"{record.service} {record.operation}", "CLIENT", record.service, resource,
                record.status < 400, record.error_code or (
                    f"HTTP {record.status}" if record.status >= 400 else None),
                {"rpc.system": "aws-api", "rpc.service": record.service.replace(" ", ""),
                 "rpc.method": record.operation, "db.system.name": "aws.dynamodb",
                 "aws.dynamodb.table_names": [record.table] if record.table else [],
                 "aws.request_id": record.request_id,
                 "http.response.status_code": record.status})
    return (record.KIND, "INTERNAL", "sandbox", resource, True, None, {})


def _trigger(record: InvocationRun) -> str:
    return {"api": "http", "event": "pubsub", "destination": "pubsub"}.get(record.trigger,
                                                                          "other")


def _lambda_reason(record: DeadLetter) -> str:
    payload = (record.record or {}).get("responsePayload") or {}
    context = (record.record or {}).get("requestContext") or {}
    message = payload.get("errorMessage") if isinstance(payload, dict) else None
    return message or str(context.get("condition", "retries exhausted"))


def _messaging_system(arn: str) -> str:
    """What a dead letter or destination went into, by its ARN's service."""
    service = arn.split(":")[2] if arn.count(":") >= 5 else "sqs"
    return {"sns": "aws.sns", "events": "aws.eventbridge", "lambda": "aws.lambda"}.get(
        service, "aws.sqs")


def _service(record: DeadLetter) -> str:
    return {"eventbridge": "EventBridge", "lambda": "Lambda", "sns": "SNS"}.get(record.source,
                                                                               record.source)
