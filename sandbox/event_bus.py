"""EventBridge: the buses and rules of the template, PutEvents, and delivery to targets.

An accepted event is written down (one delivery job per matching rule target) before
PutEvents answers, so it is delivered even if the sandbox is killed right after. A delivery
that fails is retried under the target's retry policy, then written to the target's
dead-letter queue with the attributes EventBridge sets; without a DLQ it is dropped, as on AWS.
Delivering to a Lambda target means Lambda accepting an asynchronous invocation: from then on
failures are Lambda's to retry (`LambdaService.run_async`).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.assembly import ACCOUNT, Stack
from sandbox.event_patterns import EventPattern, InvalidEventPatternError, compile_pattern
from sandbox.lambda_service import FunctionNotFound, LambdaService
from sandbox.put_events import (
    PutEventsRequestError,
    bus_name,
    check_entry,
    check_request,
    envelope,
)
from sandbox.settings import Settings
from sandbox.sqs import Queues
from sandbox.state import Job, NewJob, State

BUS = "AWS::Events::EventBus"
RULE = "AWS::Events::Rule"
DEFAULT_BUS = "default"
DEFAULT_RETRY_ATTEMPTS = 185
DEFAULT_MAX_AGE_S = 24 * 3600
FIRST_RETRY_DELAY_S = 1.0
MAX_RETRY_DELAY_S = 300.0


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
    retry_attempts: int
    max_age_s: int
    dead_letter_arn: str | None
    input: str | None  # constant JSON replacing the event, as `Input` says

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = {
            "Id": self.id,
            "Arn": self.arn,
            "RetryPolicy": {
                "MaximumRetryAttempts": self.retry_attempts,
                "MaximumEventAgeInSeconds": self.max_age_s,
            },
        }
        if self.dead_letter_arn:
            description["DeadLetterConfig"] = {"Arn": self.dead_letter_arn}
        if self.input is not None:
            description["Input"] = self.input
        return description


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
                    retry_attempts=int(policy.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS)),
                    max_age_s=int(policy.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_S)),
                    dead_letter_arn=target.get("DeadLetterConfig", {}).get("Arn"),
                    input=target.get("Input"),
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
        lambda_: LambdaService,
        queues: Queues,
        settings: Settings,
        on_accept: Any = None,
    ) -> None:
        self.state = state
        self.lambda_ = lambda_
        self.queues = queues
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

    # The API

    def put_events(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            entries = check_request(body)
        except PutEventsRequestError as error:
            raise EventsApiError(error.code, str(error)) from None
        now = datetime.now(UTC)
        results: list[dict[str, str]] = []
        jobs: list[NewJob] = []
        history: list[tuple[str, dict[str, Any]]] = []
        for entry in entries:
            problem = check_entry(entry)
            if problem:
                results.append({"ErrorCode": problem[0], "ErrorMessage": problem[1]})
                continue
            event_id = str(uuid.uuid4())
            event = envelope(entry, ACCOUNT, self.region, now, event_id)
            results.append({"EventId": event_id})
            bus = bus_name(entry)
            matched = self.route(bus, event)
            history.append(("event", {"bus": bus, "event": event,
                                      "rules": sorted({rule.name for rule, _ in matched})}))
            jobs += [
                NewJob("delivery", target.arn,
                       {"event": event, "rule": rule.arn, "rule_name": rule.name,
                        "target_id": target.id, "bus": bus})
                for rule, target in matched
            ]
        self.state.add(jobs=jobs, history=history)
        self.on_accept()
        failed = sum("ErrorCode" in r for r in results)
        return {"FailedEntryCount": failed, "Entries": results}

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

    # Delivery

    def target(self, job: Job) -> Target:
        for rule in self.rules.get(job.payload["bus"], []):
            if rule.arn == job.payload["rule"]:
                for target in rule.targets:
                    if target.id == job.payload["target_id"]:
                        return target
        # The rule or target is gone from the template since the event was accepted.
        return Target(job.payload["target_id"], job.target, 0, 0, None, None)

    def deliver(self, job: Job) -> None:
        """Hand one event to one target, durably: the job ends in the same transaction that
        records what the target accepted, or that writes it to the dead-letter queue."""
        target = self.target(job)
        event = job.payload["event"]
        payload = json.loads(target.input) if target.input is not None else event
        context = {"event_id": event["id"], "rule": job.payload["rule_name"],
                   "target_id": target.id}
        record = {**context, "target": target.arn, "attempt": job.attempt + 1}
        try:
            if self.settings.inject(self.settings.delivery_fault_share):
                raise EventsApiError("ThrottlingException", "Rate exceeded (fault injected)")
            if target.arn in self.queues:
                message = self.queues.message(target.arn, json.dumps(payload), {})
                self.state.add(messages=[message], done=job.id,
                               history=[("delivery", {**record, "ok": True})])
            elif target.arn.startswith("arn:aws:lambda:"):
                invoke = self.lambda_.async_job(target.arn, payload, **context)
                self.state.add(jobs=[invoke], done=job.id,
                               history=[("delivery", {**record, "ok": True})])
            else:
                raise EventsApiError("UnsupportedTarget",
                                     f"The sandbox does not deliver to {target.arn}")
        except FunctionNotFound as error:
            self.fail(job, target, "ResourceNotFoundException", str(error), retryable=False)
        except EventsApiError as error:
            retryable = error.code == "ThrottlingException"
            self.fail(job, target, error.code, error.message, retryable)

    def fail(self, job: Job, target: Target, code: str, message: str, retryable: bool) -> None:
        delay = min(FIRST_RETRY_DELAY_S * 2**job.attempt, MAX_RETRY_DELAY_S)
        delay *= random.uniform(0.5, 1.0) * self.settings.retry_scale
        too_old = time.time() + delay - job.created > target.max_age_s
        record = {"event_id": job.payload["event"]["id"], "rule": job.payload["rule_name"],
                  "target": target.arn, "attempt": job.attempt + 1, "ok": False,
                  "error_code": code, "error_message": message}
        if retryable and job.attempt < target.retry_attempts and not too_old:
            self.state.record("delivery", record)
            self.state.retry(job, time.time() + delay)
            return
        attributes = {
            "RULE_ARN": job.payload["rule"],
            "TARGET_ARN": target.arn,
            "ERROR_CODE": code,
            "ERROR_MESSAGE": message,
            "RETRY_ATTEMPTS": str(job.attempt),
        }
        if retryable:
            attributes["EXHAUSTED_RETRY_CONDITION"] = (
                "MaximumEventAgeInSeconds" if too_old else "MaximumRetryAttempts"
            )
        messages = []
        if target.dead_letter_arn and target.dead_letter_arn in self.queues:
            messages.append(self.queues.message(target.dead_letter_arn,
                                                json.dumps(job.payload["event"]), attributes))
        history = [("delivery", record),
                   ("dead-letter", {"queue": target.dead_letter_arn, "source": "eventbridge",
                                    "event_id": job.payload["event"]["id"],
                                    "event": job.payload["event"], "attributes": attributes})]
        self.state.add(messages=messages, history=history, done=job.id)
