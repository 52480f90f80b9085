"""Lambda's asynchronous routes, in-process: `Deliveries` running `AsyncInvocation` (and
`RuleDelivery`) jobs against a template's functions, queues, buses and topics, with the
function's runs answered by a stand-in instead of a worker. The records are checked against
AWS's documented examples ("Capturing records of Lambda asynchronous invocations")."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sandbox.assembly import Stack
from sandbox.core.delivery import (
    AGE_EXCEEDED,
    EVENTBRIDGE,
    LAMBDA_ASYNC,
    Deliveries,
    Failure,
)
from sandbox.core.history import DeadLetter, DeliveryAttempt, DestinationTaken, InvocationRun
from sandbox.core.jobs import Abandoned
from sandbox.core.state import NewJob, State
from sandbox.core.targets import Parcel, Targets
from sandbox.events.backend import DELIVERY, EventBus, RuleDelivery
from sandbox.lambda_.backend import (
    ASYNC_PAYLOAD_LIMIT,
    INVOKE,
    SYNC_PAYLOAD_LIMIT,
    AsyncInvocation,
    InvokeRefused,
    LambdaService,
)
from sandbox.lambda_.runtime_api import Invocation
from sandbox.settings import Settings
from sandbox.sns.backend import Topics
from sandbox.sqs.backend import Queues

REGION = "us-east-1"
PREFIX = f"arn:aws:lambda:{REGION}:000000000000:function:"
FN = f"{PREFIX}S-Fn"
QUEUE = f"arn:aws:sqs:{REGION}:000000000000:"
BUS = f"arn:aws:events:{REGION}:000000000000:event-bus/results"
NOWHERE = f"{QUEUE}no-such-queue"
THROTTLED = f"{QUEUE}throttled"
EVENT = {"ORDER_IDS": ["9e07af03-ce31-4ff3-xmpl-36dce652cb4f"]}
ERROR = {"errorMessage": "boom", "errorType": "ValueError", "requestId": "r",
         "stackTrace": ["  File \"/var/task/index.py\", line 2, in handler\n"]}


def function(**props: Any) -> dict[str, Any]:
    return {"Type": "AWS::Lambda::Function", "Metadata": {"aws:asset:path": "fn"},
            "Properties": {"Runtime": "python3.12", "Handler": "index.handler",
                           "Code": {"S3Key": "fn.zip"}, "FunctionName": "S-Fn", **props}}


def invoke_config(**props: Any) -> dict[str, Any]:
    return {"Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": {"FunctionName": {"Ref": "Fn"}, "Qualifier": "$LATEST", **props}}


def queue(name: str) -> dict[str, Any]:
    return {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name}}


@dataclass
class Runs:
    """Stands in for a function's workers: answers each run with the next answer."""

    answers: list[dict[str, Any] | None]  # None: a handler error; the last one repeats
    error: dict[str, Any] = field(default_factory=lambda: ERROR)
    payloads: list[bytes] = field(default_factory=list)
    invoked_arns: list[str | None] = field(default_factory=list)  # as each run was invoked
    hold: threading.Event | None = None  # when set, each run waits for it
    invoked_at: list[float] = field(default_factory=list)  # time.time() of each run
    stopping: bool = False  # each run is cut short by the sandbox stopping

    def invoke(self, payload: bytes, request_id: str | None = None,
               invoked_arn: str | None = None) -> Invocation:
        self.payloads.append(payload)
        self.invoked_arns.append(invoked_arn)
        self.invoked_at.append(time.time())
        if self.stopping:
            raise Abandoned("the sandbox stopped")
        if self.hold:
            self.hold.wait(10)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        ok = answer is not None
        body = json.dumps(answer if ok else self.error).encode()
        return Invocation(request_id or "r", "S-Fn", ok, body, None if ok else "ValueError",
                          time.time(), 1.0, None, 40, 128)


