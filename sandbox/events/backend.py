"""EventBridge: the buses and rules of the template, PutEvents, and delivery to targets.

An accepted event is written down (one delivery job per matching rule target) before
PutEvents answers, so it is delivered even if the sandbox is killed right after. A delivery
that fails is retried under the target's retry policy (`sandbox.core.delivery`), then written
to the target's dead-letter queue with the attributes EventBridge sets; without a DLQ it is
dropped, as on AWS. A target is anything `Targets` knows by ARN: delivering to a Lambda target
means Lambda accepting an asynchronous invocation, and from then on failures are Lambda's to
retry.

A rule with a ScheduleExpression (on the default bus only, as PutRule requires; with or
without an EventPattern) sends AWS's Scheduled Event to its own targets when
`sandbox.events.scheduler` finds it due; a bad expression stops the start, as PutRule refuses it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.assembly import ACCOUNT, AssemblyError, Stack
from sandbox.core import ids
from sandbox.core.delivery import EVENTBRIDGE, Failure, RetryPolicy
from sandbox.core.history import DeadLetter, DeliveryAttempt, EventPut, Record, ScheduleFired
from sandbox.core.state import Job, NewJob, State, Writes
from sandbox.core.targets import Parcel, Targets
from sandbox.events.patterns import (
    EventPattern,
    InvalidEventPatternError,
    compile_pattern,
    is_test_event,
    length_error,
)
from sandbox.events.put_events import (
    PutEventsRequestError,
    bus_name,
    check_entry,
    check_request,
    envelope,
)
from sandbox.events.schedules import ScheduleExpressionError, aws_time
from sandbox.events.schedules import parse as parse_schedule
from sandbox.events.transform import Delivery, InputError, TargetInput, target_input
from sandbox.settings import Settings
from sandbox.traces import context as traces

BUS = "AWS::Events::EventBus"
RULE = "AWS::Events::Rule"
DEFAULT_BUS = "default"
DELIVERY = "delivery"  # the job kind of one event to one target


class EventsApiError(Exception):
    """An error EventBridge answers with: `code` is the exception's name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Target:
    id: str
    arn: str
    policy: RetryPolicy
    dead_letter_arn: str | None
    input: TargetInput | None  # Input, InputPath or InputTransformer (sandbox.events.transform)
    group_id: str | None = None  # SqsParameters.MessageGroupId, for a FIFO queue
    template: dict[str, Any] = field(default_factory=dict)  # the target as the template has it

    def payload(self, event: dict[str, Any], delivery: Delivery) -> str:
        """What the target receives for `event`; InputError when it cannot be made."""
        return (self.input or TargetInput()).render(event, delivery)

    def describe(self) -> dict[str, Any]:
        return self.template or {"Id": self.id, "Arn": self.arn}


@dataclass(frozen=True)
class Rule:
    name: str
    arn: str
    bus: str
    pattern: EventPattern | None  # None: a rule that only runs on its schedule
    pattern_text: str | None
    enabled: bool
    description: str | None
    targets: list[Target] = field(default_factory=list)
    schedule: str | None = None  # ScheduleExpression, checked at start

    def describe(self) -> dict[str, Any]:
        description = {
            "Name": self.name,
            "Arn": self.arn,
            "State": "ENABLED" if self.enabled else "DISABLED",
            "EventBusName": self.bus,
        }
        if self.pattern_text is not None:
            description["EventPattern"] = self.pattern_text
        if self.schedule:
            description["ScheduleExpression"] = self.schedule
        if self.description:
            description["Description"] = self.description
        return description


def bus_arn(region: str, name: str) -> str:
    return f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{name}"


