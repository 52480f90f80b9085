"""EventBridge Scheduler (`AWS::Scheduler::Schedule`), and the clock that fires every schedule of
the assembly on time: Scheduler's and the scheduled rules of EventBridge.

Facts, from AWS's EventBridge Scheduler user guide and CloudFormation reference:
- A schedule has one target, by ARN, with `Input` (default here `{}`), `RetryPolicy`
  (`MaximumRetryAttempts` 0-185, default 185; `MaximumEventAgeInSeconds` 60-86400, default
  86400), `DeadLetterConfig.Arn` (a standard queue), `SqsParameters.MessageGroupId` and, for an
  event bus, `EventBridgeParameters` `DetailType` and `Source` of the event it puts there.
- `Input` may carry context attributes, replaced at each try: `<aws.scheduler.schedule-arn>`,
  `<aws.scheduler.scheduled-time>`, `<aws.scheduler.execution-id>`,
  `<aws.scheduler.attempt-number>`.
- A try that fails is retried under the retry policy, then the payload goes to the DLQ with
  the message attributes `X-Amz-Scheduler-Attempt`, `-Schedule-Arn`, `-Target-Arn`, `-Group`,
  `-Error-Code` and `-Error-Message`. A target ARN that names nothing fails at once.
- `State` DISABLED: it does not fire. `FlexibleTimeWindow` FLEXIBLE: AWS fires at some moment
  in the window; locally always at its start. `ActionAfterCompletion` DELETE deletes a schedule
  after its last firing; locally it just never fires again. `StartDate`/`EndDate` bound it;
  `ScheduleExpressionTimezone` is the zone its cron or at() is read in (default UTC).
- A schedule group (`AWS::Scheduler::ScheduleGroup`) is bookkeeping: a name in the ARN.

The clock wakes at the next due time (a `Condition` waited on with that timeout, or woken when
the sandbox stops), writes each due firing as one transaction (the delivery jobs and the
`ScheduleFired` record), and computes the next. A firing missed while the sandbox was down is
not made up, as AWS does not backfill either. `python -m sandbox fire NAME` fires one now,
through the endpoint route here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.assembly import ACCOUNT, AssemblyError, Stack
from sandbox.core import ids
from sandbox.core.delivery import EVENTBRIDGE, Failure, RetryPolicy
from sandbox.core.history import DeadLetter, DeliveryAttempt, Record, ScheduleFired
from sandbox.core.jobs import STORAGE_FULL_PAUSE_S
from sandbox.core.state import Job, NewJob, State, StorageFull, Writes
from sandbox.core.targets import Parcel, Targets
from sandbox.core.wire import Response, aws_error, json_answer
from sandbox.events.backend import EventBus
from sandbox.events.schedules import (
    UTC_ZONE,
    ScheduleExpressionError,
    Timing,
    aws_time,
    parse,
)
from sandbox.traces import context as traces

SCHEDULE = "AWS::Scheduler::Schedule"
SCHEDULE_GROUP = "AWS::Scheduler::ScheduleGroup"
SCHEDULE_JOB = "schedule"  # the job kind of one firing of a schedule to its target
SCHEDULER = EVENTBRIDGE  # 185 retries within 24 h, the same backoff
ROUTE = "/sandbox/schedules"
TARGET_ID = "Target"  # a schedule has one target, with no id: the history names it so
JSON = "application/json"


@dataclass(frozen=True)
class Schedule:
    """An `AWS::Scheduler::Schedule` as the sandbox runs it."""

    name: str
    group: str
    arn: str
    target_arn: str
    input: str
    policy: RetryPolicy
    dead_letter_arn: str | None = None
    group_id: str | None = None
    bus_event: dict[str, str] = field(default_factory=dict)  # EventBridgeParameters
    expression: str = ""
    timing: Timing | None = None  # None only for a schedule gone from the template
    enabled: bool = True

    def payload(self, scheduled_time: str, execution_id: str, attempt: int) -> str:
        """The Input with its context attributes filled in for this try."""
        return (self.input
                .replace("<aws.scheduler.schedule-arn>", self.arn)
                .replace("<aws.scheduler.scheduled-time>", scheduled_time)
                .replace("<aws.scheduler.execution-id>", execution_id)
                .replace("<aws.scheduler.attempt-number>", str(attempt)))


def _date(stack: Stack, where: str, value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise AssemblyError(f"{stack.template_file}: {where}: {value!r} is not a date and "
                            "time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _zone(stack: Stack, where: str, value: Any) -> ZoneInfo:
    try:
        return ZoneInfo(str(value)) if value else UTC_ZONE
    except (ZoneInfoNotFoundError, ValueError):
        raise AssemblyError(f"{stack.template_file}: {where}: ValidationException: Invalid "
                            f"timezone {value!r}") from None


def read_schedule(stack: Stack, logical_id: str, props: dict[str, Any],
                  anchor: datetime) -> Schedule:
    where = f"Resources.{logical_id}.Properties"
    name = props.get("Name") or stack.ref(logical_id)
    group = props.get("GroupName") or "default"
    try:
        expression = parse(props.get("ScheduleExpression"), scheduler=True)
    except ScheduleExpressionError as error:
        raise AssemblyError(f"{stack.template_file}: {where}.ScheduleExpression: "
                            f"ValidationException: {error}") from None
    timing = Timing(expression, anchor,
                    _zone(stack, f"{where}.ScheduleExpressionTimezone",
                          props.get("ScheduleExpressionTimezone")),
                    _date(stack, f"{where}.StartDate", props.get("StartDate")),
                    _date(stack, f"{where}.EndDate", props.get("EndDate")))
    target = props.get("Target") or {}
    if "Arn" not in target:
        raise AssemblyError(f"{stack.template_file}: {where}.Target: Target.Arn is required")
    retry = target.get("RetryPolicy") or {}
    return Schedule(
        name=name, group=group,
        arn=f"arn:aws:scheduler:{stack.region}:{ACCOUNT}:schedule/{group}/{name}",
        target_arn=target["Arn"], input=target.get("Input", "{}"),
        policy=SCHEDULER.limited(retry.get("MaximumRetryAttempts"),
                                 retry.get("MaximumEventAgeInSeconds")),
        dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
        group_id=(target.get("SqsParameters") or {}).get("MessageGroupId"),
        bus_event=target.get("EventBridgeParameters") or {},
        expression=expression.text, timing=timing,
        enabled=props.get("State", "ENABLED") == "ENABLED",
    )


class EventBridgeScheduler:
    """Every `AWS::Scheduler::Schedule` of the assembly, by name."""

    def __init__(self, stacks: list[Stack], targets: Targets, anchor: datetime) -> None:
        self.targets = targets
        self.schedules: dict[str, Schedule] = {}
        for stack in stacks:
            for resource in stack.of_type(SCHEDULE):
                props = stack.properties(resource.logical_id)
                schedule = read_schedule(stack, resource.logical_id, props, anchor)
                self.schedules[schedule.name] = schedule

    def fire(self, schedule: Schedule, due: datetime, manual: bool = False) -> Writes:
        """A schedule came due: one job that hands its payload to its target."""
        execution_id = ids.uuid4()
        job = NewJob(SCHEDULE_JOB, schedule.target_arn,
                     {"schedule": schedule.name, "scheduled_time": aws_time(due),
                      "execution_id": execution_id})
        record = ScheduleFired(schedule.name, schedule.expression, aws_time(due), manual=manual)
        return Writes(jobs=[job], history=[record])


class SchedulerDelivery:
    """The `Hop` of one firing of a schedule to its target, under its retry policy."""

    SPAN = "delivery"
    TRIES_FOLLOW_UP = True

    def __init__(self, scheduler: EventBridgeScheduler, region: str) -> None:
        self.scheduler = scheduler
        self.region = region

    def schedule(self, job: Job) -> Schedule:
        found = self.scheduler.schedules.get(job.payload["schedule"])
        if found is None:  # gone from the template since it fired: one try, no DLQ
            return Schedule(job.payload["schedule"], "default", "", job.target, "{}",
                            SCHEDULER.limited(0))
        return found

    def policy(self, job: Job) -> RetryPolicy:
        return self.schedule(job).policy

    def body(self, job: Job, schedule: Schedule) -> str:
        payload = schedule.payload(job.payload["scheduled_time"], job.payload["execution_id"],
                                   job.attempt + 1)
        if ":event-bus/" not in schedule.target_arn:
            return payload
        return json.dumps(self.bus_event(job, schedule, payload))

    def bus_event(self, job: Job, schedule: Schedule, payload: str) -> dict[str, Any]:
        """What PutEvents puts on a bus target: EventBridgeParameters and the Input as detail."""
        try:
            detail = json.loads(payload)
        except ValueError:
            detail = None
        if not isinstance(detail, dict):
            raise Failure("MalformedDetail", "Detail is malformed: the Input is not a JSON "
                          "object", retryable=False)
        return {"version": "0", "id": ids.uuid4(),
                "detail-type": schedule.bus_event.get("DetailType", ""),
                "source": schedule.bus_event.get("Source", ""), "account": ACCOUNT,
                "time": job.payload["scheduled_time"], "region": self.region,
                "resources": [schedule.arn], "detail": detail}

    def attempt(self, job: Job) -> Writes:
        schedule = self.schedule(job)
        body = self.body(job, schedule)
        context = {"event_id": job.payload["execution_id"], "rule": schedule.name,
                   "target_id": TARGET_ID}
        parcel = Parcel(body, context, group_id=schedule.group_id, via="schedule")
        writes = self.scheduler.targets.deliver(schedule.target_arn, parcel)
        writes.history.append(self._record(job, schedule, ok=True, body=body))
        return writes

    def retrying(self, job: Job, failure: Failure) -> list[Record]:
        return [self._record(job, self.schedule(job), ok=False, failure=failure)]

    def give_up(self, job: Job, failure: Failure, exhausted: str | None) -> Writes:
        schedule = self.schedule(job)
        attributes = {
            "X-Amz-Scheduler-Attempt": str(job.attempt + 1),
            "X-Amz-Scheduler-Schedule-Arn": schedule.arn,
            "X-Amz-Scheduler-Target-Arn": schedule.target_arn,
            "X-Amz-Scheduler-Group": schedule.group,
            "X-Amz-Scheduler-Error-Code": failure.code,
            "X-Amz-Scheduler-Error-Message": failure.message,
        }
        body = schedule.payload(job.payload["scheduled_time"], job.payload["execution_id"],
                                job.attempt + 1)
        writes = Writes(history=[self._record(job, schedule, ok=False, failure=failure)])
        queue = schedule.dead_letter_arn
        if queue:
            try:
                writes += self.scheduler.targets.deliver(
                    queue, Parcel(body, attributes=attributes, via="dead-letter"))
            except Failure:
                queue = None  # the DLQ names nothing: dropped, as on AWS
        writes.history.append(DeadLetter(queue, "eventbridge",
                                         event_id=job.payload["execution_id"],
                                         attributes=attributes, rule=schedule.name,
                                         target_id=TARGET_ID))
        return writes

    def _record(self, job: Job, schedule: Schedule, ok: bool, body: str | None = None,
                failure: Failure | None = None) -> DeliveryAttempt:
        return DeliveryAttempt(
            event_id=job.payload["execution_id"], rule=schedule.name, target_id=TARGET_ID,
            target=schedule.target_arn, attempt=job.attempt + 1, ok=ok,
            error_code=failure.code if failure else None,
            error_message=failure.message if failure else None, input=body)


# The clock


@dataclass(frozen=True)
class Due:
    """One thing the clock fires: a scheduled rule or a Scheduler schedule."""

    name: str
    kind: str  # "rule" or "schedule"
    expression: str
    timing: Timing
    enabled: bool
    fire: Callable[[datetime, bool], Writes]  # (scheduled time, manual) -> what to write


def entries(bus: EventBus, scheduler: EventBridgeScheduler, anchor: datetime) -> list[Due]:
    """Every scheduled rule (in UTC, as EventBridge runs them) and every schedule."""
    rules = [
        Due(rule.name, "rule", str(rule.schedule), Timing(parse(str(rule.schedule)), anchor),
            rule.enabled, lambda due, manual, rule=rule: bus.fire_schedule(rule, due, manual))
        for rule in bus.scheduled_rules()
    ]
    schedules = [
        Due(s.name, "schedule", s.expression, s.timing, s.enabled,
            lambda due, manual, s=s: scheduler.fire(s, due, manual))
        for s in scheduler.schedules.values() if s.timing
    ]
    return rules + schedules


class ScheduleClock:
    """Fires each enabled entry when it is due; `fire_now` fires one at once."""

    def __init__(self, state: State, due: list[Due],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.state = state
        self.entries = {entry.name: entry for entry in due}
        self.now = now
        start = now()
        self.next: dict[str, datetime | None] = {
            entry.name: entry.timing.next_after(start) if entry.enabled else None
            for entry in due
        }
        self._wake = threading.Condition()
        self._running = False
        self._thread = threading.Thread(target=self._loop, name="schedules", daemon=True)

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._running = False
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        with self._wake:
            while self._running:
                wait = self.run_due()
                self._wake.wait(wait)

    def run_due(self) -> float | None:
        """Fires whatever is due now; the seconds until the next is due (None: nothing is)."""
        now = self.now()
        for name, due in self.next.items():
            if due is not None and due <= now:
                try:
                    self._fire(self.entries[name], due, False)
                except StorageFull:  # fired once space returns: no firing is skipped
                    return STORAGE_FULL_PAUSE_S
                self.next[name] = self.entries[name].timing.next_after(due)
        pending = [due for due in self.next.values() if due is not None]
        return max(0.0, (min(pending) - self.now()).total_seconds()) if pending else None

    def fire_now(self, name: str) -> Due:
        """Fires `name` now, as `sandbox fire` asks. KeyError: no such name; a disabled entry
        is refused with ValueError."""
        entry = self.entries[name]
        if not entry.enabled:
            raise ValueError(f"{entry.kind} {name} is DISABLED: it does not fire")
        self._fire(entry, self.now().replace(microsecond=0), True)
        return entry

    def _fire(self, entry: Due, due: datetime, manual: bool) -> None:
        """A firing starts a trace: its record is the root, its jobs carry it on."""
        with traces.span("schedule"):
            self.state.commit(entry.fire(due, manual))

    def routes(self) -> dict[str, Callable[[str, str, bytes], Response]]:
        return {ROUTE: self.handle}

    def handle(self, method: str, path: str, body: bytes) -> Response:
        """POST /sandbox/schedules/<name>/fire"""
        name, _, action = path.removeprefix(ROUTE + "/").partition("/")
        if method != "POST" or action != "fire":
            return aws_error(400, "BadRequest", f"use POST {ROUTE}/<name>/fire", JSON)
        try:
            entry = self.fire_now(name)
        except KeyError:
            known = ", ".join(sorted(self.entries)) or "none"
            return aws_error(404, "ResourceNotFoundException",
                             f"no schedule or scheduled rule is named {name} (known: {known})",
                             JSON)
        except ValueError as error:
            return aws_error(409, "ConflictException", str(error), JSON)
        return json_answer({"fired": entry.name, "kind": entry.kind,
                            "expression": entry.expression}, JSON)
