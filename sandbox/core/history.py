"""What happened, as typed records: one dataclass per kind, written by the service that saw it
and read by the console, `trace`, the bench and the tests.

Each record is stored as JSON in the `history` table of `State` with its `KIND`. A record read
back is the same dataclass it was written as, so a reader never rebuilds a tuple or guesses a
key: a field added here is seen by every reader at once. Fields a newer sandbox wrote and this
one does not know are dropped on reading, so an old state folder stays readable.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sandbox.traces.context import Stamp, claim


@dataclass(frozen=True)
class Traced:
    """What makes a record a span of a trace: its place there, taken when it is created (the
    span of work under way it belongs to, `sandbox.traces.context`), kept in the history row's
    own columns rather than in its JSON."""

    KIND: ClassVar[str]
    stamp: Stamp = field(default=None, kw_only=True, compare=False, repr=False)  # type: ignore

    def __post_init__(self) -> None:
        if self.stamp is None:
            object.__setattr__(self, "stamp", claim(self.KIND))


@dataclass(frozen=True)
class EventPut(Traced):
    """An event EventBridge accepted on a bus, and the rules it matched there."""

    KIND: ClassVar[str] = "event"
    bus: str
    event: dict[str, Any]
    rules: list[str]
    # How it came: "put-events" (a PutEvents call), "schedule" (a scheduled rule fired), "bus"
    # (another bus's rule forwarded it), "destination" (a Lambda destination on this bus).
    via: str = "put-events"


@dataclass(frozen=True)
class DeliveryAttempt(Traced):
    """One try at handing an event (or a schedule's payload) to one target."""

    KIND: ClassVar[str] = "delivery"
    event_id: str
    rule: str  # the rule's name, or the schedule's
    target_id: str
    target: str  # the target's ARN
    attempt: int
    ok: bool
    error_code: str | None = None
    error_message: str | None = None
    # What the target received when it was not the event itself: Input, InputPath or
    # InputTransformer applied (the journey shows "input transformed").
    input: str | None = None


@dataclass(frozen=True)
class InvocationRun(Traced):
    """One run of a function, whatever started it."""

    KIND: ClassVar[str] = "invocation"
    request_id: str
    function: str
    service: str  # the construct's display name
    ok: bool
    started: float
    delivered: float | None
    duration_ms: float
    init_duration_ms: float | None
    max_memory_mb: int
    memory_mb: int
    trigger: str = "event"  # "api", "event", "authorizer", "destination", "invoke"
    attempt: int | None = None
    api_request_id: str | None = None
    received: float | None = None  # when API Gateway received the request
    event_id: str | None = None
    rule: str | None = None
    target_id: str | None = None
    response: str | None = None  # the start of a synchronous answer
    error_type: str | None = None
    error_message: str | None = None
    version: str | None = None  # the executed version, when not $LATEST (through an alias)


@dataclass(frozen=True)
class DeadLetter(Traced):
    """Work that ended undone: in a dead-letter queue or destination, or dropped (`queue` None).

    `source` says whose retries ran out: "eventbridge" (a rule or schedule target; `attributes`
    are the ones EventBridge sets), "lambda" (an asynchronous invocation; `record` is Lambda's
    invocation record).
    """

    KIND: ClassVar[str] = "dead-letter"
    queue: str | None
    source: str
    event_id: str | None = None
    event: dict[str, Any] | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    function: str | None = None  # the function's display name
    record: dict[str, Any] | None = None
    rule: str | None = None
    target_id: str | None = None
    route: str | None = None  # Lambda's: "OnFailure" (a destination) or "DeadLetterConfig"


@dataclass(frozen=True)
class ScheduleFired(Traced):
    """A schedule came due: a rule's `ScheduleExpression` or an `AWS::Scheduler::Schedule`."""

    KIND: ClassVar[str] = "schedule"
    schedule: str  # the rule's or schedule's name
    expression: str
    scheduled_time: str  # the time it was due, as AWS writes it (2026-11-29T10:00:00Z)
    event_id: str | None = None  # the Scheduled Event of a rule
    manual: bool = False  # fired by `sandbox fire`, not by the clock


@dataclass(frozen=True)
class DestinationTaken(Traced):
    """Lambda sent an asynchronous invocation's record to a destination or dead-letter queue."""

    KIND: ClassVar[str] = "destination"
    function: str
    request_id: str
    condition: str  # "Success", "RetriesExhausted", "EventAgeExceeded", ...
    destination: str  # the ARN
    route: str  # "OnSuccess", "OnFailure" or "DeadLetterConfig"
    ok: bool  # the destination accepted it
    event_id: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class AuthorizerRan(Traced):
    """API Gateway asked a Lambda authorizer (or its cache) about one request."""

    KIND: ClassVar[str] = "authorizer"
    api_request_id: str
    authorizer: str
    function: str
    effect: str  # "Allow", "Deny", "Unauthorized" or "Error"
    cached: bool
    principal_id: str | None = None


@dataclass(frozen=True)
class MessageQueued(Traced):
    """A message entered a queue: sent through SQS's API, or handed over by a rule, a topic, a
    destination or a dead-letter route (`via`)."""

    KIND: ClassVar[str] = "queued"
    queue: str  # the queue's ARN
    message_id: str
    body: str  # its first 4 KB: what it is about (an order ID...)
    via: str  # "api", or what handed it over


@dataclass(frozen=True)
class BatchRun(Traced):
    """An event source mapping handed a batch to its function, and what became of it."""

    KIND: ClassVar[str] = "batch"
    source: str  # the queue's or stream's ARN
    function: str
    request_id: str
    message_ids: list[str]  # SQS message ids, or stream sequence numbers
    failed_ids: list[str]  # kept for another try (all of them when the run failed)
    ok: bool


@dataclass(frozen=True)
class MessageRedriven(Traced):
    """A message received `receives` times went to its queue's dead-letter queue."""

    KIND: ClassVar[str] = "redriven"
    queue: str
    dead_letter_queue: str
    message_id: str
    receives: int


@dataclass(frozen=True)
class ApiRequest(Traced):
    """A request API Gateway answered: the entry point of its trace."""

    KIND: ClassVar[str] = "api"
    request_id: str
    api: str  # the REST API's name
    stage: str
    method: str
    path: str
    status: int
    received: float


@dataclass(frozen=True)
class AwsCall(Traced):
    """A function's call the endpoint passed on to DynamoDB Local (`up --trace-dynamodb`)."""

    KIND: ClassVar[str] = "call"
    service: str  # "DynamoDB" or "DynamoDB Streams"
    operation: str  # "UpdateItem"
    table: str | None  # the table it named (the first, for a batch or a transaction)
    status: int
    request_id: str | None = None  # x-amzn-RequestId of the answer
    error_code: str | None = None


Record = (ApiRequest | EventPut | DeliveryAttempt | InvocationRun | DeadLetter | ScheduleFired
          | DestinationTaken | AuthorizerRan | MessageQueued | BatchRun | MessageRedriven
          | AwsCall)
KINDS: dict[str, type] = {
    kind.KIND: kind
    for kind in (ApiRequest, EventPut, DeliveryAttempt, InvocationRun, DeadLetter, ScheduleFired,
                 DestinationTaken, AuthorizerRan, MessageQueued, BatchRun, MessageRedriven,
                 AwsCall)
}


@dataclass(frozen=True)
class Entry:
    """A record as the history keeps it: its place (`id`, growing) and when its work ended: when
    it was written, or before, for a record committed with the work it handed on (`Stamp.end`)."""

    id: int
    at: float
    record: Record

    @property
    def kind(self) -> str:
        return self.record.KIND


def dumps(record: Record) -> str:
    # Not dataclasses.asdict: it copies nested values recursively, and an event's detail may be
    # nested as deep as EventBridge allows, deeper than Python's recursion limit.
    return json.dumps({f.name: getattr(record, f.name) for f in dataclasses.fields(record)
                       if f.name != "stamp"})


def loads(kind: str, text: str, stamp: Stamp | None = None) -> Record:
    """A record read back; `stamp` from its row (without one, it gets a trace of its own)."""
    cls = KINDS[kind]
    data = json.loads(text)
    known = {f.name for f in dataclasses.fields(cls)} - {"stamp"}
    return cls(**{k: v for k, v in data.items() if k in known}, stamp=stamp)