def read_rules(stack: Stack) -> list[Rule]:
    rules = []
    for resource in stack.of_type(RULE):
        props = stack.properties(resource.logical_id)
        pattern = props.get("EventPattern")
        pattern_text = None if pattern is None else (
            pattern if isinstance(pattern, str) else json.dumps(pattern))
        targets = []
        for target in props.get("Targets", []):
            try:
                given_input = target_input(target)
            except InputError as error:
                raise AssemblyError(
                    f"{stack.template_file}: Resources.{resource.logical_id}.Properties.Targets"
                    f"[{target.get('Id')}].{error.prop}: {error.message}") from None
            policy = target.get("RetryPolicy", {})
            targets.append(
                Target(
                    id=target["Id"],
                    arn=target["Arn"],
                    policy=EVENTBRIDGE.limited(policy.get("MaximumRetryAttempts"),
                                               policy.get("MaximumEventAgeInSeconds")),
                    dead_letter_arn=target.get("DeadLetterConfig", {}).get("Arn"),
                    input=given_input,
                    group_id=target.get("SqsParameters", {}).get("MessageGroupId"),
                    template=target,
                )
            )
        bus = props.get("EventBusName", DEFAULT_BUS).split("/")[-1]
        rules.append(
            Rule(
                name=props.get("Name") or stack.ref(resource.logical_id).split("|")[-1],
                arn=stack.get_att(resource.logical_id, "Arn"),
                bus=bus,
                pattern=_pattern(stack, resource.logical_id, pattern_text),
                pattern_text=pattern_text,
                enabled=props.get("State", "ENABLED") == "ENABLED",
                description=props.get("Description"),
                targets=targets,
                schedule=_schedule(stack, resource.logical_id, props, bus),
            )
        )
    return rules


def _pattern(stack: Stack, logical_id: str, text: str | None) -> EventPattern | None:
    """A rule's EventPattern, refused at start as PutRule refuses it."""
    if text is None:
        return None
    try:
        return compile_pattern(text)
    except InvalidEventPatternError as error:
        raise AssemblyError(f"{stack.template_file}: Resources.{logical_id}.Properties."
                            f"EventPattern: InvalidEventPatternException: {error}") from None


def _schedule(stack: Stack, logical_id: str, props: dict[str, Any], bus: str) -> str | None:
    """A rule's ScheduleExpression, refused at start as PutRule refuses it."""
    expression = props.get("ScheduleExpression")
    where = f"{stack.template_file}: Resources.{logical_id}.Properties"
    if expression is None:
        if "EventPattern" not in props:
            raise AssemblyError(f"{where}: ValidationException: Parameter(s) EventPattern or "
                                "ScheduleExpression must be specified.")
        return None
    if bus != DEFAULT_BUS:
        raise AssemblyError(f"{where}.ScheduleExpression: ValidationException: "
                            "ScheduleExpression is supported only on the default event bus.")
    try:
        parse_schedule(expression)
    except ScheduleExpressionError as error:
        raise AssemblyError(f"{where}.ScheduleExpression: ValidationException: {error}") from None
    return expression


def delivery_jobs(bus: str, event: dict[str, Any],
                  matched: list[tuple[Rule, Target]]) -> list[NewJob]:
    """One delivery job per (rule, target) an event on `bus` goes to."""
    return [
        NewJob(DELIVERY, target.arn,
               {"event": event, "rule": rule.arn, "rule_name": rule.name,
                "target_id": target.id, "bus": bus})
        for rule, target in matched
    ]


