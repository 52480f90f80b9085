"""Schedules end to end in the breadth stack (tests/breadth/schedules.py): fired with `python -m
sandbox fire` (no waiting for the clock), a scheduled rule delivers AWS's Scheduled Event, a
Scheduler schedule its Input with the context attributes filled in, and a schedule whose target
names nothing puts its payload in its DLQ with Scheduler's reason."""
# ruff: noqa: F811  (pytest fixtures imported from breadth_sandbox are parameters here)

import json
import subprocess
import sys
from typing import Any

import pytest
from breadth_sandbox import breadth, queue_messages, received, wait_received  # noqa: F401
from sandbox_process import ROOT, SandboxProcess, wait_for

pytestmark = pytest.mark.slow

RULE = "schedules-every-minute"
SCHEDULE_ARN = "arn:aws:scheduler:us-east-1:000000000000:schedule/default/"


def fire(sandbox: SandboxProcess, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sandbox", "fire", name,
                           "--port", str(sandbox.port)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def messages(sandbox: SandboxProcess, queue: str) -> list[dict[str, Any]]:
    return wait_for(lambda: queue_messages(sandbox, queue), 60, f"a message in {queue}")


def test_the_summary_lists_each_schedule_with_its_expression(breadth: SandboxProcess) -> None:
    output = breadth.output()
    assert f"Schedule        rule {RULE}: rate(1 minute)" in output
    assert "schedule schedules-to-queue: cron(0 10 * * ? *) in Europe/Paris" in output
    assert "schedule schedules-to-nothing: rate(1 hour)" in output


def test_a_fired_rule_sends_the_scheduled_event_to_its_target(breadth: SandboxProcess) -> None:
    done = fire(breadth, RULE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"fired rule {RULE} (rate(1 minute))"
    event = wait_received(breadth, "SchedulesEcho")
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time",
                          "region", "resources", "detail"}
    assert (event["detail-type"], event["source"], event["detail"]) == (
        "Scheduled Event", "aws.events", {})
    assert event["resources"] == [f"arn:aws:events:us-east-1:000000000000:rule/{RULE}"]
    assert event["time"].endswith("Z")


def test_a_fired_schedule_sends_its_input_with_the_context_filled_in(
        breadth: SandboxProcess) -> None:
    assert fire(breadth, "schedules-to-queue").returncode == 0
    (message,) = messages(breadth, "SchedulesQueue")
    body = json.loads(message["body"])
    assert body["schedule"] == SCHEDULE_ARN + "schedules-to-queue"
    assert body["attempt"] == 1 and body["time"].endswith("Z")
    assert len(body["execution"]) == 36


def test_a_schedule_whose_target_names_nothing_ends_in_its_dlq_with_the_reason(
        breadth: SandboxProcess) -> None:
    assert fire(breadth, "schedules-to-nothing").returncode == 0
    (message,) = messages(breadth, "SchedulesDeadLetters")
    assert json.loads(message["body"]) == {"report": "hourly"}
    attributes = message["attributes"]
    assert attributes["X-Amz-Scheduler-Error-Code"] == "ResourceNotFoundException"
    assert "breadth-schedules-absent" in attributes["X-Amz-Scheduler-Error-Message"]
    assert attributes["X-Amz-Scheduler-Schedule-Arn"] == SCHEDULE_ARN + "schedules-to-nothing"
    assert attributes["X-Amz-Scheduler-Attempt"] == "1"


def test_an_unknown_name_is_refused_with_a_clear_message(breadth: SandboxProcess) -> None:
    done = fire(breadth, "no-such-schedule")
    assert done.returncode == 1
    assert "no schedule or scheduled rule is named no-such-schedule" in done.stderr
