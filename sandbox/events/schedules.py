"""Schedule expressions as EventBridge (scheduled rules) and EventBridge Scheduler read them,
and when each comes due next. Pure: no clock, no threads.

Facts, from AWS's "Cron expressions reference" and "Schedule types" pages:
- `rate(value unit)`: a positive whole `value`; unit minute/hour/day for 1, minutes/hours/days
  above 1 (`rate(1 hours)` and `rate(5 hour)` are not valid). A rate counts from when the rule or
  schedule was created (Scheduler: from its StartDate when it has one); locally, from when the
  sandbox started.
- `cron(minutes hours day-of-month month day-of-week year)`: six fields; minutes 0-59, hours
  0-23, day-of-month 1-31 (`, - * ? / L W`), month 1-12 or JAN-DEC, day-of-week 1-7 or SUN-SAT
  (1 is Sunday; `, - * ? L #`), year 1970-2199. One of day-of-month and day-of-week must be `?`
  and the other may not be. `L`: the last day of the month, or in day-of-week the last day of
  the week (Saturday), `5L` the month's last Thursday; `3W`: the weekday nearest the 3rd within
  the month, `LW` the month's last weekday; `3#2`: the month's second Tuesday, and a `#` must be
  the day-of-week field's only expression. Scheduled rules run in UTC; Scheduler runs a cron in
  its `ScheduleExpressionTimezone` (a local time that a daylight-saving change skips or repeats is
  taken as zoneinfo maps it).
- `at(yyyy-mm-ddThh:mm:ss)`: Scheduler only, once, in the schedule's time zone.
- A bad expression: PutRule answers `ValidationException` "Parameter ScheduleExpression is not
  valid.", which is what this module's errors say (with the reason after it).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

NOT_VALID = "Parameter ScheduleExpression is not valid."
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
FIRST_YEAR, LAST_YEAR = 1970, 2199
_RATE = re.compile(r"rate\(\s*(\d+)\s+([a-z]+)\s*\)")
_CRON = re.compile(r"cron\((.*)\)")
UTC_ZONE = ZoneInfo("UTC")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")


class ScheduleExpressionError(ValueError):
    """An expression AWS refuses: the message is AWS's, then why."""

    def __init__(self, expression: str, why: str) -> None:
        super().__init__(f"{NOT_VALID} {expression!r}: {why}")