class EventBus:
    """Every bus of the assembly (and the account's default bus) with their rules."""

    def __init__(
        self,
        stacks: list[Stack],
        state: State,
        targets: Targets,
        settings: Settings,
    ) -> None:
        self.state = state
        self.targets = targets
        self.settings = settings
        self.region = stacks[0].region if stacks else "us-east-1"
        self.buses: dict[str, str] = {DEFAULT_BUS: bus_arn(self.region, DEFAULT_BUS)}
        self.rules: dict[str, list[Rule]] = {DEFAULT_BUS: []}
        for stack in stacks:
            for bus in stack.of_type(BUS):
                stack.properties(bus.logical_id)  # checked as CloudFormation checks it
                name = stack.ref(bus.logical_id)
                self.buses[name] = stack.get_att(bus.logical_id, "Arn")
                self.rules.setdefault(name, [])
            for rule in read_rules(stack):
                self.rules.setdefault(rule.bus, []).append(rule)
        for name, arn in self.buses.items():
            targets.register(arn, _BusSink(self, name))

    # The API

    def put_events(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            entries = check_request(body)
        except PutEventsRequestError as error:
            raise EventsApiError(error.code, str(error)) from None
        now = datetime.now(UTC)
        results: list[dict[str, str]] = []
        writes = Writes()
        for entry in entries:
            problem = check_entry(entry)
            if problem:
                results.append({"ErrorCode": problem[0], "ErrorMessage": problem[1]})
                continue
            event_id = ids.uuid4()
            event = envelope(entry, ACCOUNT, self.region, now, event_id)
            results.append({"EventId": event_id})
            with traces.span("event"):  # the entry's span: its deliveries are its children
                writes += self.accept(bus_name(entry), event, "put-events")
        self.state.commit(writes)
        failed = sum("ErrorCode" in r for r in results)
        return {"FailedEntryCount": failed, "Entries": results}

    def accept(self, bus: str, event: dict[str, Any], via: str) -> Writes:
        """An event on `bus`: one delivery job per matching rule target, and its history."""
        matched = self.route(bus, event)
        jobs = delivery_jobs(bus, event, matched)
        history: list[Record] = [
            EventPut(bus, event, sorted({rule.name for rule, _ in matched}), via)
        ]
        return Writes(jobs=jobs, history=history)

    def route(self, bus: str, event: dict[str, Any]) -> list[tuple[Rule, Target]]:
        """Each (rule, target) whose rule matches: an unknown bus has no rules, so its events
        are accepted and dropped, as on AWS."""
        return [
            (rule, target)
            for rule in self.rules.get(bus, [])
            if rule.enabled and rule.pattern is not None and rule.pattern.matches(event)
            for target in rule.targets
        ]

    def scheduled_rules(self) -> list[Rule]:
        return [rule for rules in self.rules.values() for rule in rules if rule.schedule]

    def fire_schedule(self, rule: Rule, due: datetime, manual: bool = False) -> Writes:
        """A scheduled rule came due: its Scheduled Event, as AWS documents it, goes to this
        rule's targets only."""
        event_id = ids.uuid4()
        event = {"version": "0", "id": event_id, "detail-type": "Scheduled Event",
                 "source": "aws.events", "account": ACCOUNT, "time": aws_time(due),
                 "region": self.region, "resources": [rule.arn], "detail": {}}
        jobs = delivery_jobs(rule.bus, event, [(rule, target) for target in rule.targets])
        history: list[Record] = [
            ScheduleFired(rule.name, str(rule.schedule), aws_time(due), event_id, manual),
            EventPut(rule.bus, event, [rule.name], "schedule"),
        ]
        return Writes(jobs=jobs, history=history)

    def test_event_pattern(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            event = json.loads(body.get("Event", ""))
        except (TypeError, ValueError, RecursionError):
            event = None
        if not is_test_event(event):
            raise EventsApiError("ValidationException", "Parameter Event is not valid.")
        pattern_text = body.get("EventPattern", "")
        if isinstance(pattern_text, str) and length_error(pattern_text):
            raise EventsApiError("ValidationException", length_error(pattern_text))
        try:
            pattern = compile_pattern(pattern_text)
        except InvalidEventPatternError as error:
            raise EventsApiError("InvalidEventPatternException", str(error)) from None
        return {"Result": pattern.matches(event)}

    def list_event_buses(self, body: dict[str, Any]) -> dict[str, Any]:
        prefix = body.get("NamePrefix", "")
        return {
            "EventBuses": [
                {"Name": name, "Arn": arn}
                for name, arn in sorted(self.buses.items())
                if name.startswith(prefix)
            ]
        }

    def _bus(self, body: dict[str, Any]) -> str:
        name = (body.get("EventBusName") or DEFAULT_BUS).split("/")[-1]
        if name not in self.buses:
            raise EventsApiError("ResourceNotFoundException", f"Event bus {name} does not exist.")
        return name

    def _rule(self, body: dict[str, Any], key: str) -> Rule:
        bus = self._bus(body)
        for rule in self.rules[bus]:
            if rule.name == body.get(key):
                return rule
        raise EventsApiError(
            "ResourceNotFoundException", f"Rule {body.get(key)} does not exist on EventBus {bus}."
        )

    def list_rules(self, body: dict[str, Any]) -> dict[str, Any]:
        prefix = body.get("NamePrefix", "")
        rules = [r for r in self.rules[self._bus(body)] if r.name.startswith(prefix)]
        return {"Rules": [rule.describe() for rule in sorted(rules, key=lambda r: r.name)]}

    def describe_rule(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**self._rule(body, "Name").describe(), "CreatedBy": ACCOUNT}

    def list_targets_by_rule(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"Targets": [t.describe() for t in self._rule(body, "Rule").targets]}

    def target(self, job: Job) -> Target:
        for rule in self.rules.get(job.payload["bus"], []):
            if rule.arn == job.payload["rule"]:
                for target in rule.targets:
                    if target.id == job.payload["target_id"]:
                        return target
        # The rule or target is gone from the template since the event was accepted.
        return Target(job.payload["target_id"], job.target, EVENTBRIDGE.limited(0), None, None)


class _BusSink:
    """A bus as a target: of another bus's rule (cross-bus), or of a Lambda destination. What
    it receives is an event, which it routes through its own rules."""

    def __init__(self, bus: EventBus, name: str) -> None:
        self.bus = bus
        self.name = name

    def accept(self, parcel: Parcel) -> Writes:
        try:
            event = json.loads(parcel.body)
        except ValueError:
            event = None
        if not isinstance(event, dict) or "detail-type" not in event:
            raise Failure("MalformedDetail", f"what reached bus {self.name} is not an event",
                          retryable=False)
        return self.bus.accept(self.name, event, parcel.via)


class RuleDelivery:
    """The `Hop` of one event to one rule target, under the target's retry policy."""

    SPAN = "delivery"  # each try is a span; a dead letter, its child
    TRIES_FOLLOW_UP = True

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def policy(self, job: Job) -> RetryPolicy:
        return self.bus.target(job).policy

    def attempt(self, job: Job) -> Writes:
        target = self.bus.target(job)
        event = job.payload["event"]
        if self.bus.settings.inject(self.bus.settings.delivery_fault_share):
            raise Failure("ThrottlingException", "Rate exceeded (fault injected)")
        try:
            body = target.payload(event, Delivery(job.payload["rule"], job.payload["rule_name"],
                                                  datetime.fromtimestamp(job.created, UTC)))
        except InputError as error:
            raise Failure("InvalidInput", error.message, retryable=False) from None
        context = {"event_id": event["id"], "rule": job.payload["rule_name"],
                   "target_id": target.id}
        parcel = Parcel(body, context, group_id=target.group_id, via="bus")
        writes = self.bus.targets.deliver(target.arn, parcel)
        writes.history.append(self._record(job, target, ok=True, body=body))
        return writes

    def retrying(self, job: Job, failure: Failure) -> list[Record]:
        return [self._record(job, self.bus.target(job), ok=False, failure=failure)]

    def give_up(self, job: Job, failure: Failure, exhausted: str | None) -> Writes:
        target = self.bus.target(job)
        event = job.payload["event"]
        attributes = {
            "RULE_ARN": job.payload["rule"],
            "TARGET_ARN": target.arn,
            "ERROR_CODE": failure.code,
            "ERROR_MESSAGE": failure.message,
            "RETRY_ATTEMPTS": str(job.attempt),
        }
        if exhausted:
            attributes["EXHAUSTED_RETRY_CONDITION"] = exhausted
        writes = Writes(history=[self._record(job, target, ok=False, failure=failure)])
        queue = target.dead_letter_arn
        if queue:
            try:
                writes += self.bus.targets.deliver(
                    queue, Parcel(json.dumps(event), attributes=attributes, via="dead-letter"))
            except Failure:
                queue = None  # the DLQ names nothing: dropped, as on AWS
        writes.history.append(DeadLetter(queue, "eventbridge", event_id=event["id"], event=event,
                                         attributes=attributes, rule=job.payload["rule_name"],
                                         target_id=target.id))
        return writes

    def _record(self, job: Job, target: Target, ok: bool, body: str | None = None,
                failure: Failure | None = None) -> DeliveryAttempt:
        event = job.payload["event"]
        return DeliveryAttempt(
            event_id=event["id"], rule=job.payload["rule_name"], target_id=target.id,
            target=target.arn, attempt=job.attempt + 1, ok=ok,
            error_code=failure.code if failure else None,
            error_message=failure.message if failure else None,
            input=body if body is not None and body != json.dumps(event) else None,
        )