class World:
    """One template's functions, queues, buses and topics, run job by job."""

    def __init__(self, tmp_path: Path, resources: dict[str, Any],
                 answers: list[dict[str, Any] | None], retry_scale: float = 0.0) -> None:
        (tmp_path / "fn").mkdir(exist_ok=True)
        stack = Stack(name="S", region=REGION, directory=tmp_path,
                      template_file=tmp_path / "S.template.json",
                      template={"Resources": resources}, endpoint_url="http://127.0.0.1:1",
                      asset_paths={})
        self.state = State(tmp_path / "sandbox.db")
        self.settings = Settings(retry_scale=retry_scale, rng=random.Random(7))
        self.targets = Targets()
        Queues([stack], self.state, self.targets)
        self.lambda_ = LambdaService([stack], self.state, self.targets, self.settings,
                                     base_env={}, on_log=lambda *_: None)
        self.runs = Runs(answers)
        self.versions: list[str] = []  # the version of each run

        def workers(config: Any, version: str = "$LATEST") -> Runs:
            self.versions.append(version)
            return self.runs

        self.lambda_.workers = workers  # type: ignore[method-assign]
        self.bus = EventBus([stack], self.state, self.targets, self.settings)
        Topics([stack], self.targets)
        self.hops = {INVOKE: AsyncInvocation(self.lambda_), DELIVERY: RuleDelivery(self.bus)}
        self.deliveries = Deliveries(self.state, self.settings, self.hops)

    def accept(self, body: dict[str, Any], created: float = 0.0) -> None:
        """Lambda accepting an asynchronous invocation, `created` seconds since the epoch."""
        job = self.lambda_.async_job(FN, json.dumps(body), event_id="e-1")
        self.state.add(jobs=[NewJob(job.kind, job.target, job.payload, created=created)])

    def run(self) -> None:
        """Every job, retries included, until none is left."""
        while jobs := self.state.due_jobs(time.time() + 10**6, set(), 100):
            for job in jobs:
                self.deliveries.run(job)

    def bodies(self, queue_name: str) -> list[Any]:
        return [json.loads(m.body) for m in self.state.messages(QUEUE + queue_name)]

    def history(self, kind: type) -> list[Any]:
        return [e.record for e in self.state.history() if isinstance(e.record, kind)]


def test_a_success_goes_to_on_success_as_the_documented_record(tmp_path: Path) -> None:
    world = World(tmp_path, {"Fn": function(), "Ok": queue("ok"), "Cfg": invoke_config(
        DestinationConfig={"OnSuccess": {"Destination": {"Fn::GetAtt": ["Ok", "Arn"]}}})},
        answers=[{"statusCode": 200}])
    world.accept(EVENT)
    world.run()

    [record] = world.bodies("ok")
    assert set(record) == {"version", "timestamp", "requestContext", "requestPayload",
                           "responseContext", "responsePayload"}
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z") and len(record["timestamp"]) == 24
    assert record["requestContext"] == {
        "requestId": record["requestContext"]["requestId"], "functionArn": f"{FN}:$LATEST",
        "condition": "Success", "approximateInvokeCount": 1}
    assert record["requestPayload"] == EVENT
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"statusCode": 200}
    [taken] = world.history(DestinationTaken)
    assert (taken.route, taken.condition, taken.ok) == ("OnSuccess", "Success", True)
    # The run's record is written with the end of its job, before what it sent on.
    kinds = [type(e.record) for e in world.state.history()]
    assert kinds.index(InvocationRun) < kinds.index(DestinationTaken)
    [run] = world.history(InvocationRun)
    assert (run.ok, run.attempt, run.event_id) == (True, 1, "e-1")


