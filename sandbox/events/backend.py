"""EventBridge: the buses and rules of the template, PutEvents, and delivery to targets.

An accepted event is written down (one delivery job per matching rule target) before
PutEvents answers, so it is delivered even if the sandbox is killed right after. A delivery
that fails is retried under the target's retry policy (`sandbox.core.delivery`), then written
to the target's dead-letter queue with the attributes EventBridge sets; without a DLQ it is
dropped, as on AWS. A target is anything `Targets` knows by ARN: delivering to a Lambda target
means Lambda accepting an asynchronous invocation, and from then on failures are Lambda's to
retry.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.assembly import ACCOUNT, Stack
from sandbox.core.delivery import EVENTBRIDGE, Failure, RetryPolicy
from sandbox.core.history import DeadLetter, DeliveryAttempt, EventPut, Record
from sandbox.core.state import Job, NewJob, State, Writes
from sandbox.core.targets import Parcel, Targets
from sandbox.events.patterns import EventPattern, InvalidEventPatternError, compile_pattern
from sandbox.events.put_events import (
    PutEventsRequestError,
    bus_name,
    check_entry,
    check_request,
    envelope,
)
from sandbox.settings import Settings

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
    input: str | None  # constant JSON replacing the event, as `Input` says
    group_id: str | None = None  # SqsParameters.MessageGroupId, for a FIFO queue
    template: dict[str, Any] = field(default_factory=dict)  # the target as the template has it

    def payload(self, event: dict[str, Any]) -> str:
        """What the target receives for `event`."""
        return self.input if self.input is not None else json.dumps(event)

    def describe(self) -> dict[str, Any]:
        return self.template or {"Id": self.id, "Arn": self.arn}


@dataclass(frozen=True)
class Rule:
    name: str
    arn: str
    bus: str
    pattern: EventPattern
    pattern_text: str
    enabled: bool
    description: str | None
    targets: list[Target] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        description = {
            "Name": self.name,
            "Arn": self.arn,
            "EventPattern": self.pattern_text,
            "State": "ENABLED" if self.enabled else "DISABLED",
            "EventBusName": self.bus,
        }
        if self.description:
            description["Description"] = self.description
        return description


def bus_arn(region: str, name: str) -> str:
    return f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{name}"


def read_rules(stack: Stack) -> list[Rule]:
    rules = []
    for resource in stack.of_type(RULE):
        props = stack.resolve(resource.properties, f"Resources.{resource.logical_id}.Properties")
        if "EventPattern" not in props:
            continue  # a scheduled rule: the sandbox has no scheduler
        pattern = props["EventPattern"]
        pattern_text = pattern if isinstance(pattern, str) else json.dumps(pattern)
        targets = []
        for target in props.get("Targets", []):
            if "InputPath" in target or "InputTransformer" in target:
                raise EventsApiError(
                    "UnsupportedTarget",
                    f"{stack.name}/{resource.logical_id}: target {target.get('Id')}: "
                    "InputPath and InputTransformer are not supported by the sandbox",
                )
            policy = target.get("RetryPolicy", {})
            targets.append(
                Target(
                    id=target["Id"],
                    arn=target["Arn"],
                    policy=EVENTBRIDGE.limited(policy.get("MaximumRetryAttempts"),
                                               policy.get("MaximumEventAgeInSeconds")),
                    dead_letter_arn=target.get("DeadLetterConfig", {}).get("Arn"),
                    input=target.get("Input"),
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
                pattern=compile_pattern(pattern_text),
                pattern_text=pattern_text,
                enabled=props.get("State", "ENABLED") == "ENABLED",
                description=props.get("Description"),
                targets=targets,
            )
        )
    return rules


class EventBus:
    """Every bus of the assembly (and the account's default bus) with their rules."""

    def __init__(
        self,
        stacks: list[Stack],
        state: State,
        targets: Targets,
        settings: Settings,
        on_accept: Any = None,
    ) -> None:
        self.state = state
        self.targets = targets
        self.settings = settings
        self.on_accept = on_accept or (lambda: None)
        self.region = stacks[0].region if stacks else "us-east-1"
        self.buses: dict[str, str] = {DEFAULT_BUS: bus_arn(self.region, DEFAULT_BUS)}
        self.rules: dict[str, list[Rule]] = {DEFAULT_BUS: []}
        for stack in stacks:
            for bus in stack.of_type(BUS):
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
            event_id = str(uuid.uuid4())
            event = envelope(entry, ACCOUNT, self.region, now, event_id)
            results.append({"EventId": event_id})
            writes += self.accept(bus_name(entry), event, "put-events")
        self.state.commit(writes)
        self.on_accept()
        failed = sum("ErrorCode" in r for r in results)
        return {"FailedEntryCount": failed, "Entries": results}

    def accept(self, bus: str, event: dict[str, Any], via: str) -> Writes:
        """An event on `bus`: one delivery job per matching rule target, and its history."""
        matched = self.route(bus, event)
        jobs = [
            NewJob(DELIVERY, target.arn,
                   {"event": event, "rule": rule.arn, "rule_name": rule.name,
                    "target_id": target.id, "bus": bus})
            for rule, target in matched
        ]
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
            if rule.enabled and rule.pattern.matches(event)
            for target in rule.targets
        ]

    def test_event_pattern(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            event = json.loads(body.get("Event", ""))
        except ValueError:
            raise EventsApiError("ValidationException", "Parameter Event is not valid.") from None
        try:
            pattern = compile_pattern(body.get("EventPattern", ""))
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

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def policy(self, job: Job) -> RetryPolicy:
        return self.bus.target(job).policy

    def attempt(self, job: Job) -> Writes:
        target = self.bus.target(job)
        event = job.payload["event"]
        if self.bus.settings.inject(self.bus.settings.delivery_fault_share):
            raise Failure("ThrottlingException", "Rate exceeded (fault injected)")
        body = target.payload(event)
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
                    queue, Parcel(json.dumps(event), attributes=attributes))
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
