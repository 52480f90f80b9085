"""Schedules: a scheduled rule (rate, every minute) whose Scheduled Event reaches an echo
function; an EventBridge Scheduler schedule (the L1 `CfnSchedule`) whose Input, filled in with
Scheduler's context attributes, reaches a queue; and a schedule whose target names no function,
with a retry policy and a dead-letter queue, where its payload lands with Scheduler's reason.
The tests fire them with `python -m sandbox fire` rather than wait for the clock."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs

from breadth.app import function

RULE_NAME = "schedules-every-minute"
TO_QUEUE = "schedules-to-queue"
TO_NOTHING = "schedules-to-nothing"
ABSENT_FUNCTION = "arn:aws:lambda:us-east-1:000000000000:function:breadth-schedules-absent"
CONTEXT_INPUT = ('{"schedule": "<aws.scheduler.schedule-arn>", '
                 '"time": "<aws.scheduler.scheduled-time>", '
                 '"execution": "<aws.scheduler.execution-id>", '
                 '"attempt": <aws.scheduler.attempt-number>}')
OFF = scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF")


def add(stack: cdk.Stack) -> None:
    events.Rule(stack, "SchedulesRule", rule_name=RULE_NAME,
                schedule=events.Schedule.rate(cdk.Duration.minutes(1)),
                targets=[targets.LambdaFunction(function(stack, "SchedulesEcho", "echo"))])
    role = iam.Role(stack, "SchedulesRole",
                    assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"))
    queue = sqs.Queue(stack, "SchedulesQueue")
    dead_letters = sqs.Queue(stack, "SchedulesDeadLetters")
    scheduler.CfnSchedule(
        stack, "SchedulesToQueue", name=TO_QUEUE, flexible_time_window=OFF,
        schedule_expression="cron(0 10 * * ? *)", schedule_expression_timezone="Europe/Paris",
        target=scheduler.CfnSchedule.TargetProperty(
            arn=queue.queue_arn, role_arn=role.role_arn, input=CONTEXT_INPUT))
    scheduler.CfnSchedule(
        stack, "SchedulesToNothing", name=TO_NOTHING, flexible_time_window=OFF,
        schedule_expression="rate(1 hour)",
        target=scheduler.CfnSchedule.TargetProperty(
            arn=ABSENT_FUNCTION, role_arn=role.role_arn, input='{"report": "hourly"}',
            retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                maximum_retry_attempts=2, maximum_event_age_in_seconds=600),
            dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                arn=dead_letters.queue_arn)))