def test_retries_run_out_then_the_record_goes_to_on_failure_and_the_event_to_the_dlq(
        tmp_path: Path) -> None:
    world = World(tmp_path, {
        "Fn": function(DeadLetterConfig={"TargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}}),
        "Dlq": queue("dlq"), "Failed": queue("failed"),
        "Cfg": invoke_config(MaximumRetryAttempts=1, DestinationConfig={
            "OnFailure": {"Destination": {"Fn::GetAtt": ["Failed", "Arn"]}}})},
        answers=[None])
    world.accept(EVENT)
    world.run()

    assert len(world.runs.payloads) == 2  # one try and MaximumRetryAttempts 1
    [record] = world.bodies("failed")
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"] == f"{FN}:$LATEST"
    assert record["requestPayload"] == EVENT
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                         "functionError": "Unhandled"}
    assert record["responsePayload"] == ERROR
    [message] = world.state.messages(QUEUE + "dlq")
    assert json.loads(message.body) == EVENT  # the event as it came, nothing added
    assert message.strings() == {"RequestID": record["requestContext"]["requestId"],
                                  "ErrorCode": "200", "ErrorMessage": "boom"}
    queues = sorted(d.queue for d in world.history(DeadLetter))
    assert queues == [QUEUE + "dlq", QUEUE + "failed"]
    # Each failed try is in the history: the retried one with its retry, the last with its end.
    assert [(r.ok, r.attempt) for r in world.history(InvocationRun)] == [(False, 1), (False, 2)]


def test_an_error_message_in_the_dlq_is_cut_to_its_first_kilobyte(tmp_path: Path) -> None:
    world = World(tmp_path, {
        "Fn": function(DeadLetterConfig={"TargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}}),
        "Dlq": queue("dlq"), "Cfg": invoke_config(MaximumRetryAttempts=0)}, answers=[None])
    world.runs.error = {**ERROR, "errorMessage": "x" * 5000}
    world.accept(EVENT)
    world.run()

    [message] = world.state.messages(QUEUE + "dlq")
    assert message.strings()["ErrorMessage"] == "x" * 1024


def test_an_event_too_old_to_retry_goes_on_failure_as_event_age_exceeded(
        tmp_path: Path) -> None:
    world = World(tmp_path, {
        "Fn": function(), "Failed": queue("failed"),
        "Cfg": invoke_config(MaximumEventAgeInSeconds=60, DestinationConfig={
            "OnFailure": {"Destination": {"Fn::GetAtt": ["Failed", "Arn"]}}})},
        answers=[None], retry_scale=1.0)
    world.accept(EVENT, created=time.time() - 30)  # the next try, a minute on, is too late
    world.run()

    assert len(world.runs.payloads) == 1
    [record] = world.bodies("failed")
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responsePayload"] == ERROR


def test_a_rule_target_too_old_to_retry_ends_in_its_dlq_with_the_age_condition(
        tmp_path: Path) -> None:
    world = World(tmp_path, {
        "Dlq": queue("rule-dlq"),
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {
            "EventPattern": {"source": ["shop"]},
            "Targets": [{"Id": "Busy", "Arn": THROTTLED,
                         "RetryPolicy": {"MaximumEventAgeInSeconds": 60},
                         "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["Dlq", "Arn"]}}}]}}},
        answers=[{}], retry_scale=1.0)
    event = {"id": "e-1", "source": "shop", "detail-type": "x", "detail": {}}
    [job] = world.bus.accept("default", event, "put-events").jobs
    world.state.add(jobs=[NewJob(job.kind, job.target, job.payload,
                                 created=time.time() - 59.9)])
    # A throttled target is retryable; its next try (at least half a second on) is too late.
    world.targets.register(THROTTLED, _Throttled())
    world.run()

    [message] = world.state.messages(QUEUE + "rule-dlq")
    assert message.strings()["EXHAUSTED_RETRY_CONDITION"] == AGE_EXCEEDED
    assert message.strings()["ERROR_CODE"] == "ThrottlingException"
    assert message.strings()["RETRY_ATTEMPTS"] == "0"


class _Throttled:
    def accept(self, parcel: Parcel) -> Any:
        raise Failure("ThrottlingException", "Rate exceeded")


def test_a_destination_that_names_nothing_loses_the_record_and_says_why(
        tmp_path: Path) -> None:
    world = World(tmp_path, {"Fn": function(), "Cfg": invoke_config(DestinationConfig={
        "OnSuccess": {"Destination": NOWHERE}, "OnFailure": {"Destination": NOWHERE}})},
        answers=[{"ok": True}, None])
    world.accept(EVENT)
    world.run()
    world.accept(EVENT)
    world.run()

    taken = world.history(DestinationTaken)
    assert [(t.route, t.ok) for t in taken] == [("OnSuccess", False), ("OnFailure", False)]
    assert all(NOWHERE in (t.error_message or "") for t in taken)
    [dropped] = world.history(DeadLetter)
    assert dropped.queue is None
    assert dropped.record["requestContext"]["condition"] == "RetriesExhausted"


def test_on_a_bus_the_record_is_the_detail_of_a_lambda_event(tmp_path: Path) -> None:
    world = World(tmp_path, {
        "Fn": function(), "Results": {"Type": "AWS::Events::EventBus",
                                      "Properties": {"Name": "results"}},
        "Seen": queue("seen"),
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {
            "EventBusName": "results", "EventPattern": {"source": ["lambda"]},
            "Targets": [{"Id": "Q", "Arn": {"Fn::GetAtt": ["Seen", "Arn"]}}]}},
        "Cfg": invoke_config(MaximumRetryAttempts=0, DestinationConfig={
            "OnSuccess": {"Destination": BUS}, "OnFailure": {"Destination": BUS}})},
        answers=[{"ok": True}, None])
    world.accept(EVENT)
    world.accept(EVENT)
    world.run()

    events = sorted(world.bodies("seen"), key=lambda e: e["detail-type"])
    assert [e["detail-type"] for e in events] == [
        "Lambda Function Invocation Result - Failure",
        "Lambda Function Invocation Result - Success"]
    for event in events:
        assert set(event) == {"version", "id", "detail-type", "source", "account", "time",
                              "region", "resources", "detail"}
        assert (event["source"], event["version"], event["region"]) == ("lambda", "0", REGION)
        assert event["resources"] == [BUS, f"{FN}:$LATEST"]
        assert event["detail"]["requestPayload"] == EVENT
    assert events[0]["detail"]["requestContext"]["condition"] == "RetriesExhausted"


def rule_to_the_function() -> dict[str, Any]:
    return {"Type": "AWS::Events::Rule", "Properties": {
        "EventPattern": {"source": ["shop"]},
        "Targets": [{"Id": "F", "Arn": {"Fn::GetAtt": ["Fn", "Arn"]}}]}}


def deliver_once(world: World) -> None:
    """An event put, and its one delivery job run once, as the job runner would."""
    event = {"id": "e-1", "source": "shop", "detail-type": "x", "detail": {}}
    world.state.commit(world.bus.accept("default", event, "put-events"))
    [job] = world.state.due_jobs(time.time(), set(), 10)
    assert job.kind == DELIVERY
    world.deliveries.run(job)


def test_a_rule_delivering_to_a_function_runs_it_and_commits_both_at_once(
        tmp_path: Path) -> None:
    world = World(tmp_path, {"Fn": function(), "Rule": rule_to_the_function()}, answers=[{}])
    deliver_once(world)

    assert world.state.pending_jobs() == 0  # no invocation job stored between the two
    entries = [e for e in world.state.history()
               if isinstance(e.record, DeliveryAttempt | InvocationRun)]
    assert [type(e.record) for e in entries] == [DeliveryAttempt, InvocationRun]
    delivered, run = entries
    assert delivered.record.ok and run.record.ok
    # The delivery's span ends when Lambda accepted the event, before the function ran.
    [invoked_at] = world.runs.invoked_at
    assert delivered.at <= invoked_at <= run.at


def test_a_function_failing_the_run_a_delivery_handed_on_is_stored_as_its_retry(
        tmp_path: Path) -> None:
    world = World(tmp_path, {"Fn": function(), "Rule": rule_to_the_function()},
                  answers=[None, {}], retry_scale=1.0)
    deliver_once(world)

    [job] = world.state.due_jobs(float("inf"), set(), 10)
    assert (job.kind, job.attempt) == (INVOKE, 1)
    assert job.due > time.time() + LAMBDA_ASYNC.first_delay_s / 2  # Lambda's, not 1 s
    assert [r.ok for r in world.history(DeliveryAttempt)] == [True]
    assert [r.ok for r in world.history(InvocationRun)] == [False]
    world.run()
    assert [r.ok for r in world.history(InvocationRun)] == [False, True]
    assert world.state.pending_jobs() == 0


def test_a_sandbox_stopping_during_the_run_keeps_the_delivery_to_run_again(
        tmp_path: Path) -> None:
    world = World(tmp_path, {"Fn": function(), "Rule": rule_to_the_function()}, answers=[{}])
    world.runs.stopping = True
    with pytest.raises(Abandoned):
        deliver_once(world)

    [job] = world.state.due_jobs(time.time(), set(), 10)
    assert (job.kind, job.attempt) == (DELIVERY, 0)  # nothing was committed, nothing is lost
    assert world.history(DeliveryAttempt) == []
    world.runs.stopping = False
    world.run()
    assert [r.ok for r in world.history(InvocationRun)] == [True]
    assert len(world.runs.payloads) == 2  # at least once: the cut run, then the whole one


def test_zero_reserved_concurrency_sends_events_on_failure_without_a_try(
        tmp_path: Path) -> None:
    world = World(tmp_path, {
        "Fn": function(ReservedConcurrentExecutions=0,
                       DeadLetterConfig={"TargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}}),
        "Dlq": queue("dlq"), "Failed": queue("failed"), "Cfg": invoke_config(
            DestinationConfig={"OnFailure": {"Destination": {"Fn::GetAtt": ["Failed", "Arn"]}}})},
        answers=[{}])
    world.accept(EVENT)
    world.run()

    assert world.runs.payloads == []
    [record] = world.bodies("failed")
    assert record["requestContext"]["condition"] == "ZeroReservedConcurrency"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in record and "responsePayload" not in record
    [message] = world.state.messages(QUEUE + "dlq")
    assert message.strings()["ErrorCode"] == "429"
    with pytest.raises(InvokeRefused) as refused:
        world.lambda_.invoke(FN, b"{}")
    assert (refused.value.status, refused.value.code) == (429, "TooManyRequestsException")


def test_one_reserved_execution_refuses_a_second_synchronous_run(tmp_path: Path) -> None:
    world = World(tmp_path, {"Fn": function(ReservedConcurrentExecutions=1)}, answers=[{}])
    world.runs.hold = threading.Event()
    first = threading.Thread(target=world.lambda_.invoke, args=(FN, b"{}"))
    first.start()
    while not world.runs.payloads:  # the first run holds the only slot
        time.sleep(0.01)
    with pytest.raises(InvokeRefused) as refused:
        world.lambda_.invoke(FN, b"{}")
    world.runs.hold.set()
    first.join()
    assert (refused.value.status, refused.value.message) == (429, "Rate Exceeded.")
    assert world.lambda_.invoke(FN, b"{}").ok  # the slot is free again


def test_payloads_over_lambdas_limits_are_refused(tmp_path: Path) -> None:
    world = World(tmp_path, {"Fn": function()}, answers=[{}])
    with pytest.raises(InvokeRefused) as refused:
        world.lambda_.invoke(FN, b"x" * (SYNC_PAYLOAD_LIMIT + 1))
    assert (refused.value.status, refused.value.code) == (413, "RequestEntityTooLargeException")
    world.lambda_.invoke(FN, b"x" * SYNC_PAYLOAD_LIMIT)  # at the limit: runs

    with pytest.raises(Failure) as failure:
        world.targets.deliver(FN, Parcel("x" * (ASYNC_PAYLOAD_LIMIT + 1)))
    assert failure.value.code == "RequestEntityTooLargeException"
    assert not failure.value.retryable
    assert world.targets.deliver(FN, Parcel("x" * ASYNC_PAYLOAD_LIMIT)).jobs


def test_a_rule_target_over_the_asynchronous_limit_ends_in_its_dlq_with_the_reason(
        tmp_path: Path) -> None:
    world = World(tmp_path, {
        "Fn": function(), "Dlq": queue("rule-dlq"),
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {
            "EventPattern": {"source": ["shop"]},
            "Targets": [{"Id": "Fn", "Arn": FN,
                         "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["Dlq", "Arn"]}}}]}}},
        answers=[{}])
    big = {"id": "e-1", "source": "shop", "detail-type": "x",
           "detail": {"blob": "x" * ASYNC_PAYLOAD_LIMIT}}
    world.state.commit(world.bus.accept("default", big, "put-events"))
    world.run()

    [message] = world.state.messages(QUEUE + "rule-dlq")
    assert message.strings()["ERROR_CODE"] == "RequestEntityTooLargeException"
    assert "1048576 bytes" in message.strings()["ERROR_MESSAGE"]
    assert "EXHAUSTED_RETRY_CONDITION" not in message.strings()
    assert world.runs.payloads == []


@pytest.mark.parametrize(("policy", "attempt", "low", "high"), [
    (LAMBDA_ASYNC, 0, 54.0, 66.0),     # about a minute
    (LAMBDA_ASYNC, 1, 108.0, 132.0),   # then about two
    (LAMBDA_ASYNC, 5, 108.0, 132.0),   # never more
    (EVENTBRIDGE, 0, 0.5, 1.0),
    (EVENTBRIDGE, 3, 4.0, 8.0),
    (EVENTBRIDGE, 20, 150.0, 300.0),   # capped at five minutes
])
def test_retry_delays_stay_within_their_jitter(policy: Any, attempt: int, low: float,
                                               high: float) -> None:
    rng = random.Random(1)
    delays = [policy.delay(attempt, 1.0, rng) for _ in range(500)]
    assert low <= min(delays) and max(delays) <= high
    assert max(delays) - min(delays) > (high - low) / 2  # the jitter is drawn, not fixed
    scaled = policy.delay(attempt, 0.001, random.Random(1))
    assert scaled == pytest.approx(policy.delay(attempt, 1.0, random.Random(1)) * 0.001)
