"""Schedule expressions: AWS's documented cron and rate examples fire when AWS says they do, and
the expressions AWS refuses are refused with its message."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sandbox.events.schedules import (
    NOT_VALID,
    Cron,
    ScheduleExpressionError,
    Timing,
    aws_time,
    parse,
)

# Sunday 29 November 2026, 01:07:30 UTC
NOW = datetime(2026, 11, 29, 1, 7, 30, tzinfo=UTC)


def firings(expression: str, count: int, after: datetime = NOW, tz: str = "UTC",
            anchor: datetime = NOW) -> list[str]:
    timing = Timing(parse(expression, scheduler=True), anchor, ZoneInfo(tz))
    found = []
    for _ in range(count):
        due = timing.next_after(after)
        assert due is not None
        found.append(aws_time(due))
        after = due
    return found


# AWS's examples (EventBridge user guide, "Cron expressions reference"), with what they mean.
@pytest.mark.parametrize(("expression", "expected"), [
    # Run at 10:00 am (UTC+0) every day
    ("cron(0 10 * * ? *)", ["2026-11-29T10:00:00Z", "2026-11-30T10:00:00Z"]),
    # Run at 12:15 pm (UTC+0) every day
    ("cron(15 12 * * ? *)", ["2026-11-29T12:15:00Z", "2026-11-30T12:15:00Z"]),
    # Run at 6:00 pm (UTC+0) every Monday through Friday
    ("cron(0 18 ? * MON-FRI *)", ["2026-11-30T18:00:00Z", "2026-12-01T18:00:00Z"]),
    # Run at 8:00 am (UTC+0) every first day of the month
    ("cron(0 8 1 * ? *)", ["2026-12-01T08:00:00Z", "2027-01-01T08:00:00Z"]),
    # Run every 15 minutes
    ("cron(0/15 * * * ? *)", ["2026-11-29T01:15:00Z", "2026-11-29T01:30:00Z",
                              "2026-11-29T01:45:00Z", "2026-11-29T02:00:00Z"]),
    # Run every 10 minutes Monday through Friday (NOW is a Sunday)
    ("cron(0/10 * ? * MON-FRI *)", ["2026-11-30T00:00:00Z", "2026-11-30T00:10:00Z"]),
    # Run every 5 minutes Monday through Friday between 8:00 am and 5:55 pm (UTC+0)
    ("cron(0/5 8-17 ? * MON-FRI *)", ["2026-11-30T08:00:00Z", "2026-11-30T08:05:00Z"]),
    # Run at 9:00 am (UTC+0) on the first Monday of each month
    ("cron(0 9 ? * 2#1 *)", ["2026-12-07T09:00:00Z", "2027-01-04T09:00:00Z"]),
])
def test_documented_examples(expression: str, expected: list[str]) -> None:
    assert firings(expression, len(expected)) == expected


def test_every_five_minutes_on_weekdays_stops_at_five_to_six() -> None:
    friday_evening = datetime(2026, 12, 4, 17, 50, tzinfo=UTC)
    assert firings("cron(0/5 8-17 ? * MON-FRI *)", 2, after=friday_evening) == [
        "2026-12-04T17:55:00Z", "2026-12-07T08:00:00Z"]


@pytest.mark.parametrize(("expression", "expected"), [
    ("cron(0 0 L * ? *)", ["2026-11-30T00:00:00Z", "2026-12-31T00:00:00Z",
                           "2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z"]),
    # The weekday nearest the 15th: Nov 15 2026 is a Sunday -> Monday 16th; Jan 15 2027 a Friday
    ("cron(0 0 15W * ? *)", ["2026-12-15T00:00:00Z", "2027-01-15T00:00:00Z"]),
    # 1W on a Saturday (1 May 2027) does not leave the month: Monday 3rd
    ("cron(0 0 1W 5 ? 2027)", ["2027-05-03T00:00:00Z"]),
    # The last weekday: 31 Jan 2027 is a Sunday -> Friday 29th
    ("cron(0 0 LW 1 ? 2027)", ["2027-01-29T00:00:00Z"]),
    # L alone in day-of-week is the week's last day, Saturday
    ("cron(0 12 ? * L *)", ["2026-12-05T12:00:00Z", "2026-12-12T12:00:00Z"]),
    # 6L: the month's last Friday
    ("cron(0 12 ? * 6L *)", ["2026-12-25T12:00:00Z", "2027-01-29T12:00:00Z"]),
    ("cron(30 6 ? * SUN,SAT *)", ["2026-11-29T06:30:00Z", "2026-12-05T06:30:00Z"]),
    ("cron(0 0 1 JAN,JUL ? *)", ["2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z"]),
    ("cron(0 0 1 1 ? 2027-2028)", ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
])
def test_special_days(expression: str, expected: list[str]) -> None:
    assert firings(expression, len(expected)) == expected


def test_a_cron_past_its_last_year_never_fires_again() -> None:
    assert Timing(parse("cron(0 0 1 1 ? 2020)"), NOW).next_after(NOW) is None


def test_rates_count_from_their_anchor() -> None:
    anchor = datetime(2026, 11, 29, 1, 0, 10, tzinfo=UTC)
    assert firings("rate(1 minute)", 2, anchor=anchor) == [
        "2026-11-29T01:08:10Z", "2026-11-29T01:09:10Z"]
    assert firings("rate(2 hours)", 1, anchor=anchor) == ["2026-11-29T03:00:10Z"]
    assert firings("rate(1 day)", 1, anchor=anchor) == ["2026-11-30T01:00:10Z"]


def test_scheduler_cron_runs_in_its_time_zone() -> None:
    # 09:00 in New York is 14:00 UTC in winter, 13:00 UTC in summer.
    assert firings("cron(0 9 * * ? *)", 1, tz="America/New_York") == ["2026-11-29T14:00:00Z"]
    summer = datetime(2027, 7, 1, tzinfo=UTC)
    assert firings("cron(0 9 * * ? *)", 1, after=summer, tz="America/New_York") == [
        "2027-07-01T13:00:00Z"]


def test_at_fires_once_in_its_time_zone() -> None:
    timing = Timing(parse("at(2026-12-24T18:00:00)", scheduler=True), NOW,
                    ZoneInfo("Europe/Paris"))
    due = timing.next_after(NOW)
    assert due is not None and aws_time(due) == "2026-12-24T17:00:00Z"
    assert timing.next_after(due) is None


def test_start_and_end_dates_bound_a_schedule() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    end = datetime(2026, 12, 2, 12, tzinfo=UTC)
    timing = Timing(parse("cron(0 10 * * ? *)"), NOW, start=start, end=end)
    first = timing.next_after(NOW)
    assert first is not None and aws_time(first) == "2026-12-01T10:00:00Z"
    second = timing.next_after(first)
    assert second is not None and aws_time(second) == "2026-12-02T10:00:00Z"
    assert timing.next_after(second) is None


def test_names_are_read_in_any_case() -> None:
    cron = parse("cron(0 0 ? jan mon *)")
    assert isinstance(cron, Cron) and cron.months == {1} and cron.weekdays == ("MON",)


@pytest.mark.parametrize("expression", [
    "rate(1 minutes)",  # 1 takes the singular
    "rate(5 minute)",  # more than 1 takes the plural
    "rate(0 minutes)",
    "rate(5 seconds)",
    "rate(-5 minutes)",
    "rate(five minutes)",
    "cron(0 10 * * *)",  # five fields: EventBridge's cron has six
    "cron(0 10 * * * *)",  # day-of-month and day-of-week both given
    "cron(0 10 ? * ? *)",  # neither given
    "cron(60 10 * * ? *)",
    "cron(0 24 * * ? *)",
    "cron(0 10 32 * ? *)",
    "cron(0 10 * 13 ? *)",
    "cron(0 10 ? * 8 *)",
    "cron(0 10 * * ? 2200)",
    "cron(0 10 ? * 3#1,6#3 *)",  # a # must be alone
    "cron(0 10 ? * 2#6 *)",
    "cron(0/0 * * * ? *)",
    "cron(0 10 * FOO ? *)",
    "at(2026-12-24T18:00:00)",  # at() is Scheduler's, not a rule's
    "every 5 minutes",
    "",
])
def test_invalid_expressions_are_refused_as_aws_refuses_them(expression: str) -> None:
    with pytest.raises(ScheduleExpressionError) as error:
        parse(expression)
    assert str(error.value).startswith(NOT_VALID)


def test_an_impossible_at_is_refused() -> None:
    with pytest.raises(ScheduleExpressionError):
        parse("at(2026-02-30T10:00:00)", scheduler=True)