@dataclass(frozen=True)
class Rate:
    text: str
    seconds: int

    def next_after(self, after: datetime, anchor: datetime, tz: ZoneInfo) -> datetime | None:
        """The first `anchor + k * period` later than `after` (k >= 1: not at creation)."""
        periods = max(0, int((after - anchor).total_seconds() // self.seconds)) + 1
        return anchor + timedelta(seconds=periods * self.seconds)


@dataclass(frozen=True)
class At:
    text: str
    when: datetime  # naive: a wall-clock time in the schedule's time zone

    def next_after(self, after: datetime, anchor: datetime, tz: ZoneInfo) -> datetime | None:
        due = self.when.replace(tzinfo=tz).astimezone(UTC)
        return due if due > after else None


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    days: tuple[str, ...] = field(default=())  # day-of-month items; empty when it is `?`
    weekdays: tuple[str, ...] = field(default=())  # day-of-week items; empty when it is `?`

    def next_after(self, after: datetime, anchor: datetime, tz: ZoneInfo) -> datetime | None:
        """The first minute later than `after` that the expression names, read in `tz`."""
        local = after.astimezone(tz)
        day = local.date()
        while day.year <= LAST_YEAR:
            if day.year not in self.years:
                day = date(day.year + 1, 1, 1)
                continue
            if day.month not in self.months:
                day = _first_of_next_month(day)
                continue
            if self.day_matches(day):
                found = self._time_on(day, after, tz)
                if found:
                    return found
            day += timedelta(days=1)
        return None

    def _time_on(self, day: date, after: datetime, tz: ZoneInfo) -> datetime | None:
        for hour in sorted(self.hours):
            for minute in sorted(self.minutes):
                due = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                if due.astimezone(UTC) > after:
                    return due.astimezone(UTC)
        return None

    def day_matches(self, day: date) -> bool:
        if self.days:
            return any(_day_of_month_matches(item, day) for item in self.days)
        return any(_day_of_week_matches(item, day) for item in self.weekdays)


Expression = Rate | Cron | At


def parse(text: str, scheduler: bool = False) -> Expression:
    """An expression of a rule (rate, cron) or, with `scheduler`, of a schedule (rate, cron,
    at). Raises `ScheduleExpressionError`."""
    if not isinstance(text, str):
        raise ScheduleExpressionError(str(text), "not a string")
    if match := _RATE.fullmatch(text):
        return _rate(text, int(match[1]), match[2])
    if match := _CRON.fullmatch(text):
        return _cron(text, match[1].split())
    if scheduler and (match := _AT.fullmatch(text)):
        try:
            return At(text, datetime.fromisoformat(match[1]))
        except ValueError:
            raise ScheduleExpressionError(text, "not a date and time") from None
    kinds = "rate(...), cron(...) or at(...)" if scheduler else "rate(...) or cron(...)"
    raise ScheduleExpressionError(text, f"expected {kinds}")


def _rate(text: str, value: int, unit: str) -> Rate:
    singular = unit.removesuffix("s")
    if singular not in RATE_UNITS:
        raise ScheduleExpressionError(text, "the unit is minute(s), hour(s) or day(s)")
    if value < 1:
        raise ScheduleExpressionError(text, "the value must be a positive whole number")
    if (value == 1) != (unit == singular):
        raise ScheduleExpressionError(
            text, "the unit is singular for a value of 1 and plural above")
    return Rate(text, value * RATE_UNITS[singular])


def _cron(text: str, fields: list[str]) -> Cron:
    if len(fields) != 6:
        raise ScheduleExpressionError(text, f"a cron has 6 fields, not {len(fields)}")
    minutes, hours, days, months, weekdays, years = fields
    if (days == "?") == (weekdays == "?"):
        raise ScheduleExpressionError(
            text, "one of day-of-month and day-of-week must be ?, and only one")
    try:
        cron = Cron(
            text,
            minutes=_values(minutes, 0, 59),
            hours=_values(hours, 0, 23),
            months=_values(months, 1, 12, MONTHS),
            years=_values(years, FIRST_YEAR, LAST_YEAR),
            days=() if days == "?" else _day_items(days),
            weekdays=() if weekdays == "?" else _weekday_items(weekdays),
        )
    except ValueError as error:
        raise ScheduleExpressionError(text, str(error)) from None
    return cron


def _number(text: str, low: int, high: int, names: tuple[str, ...] = ()) -> int:
    upper = text.upper()
    if upper in names:
        return names.index(upper) + low
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{text} is not in {low}-{high}")
    return int(text)


def _values(field_text: str, low: int, high: int, names: tuple[str, ...] = ()) -> frozenset[int]:
    """A field of `, - * /` items as the set of values it names."""
    values: set[int] = set()
    for item in field_text.split(","):
        values |= _item_values(item, low, high, names)
    return frozenset(values)


def _item_values(item: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    base, _, step_text = item.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) < 1:
            raise ValueError(f"{item}: the increment must be a positive number")
        step = int(step_text)
    if base == "*":
        first, last = low, high
    elif "-" in base:
        start, _, end = base.partition("-")
        first, last = _number(start, low, high, names), _number(end, low, high, names)
    else:
        first = _number(base, low, high, names)
        last = high if step_text else first
    if first <= last:
        return set(range(first, last + 1, step))
    # A range that wraps (FRI-MON, 22-2) runs to the end and on from the start.
    span = list(range(first, high + 1)) + list(range(low, last + 1))
    return set(span[::step])


def _day_items(field_text: str) -> tuple[str, ...]:
    """Day-of-month items, kept as text for `L`/`W`, checked here."""
    items = tuple(field_text.upper().split(","))
    for item in items:
        if item in ("L", "LW"):
            continue
        if item.endswith("W"):
            _number(item[:-1], 1, 31)
        else:
            _values(item, 1, 31)
    return items


def _weekday_items(field_text: str) -> tuple[str, ...]:
    """Day-of-week items (`L`, `5L`, `3#2` or `, - * /` values), checked here."""
    items = tuple(field_text.upper().split(","))
    if "#" in field_text and len(items) > 1:
        raise ValueError("a # must be the only expression of day-of-week")
    for item in items:
        if item == "L":
            continue
        if item.endswith("L"):
            _number(item[:-1], 1, 7, WEEKDAYS)
        elif "#" in item:
            weekday, _, nth = item.partition("#")
            _number(weekday, 1, 7, WEEKDAYS)
            _number(nth, 1, 5)
        else:
            _values(item, 1, 7, WEEKDAYS)
    return items


def aws_weekday(day: date) -> int:
    """1 for Sunday to 7 for Saturday, as AWS counts."""
    return (day.weekday() + 1) % 7 + 1


def _last_day(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _nearest_weekday(day: date, target: int) -> int:
    """The weekday nearest the `target` day of `day`'s month, never leaving the month."""
    last = _last_day(day)
    target = min(target, last)
    weekday = aws_weekday(day.replace(day=target))
    if weekday == 7:  # Saturday: the Friday before, or the Monday after the 1st
        return target - 1 if target > 1 else target + 2
    if weekday == 1:  # Sunday: the Monday after, or the Friday before the month's end
        return target + 1 if target < last else target - 2
    return target


def _day_of_month_matches(item: str, day: date) -> bool:
    if item == "L":
        return day.day == _last_day(day)
    if item == "LW":
        return day.day == _nearest_weekday(day, _last_day(day))
    if item.endswith("W"):
        return day.day == _nearest_weekday(day, int(item[:-1]))
    return day.day in _values(item, 1, 31)


def _day_of_week_matches(item: str, day: date) -> bool:
    weekday = aws_weekday(day)
    if item == "L":
        return weekday == 7
    if item.endswith("L"):
        wanted = _number(item[:-1], 1, 7, WEEKDAYS)
        return weekday == wanted and day.day + 7 > _last_day(day)
    if "#" in item:
        wanted_text, _, nth = item.partition("#")
        wanted = _number(wanted_text, 1, 7, WEEKDAYS)
        return weekday == wanted and (day.day - 1) // 7 + 1 == int(nth)
    return weekday in _values(item, 1, 7, WEEKDAYS)


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


@dataclass(frozen=True)
class Timing:
    """When a schedule fires: its expression, read in `tz`, between `start` and `end`
    (Scheduler's StartDate and EndDate; a rule has neither). `anchor` is when a rate counts
    from."""

    expression: Expression
    anchor: datetime
    tz: ZoneInfo = UTC_ZONE
    start: datetime | None = None
    end: datetime | None = None

    def next_after(self, after: datetime) -> datetime | None:
        anchor = self.start or self.anchor
        if self.start and after < self.start:
            after = self.start - timedelta(microseconds=1)
        due = self.expression.next_after(after, anchor, self.tz)
        if due is None or (self.end and due > self.end):
            return None
        return due


def aws_time(when: datetime) -> str:
    """A time as EventBridge writes it: 2026-11-29T10:00:00Z."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
