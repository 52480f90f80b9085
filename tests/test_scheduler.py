"""The schedule clock, driven in-process by a fake clock (no real waiting): scheduled rules and
Scheduler schedules fire on time with AWS's payloads, through the shared delivery mechanism, and
what AWS refuses stops the start naming the file, resource and property."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sandbox_process import ROOT
from test_assembly import only_stack, write_assembly

from sandbox.assembly import ACCOUNT, AssemblyError, Stack
from sandbox.core.delivery import Deliveries, Failure
from sandbox.core.history import DeadLetter, EventPut, ScheduleFired
from sandbox.core.state import State, Writes
from sandbox.core.targets import Parcel, Targets
from sandbox.events.backend import DELIVERY, EventBus
from sandbox.events.scheduler import (
    SCHEDULE_JOB,
    EventBridgeScheduler,
    ScheduleClock,
    SchedulerDelivery,
    entries,
)
from sandbox.events.schedules import NOT_VALID
from sandbox.settings import Settings

START = datetime(2026, 11, 29, 9, 59, 30, tzinfo=UTC)
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:S-Queue"
DLQ_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:S-Dlq"
MISSING_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:nothing-here"


class Recorder:
    """A target that keeps what it was handed."""

    def __init__(self) -> None:
        self.parcels: list[Parcel] = []

    def accept(self, parcel: Parcel) -> Writes:
        self.parcels.append(parcel)
        return Writes()


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def rule(expression: str, state: str = "ENABLED", bus: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"ScheduleExpression": expression, "State": state,
                             "Targets": [{"Id": "T1", "Arn": QUEUE_ARN}]}
    if bus:
        props["EventBusName"] = bus
    return {"Type": "AWS::Events::Rule", "Properties": props}


def schedule(expression: str, **target: Any) -> dict[str, Any]:
    return {"Type": "AWS::Scheduler::Schedule",
            "Properties": {"Name": "Nightly", "ScheduleExpression": expression,
                           "FlexibleTimeWindow": {"Mode": "OFF"},
                           "Target": {"Arn": QUEUE_ARN, "RoleArn": "arn:aws:iam::x:role/r",
                                      **target}}}


class World:
    """A bus, a scheduler and the clock over one State, as sandbox.py wires them."""

    def __init__(self, tmp_path: Path, resources: dict[str, Any]) -> None:
        stack = only_stack(write_assembly(tmp_path / "assembly", resources))
        self.state = State(tmp_path / "sandbox.db")
        self.targets = Targets()
        self.queue = Recorder()
        self.dlq = Recorder()
        self.targets.register(QUEUE_ARN, self.queue)
        self.targets.register(DLQ_ARN, self.dlq)
        self.bus = EventBus([stack], self.state, self.targets, Settings())
        self.scheduler = EventBridgeScheduler([stack], self.targets, START)
        self.clock_now = FakeClock()
        self.clock = ScheduleClock(self.state, entries(self.bus, self.scheduler, START),
                                   now=self.clock_now)
        self.hop = SchedulerDelivery(self.scheduler, stack.region)

    def at(self, when: datetime) -> float | None:
        self.clock_now.now = when
        return self.clock.run_due()

    def fired(self) -> list[ScheduleFired]:
        return [e.record for e in self.state.history(kind="schedule")]

    def run_schedule_jobs(self) -> None:
        deliveries = Deliveries(self.state, Settings(), {SCHEDULE_JOB: self.hop})
        for job in self.state.due_jobs(float("inf"), set(), 100):
            if job.kind == SCHEDULE_JOB:
                deliveries.run(job)


def test_a_rate_rule_fires_every_minute_from_the_start_with_the_scheduled_event(
        tmp_path: Path) -> None:
    world = World(tmp_path, {"Every": rule("rate(1 minute)")})
    assert world.at(START + timedelta(seconds=59)) == pytest.approx(1.0)
    assert world.fired() == []
    world.at(START + timedelta(minutes=1))
    world.at(START + timedelta(minutes=2, seconds=30))
    fired = world.fired()
    assert [f.scheduled_time for f in fired] == ["2026-11-29T10:00:30Z", "2026-11-29T10:01:30Z"]
    assert not any(f.manual for f in fired)

    (job, _) = world.state.due_jobs(float("inf"), set(), 10)
    assert (job.kind, job.target) == (DELIVERY, QUEUE_ARN)
    event = job.payload["event"]
    # AWS's documented example of a Scheduled Event, field for field.
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time",
                          "region", "resources", "detail"}
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["version"] == "0"
    assert event["account"] == ACCOUNT
    assert event["time"] == "2026-11-29T10:00:30Z"
    assert event["region"] == "us-east-1"
    assert event["resources"] == [world.bus.scheduled_rules()[0].arn]
    assert event["resources"][0].startswith(f"arn:aws:events:us-east-1:{ACCOUNT}:rule/")
    assert event["detail"] == {}
    assert fired[0].event_id == event["id"]
    puts = [e.record for e in world.state.history(kind="event")]
    assert isinstance(puts[0], EventPut) and puts[0].via == "schedule"


def test_a_cron_rule_fires_at_its_minute_in_utc(tmp_path: Path) -> None:
    world = World(tmp_path, {"Ten": rule("cron(0 10 * * ? *)")})
    assert world.at(START) == pytest.approx(30.0)
    world.at(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    wait = world.at(datetime(2026, 11, 29, 10, 0, 1, tzinfo=UTC))
    assert [f.scheduled_time for f in world.fired()] == ["2026-11-29T10:00:00Z"]
    assert wait == pytest.approx(timedelta(hours=24, seconds=-1).total_seconds())


def test_a_disabled_rule_does_not_fire_and_cannot_be_fired(tmp_path: Path) -> None:
    world = World(tmp_path, {"Off": rule("rate(1 minute)", state="DISABLED")})
    assert world.at(START + timedelta(hours=1)) is None
    assert world.fired() == []
    name = world.bus.scheduled_rules()[0].name
    status, _, body = world.clock.handle("POST", f"/sandbox/schedules/{name}/fire", b"")
    assert status == 409 and "DISABLED" in json.loads(body)["message"]


def test_fire_now_fires_a_rule_at_once_and_says_it_was_manual(tmp_path: Path) -> None:
    world = World(tmp_path, {"Ten": rule("cron(0 10 * * ? *)")})
    name = world.bus.scheduled_rules()[0].name
    status, _, body = world.clock.handle("POST", f"/sandbox/schedules/{name}/fire", b"")
    assert status == 200
    assert json.loads(body) == {"fired": name, "kind": "rule",
                                "expression": "cron(0 10 * * ? *)"}
    (fired,) = world.fired()
    assert fired.manual and fired.scheduled_time == "2026-11-29T09:59:30Z"
    # The clock's own firing is untouched by it.
    world.at(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    assert len(world.fired()) == 2


def test_an_unknown_name_is_a_404_naming_the_known_ones(tmp_path: Path) -> None:
    world = World(tmp_path, {"Nightly": schedule("rate(1 hour)")})
    status, _, body = world.clock.handle("POST", "/sandbox/schedules/nope/fire", b"")
    assert status == 404
    assert json.loads(body)["message"] == (
        "no schedule or scheduled rule is named nope (known: Nightly)")
    status, _, _ = world.clock.handle("GET", "/sandbox/schedules/Nightly/fire", b"")
    assert status == 400


def test_a_schedule_fills_its_context_attributes_in_the_input(tmp_path: Path) -> None:
    attributes = ('{"arn": "<aws.scheduler.schedule-arn>", '
                  '"time": "<aws.scheduler.scheduled-time>", '
                  '"id": "<aws.scheduler.execution-id>", '
                  '"attempt": <aws.scheduler.attempt-number>}')
    world = World(tmp_path, {"Nightly": schedule(
        "cron(0 10 * * ? *)", Input=attributes, SqsParameters={"MessageGroupId": "g1"})})
    world.at(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    world.run_schedule_jobs()
    (parcel,) = world.queue.parcels
    assert json.loads(parcel.body) == {
        "arn": f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/default/Nightly",
        "time": "2026-11-29T10:00:00Z", "id": parcel.context["event_id"], "attempt": 1}
    assert parcel.group_id == "g1"
    (fired,) = world.fired()
    assert fired.schedule == "Nightly" and fired.expression == "cron(0 10 * * ? *)"


def test_a_schedule_fires_in_its_time_zone_between_its_dates(tmp_path: Path) -> None:
    resource = schedule("cron(0 9 * * ? *)")
    resource["Properties"].update(ScheduleExpressionTimezone="America/New_York",
                                  StartDate="2026-11-30T00:00:00Z",
                                  EndDate="2026-12-01T23:00:00Z")
    world = World(tmp_path, {"Nightly": resource})
    for hour in range(0, 24 * 4):
        world.at(START + timedelta(hours=hour))
    assert [f.scheduled_time for f in world.fired()] == [
        "2026-11-30T14:00:00Z", "2026-12-01T14:00:00Z"]


def test_a_target_that_names_nothing_goes_to_the_dlq_at_once_with_schedulers_attributes(
        tmp_path: Path) -> None:
    world = World(tmp_path, {"Nightly": schedule(
        "rate(1 hour)", Arn=MISSING_ARN, Input='{"n": 1}', DeadLetterConfig={"Arn": DLQ_ARN},
        RetryPolicy={"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 600})})
    world.clock.fire_now("Nightly")
    world.run_schedule_jobs()
    (parcel,) = world.dlq.parcels
    assert parcel.body == '{"n": 1}'
    assert parcel.attributes == {
        "X-Amz-Scheduler-Attempt": "1",
        "X-Amz-Scheduler-Schedule-Arn":
            f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/default/Nightly",
        "X-Amz-Scheduler-Target-Arn": MISSING_ARN,
        "X-Amz-Scheduler-Group": "default",
        "X-Amz-Scheduler-Error-Code": "ResourceNotFoundException",
        "X-Amz-Scheduler-Error-Message": f"{MISSING_ARN} names no resource the sandbox runs",
    }
    (dead,) = [e.record for e in world.state.history(kind="dead-letter")]
    assert isinstance(dead, DeadLetter) and dead.queue == DLQ_ARN
    assert world.state.pending_jobs() == 0


def test_a_failing_target_is_retried_under_the_schedules_policy(tmp_path: Path) -> None:
    world = World(tmp_path, {"Nightly": schedule(
        "rate(1 hour)", DeadLetterConfig={"Arn": DLQ_ARN},
        RetryPolicy={"MaximumRetryAttempts": 1})})

    def refuse(parcel: Parcel) -> Writes:
        raise Failure("ThrottlingException", "Rate exceeded")

    world.queue.accept = refuse  # type: ignore[method-assign]
    world.clock.fire_now("Nightly")
    world.run_schedule_jobs()
    assert world.dlq.parcels == [] and world.state.pending_jobs() == 1
    world.run_schedule_jobs()
    (parcel,) = world.dlq.parcels
    assert parcel.attributes["X-Amz-Scheduler-Attempt"] == "2"
    assert parcel.attributes["X-Amz-Scheduler-Error-Code"] == "ThrottlingException"


def test_a_schedule_to_a_bus_puts_an_event_with_its_detail_type_and_source(
        tmp_path: Path) -> None:
    bus_arn = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"
    world = World(tmp_path, {"Nightly": schedule(
        "rate(1 hour)", Arn=bus_arn, Input='{"report": "daily"}',
        EventBridgeParameters={"DetailType": "Report Due", "Source": "reports"})})
    world.clock.fire_now("Nightly")
    world.run_schedule_jobs()
    (put,) = [e.record for e in world.state.history(kind="event")]
    assert put.via == "schedule"
    assert (put.event["detail-type"], put.event["source"]) == ("Report Due", "reports")
    assert put.event["detail"] == {"report": "daily"}


# What AWS refuses stops the start: one line naming file, resource and property.


def read(tmp_path: Path, resources: dict[str, Any]) -> None:
    stack: Stack = only_stack(write_assembly(tmp_path, resources))
    EventBus([stack], State(tmp_path / "s.db"), Targets(), Settings())
    EventBridgeScheduler([stack], Targets(), START)


@pytest.mark.parametrize(("resource", "prop", "message"), [
    (rule("cron(0 10 * * * *)"), "ScheduleExpression", NOT_VALID),
    (rule("rate(1 minutes)"), "ScheduleExpression", NOT_VALID),
    (rule("rate(5 minutes)", bus="orders"), "ScheduleExpression",
     "ScheduleExpression is supported only on the default event bus."),
    ({"Type": "AWS::Events::Rule", "Properties": {"Targets": []}}, "Properties",
     "Parameter(s) EventPattern or ScheduleExpression must be specified."),
    (schedule("cron(0 10 * *)"), "ScheduleExpression", NOT_VALID),
])
def test_what_aws_refuses_stops_the_start(tmp_path: Path, resource: dict[str, Any], prop: str,
                                          message: str) -> None:
    with pytest.raises(AssemblyError) as error:
        read(tmp_path, {"Bad": resource})
    text = str(error.value)
    assert "\n" not in text
    assert "S.template.json" in text and "Resources.Bad.Properties" in text
    assert prop in text and message in text


def test_an_unknown_time_zone_stops_the_start(tmp_path: Path) -> None:
    resource = schedule("rate(1 hour)")
    resource["Properties"]["ScheduleExpressionTimezone"] = "Mars/Olympus"
    with pytest.raises(AssemblyError, match="ScheduleExpressionTimezone"):
        read(tmp_path, {"Bad": resource})


def test_sandbox_up_stops_at_once_with_exit_2_and_one_line_on_a_bad_cron(
        tmp_path: Path) -> None:
    assembly = write_assembly(tmp_path / "assembly", {"Bad": rule("cron(0 10 * * * *)")})
    done = subprocess.run([sys.executable, "-m", "sandbox", "up", "--assembly", str(assembly),
                           "--state", str(tmp_path / "state"), "--port", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "S.template.json: Resources.Bad.Properties.ScheduleExpression" in line
    assert NOT_VALID in line and "Traceback" not in done.stdout
