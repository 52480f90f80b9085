"""CloudWatch Logs in process: filter patterns (pure), and the Logs API over the state's store
(GetLogEvents' tokens as `aws logs tail` and SDK readers use them, FilterLogEvents, errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.core.state import State
from sandbox.logs.patterns import PatternError, matcher
from sandbox.logs.store import LogStore
from sandbox.logs.wire import LogsWire

ORDER = '{"level": "INFO", "message": "order created", "ID": "abc-1", "n": 7, "ok": true}'


@pytest.mark.parametrize(("pattern", "message", "matches"), [
    ("", "anything", True),
    ("ERROR", "[ERROR] disk full", True),
    ("ERROR", "[error] disk full", False),  # case-sensitive
    ("ERROR disk", "[ERROR] disk full", True),  # every term
    ("ERROR memory", "[ERROR] disk full", False),
    ('"disk full"', "[ERROR] disk full", True),  # a quoted phrase
    ('"full disk"', "[ERROR] disk full", False),
    ("ERROR -disk", "[ERROR] disk full", False),  # an excluded term
    ("ERROR -memory", "[ERROR] disk full", True),
    ("?ERROR ?WARN", "WARN slow", True),  # any of the ? terms
    ("?ERROR ?WARN", "INFO fine", False),
    ('{ $.ID = "abc-1" }', ORDER, True),
    ('{ $.ID = "abc-2" }', ORDER, False),
    ("{ $.ID = abc-1 }", ORDER, True),  # an unquoted string
    ('{ $.ID = "abc*" }', ORDER, True),  # a wildcard
    ('{ $.ID != "abc-1" }', ORDER, False),
    ("{ $.n > 5 }", ORDER, True),
    ("{ $.n >= 8 }", ORDER, False),
    ("{ $.n = 7 }", ORDER, True),
    ('{ $.n < 5 || $.ID = "abc-1" }', ORDER, True),
    ('{ $.n < 5 && $.ID = "abc-1" }', ORDER, False),
    ('{ ($.n < 5 || $.n > 6) && $.level = "INFO" }', ORDER, True),
    ("{ $.ok IS TRUE }", ORDER, True),
    ("{ $.missing NOT EXISTS }", ORDER, True),
    ('{ $.ID = "abc-1" }', "not JSON abc-1", False),
    ('{ $.items[0].sku = "X" }', '{"items": [{"sku": "X"}]}', True),
])
def test_filter_patterns(pattern: str, message: str, matches: bool) -> None:
    assert matcher(pattern)(message) is matches


@pytest.mark.parametrize("pattern", ['{ $.ID = "abc"', "{ $.ID = }", "{ ID = 1 }",
                                     "{ $.n > abc }", '{ $.a = 1 && }', 'ERROR "unclosed',
                                     "{ ($.a = 1 }", "[ip, user]"])
def test_invalid_filter_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError, match="Invalid filter pattern"):
        matcher(pattern)


@pytest.fixture
def logs(tmp_path: Path) -> LogsWire:
    store = LogStore(State(tmp_path / "state.db"))
    store.declare({"/aws/lambda/f": None, "OrderLogs": 30})
    for n in range(5):
        store.put("/aws/lambda/f", "2026/11/29/[$LATEST]a", f"line {n}", at_ms=1000 + n)
    store.put("/aws/lambda/f", "2026/11/29/[$LATEST]b", ORDER, at_ms=2000)
    return LogsWire(store, "us-east-1", "000000000000")


def call(logs: LogsWire, operation: str, **request: object) -> tuple[int, dict]:
    status, _, body = logs.handle(operation, json.dumps(request).encode())
    return status, json.loads(body)


def test_log_groups_with_their_retention(logs: LogsWire) -> None:
    _, answer = call(logs, "DescribeLogGroups")
    groups = {g["logGroupName"]: g for g in answer["logGroups"]}
    assert groups["OrderLogs"]["retentionInDays"] == 30
    assert "retentionInDays" not in groups["/aws/lambda/f"]
    assert groups["/aws/lambda/f"]["arn"] == \
        "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/f:*"
    _, answer = call(logs, "DescribeLogGroups", logGroupNamePrefix="/aws/lambda/")
    assert [g["logGroupName"] for g in answer["logGroups"]] == ["/aws/lambda/f"]


def test_log_streams_one_per_worker(logs: LogsWire) -> None:
    _, answer = call(logs, "DescribeLogStreams", logGroupName="/aws/lambda/f",
                     orderBy="LastEventTime", descending=True)
    assert [(s["logStreamName"], s["lastEventTimestamp"]) for s in answer["logStreams"]] == [
        ("2026/11/29/[$LATEST]b", 2000), ("2026/11/29/[$LATEST]a", 1004)]


def test_get_log_events_pages_with_forward_and_backward_tokens(logs: LogsWire) -> None:
    stream = {"logGroupName": "/aws/lambda/f", "logStreamName": "2026/11/29/[$LATEST]a"}
    _, newest = call(logs, "GetLogEvents", limit=2, **stream)
    assert [e["message"] for e in newest["events"]] == ["line 3", "line 4"]
    _, older = call(logs, "GetLogEvents", limit=2, nextToken=newest["nextBackwardToken"],
                    **stream)
    assert [e["message"] for e in older["events"]] == ["line 1", "line 2"]
    _, head = call(logs, "GetLogEvents", limit=2, startFromHead=True, **stream)
    assert [e["message"] for e in head["events"]] == ["line 0", "line 1"]
    _, end = call(logs, "GetLogEvents", nextToken=newest["nextForwardToken"], **stream)
    assert end["events"] == []
    assert end["nextForwardToken"] == newest["nextForwardToken"]  # nothing new: same token


def test_filter_log_events_by_pattern_stream_and_time(logs: LogsWire) -> None:
    _, found = call(logs, "FilterLogEvents", logGroupName="/aws/lambda/f",
                    filterPattern='{ $.ID = "abc-1" }')
    assert [(e["logStreamName"], e["message"]) for e in found["events"]] == [
        ("2026/11/29/[$LATEST]b", ORDER)]
    _, found = call(logs, "FilterLogEvents", logGroupName="/aws/lambda/f", startTime=1002,
                    endTime=1004, logStreamNames=["2026/11/29/[$LATEST]a"])
    assert [e["message"] for e in found["events"]] == ["line 2", "line 3"]
    _, page = call(logs, "FilterLogEvents", logGroupName="/aws/lambda/f", limit=4)
    _, rest = call(logs, "FilterLogEvents", logGroupName="/aws/lambda/f",
                   nextToken=page["nextToken"])
    assert len(page["events"]) == 4 and len(rest["events"]) == 2 and "nextToken" not in rest


def test_bad_requests_get_logs_errors(logs: LogsWire) -> None:
    status, answer = call(logs, "FilterLogEvents", logGroupName="/aws/lambda/f",
                          filterPattern="{ $.ID = ")
    assert (status, answer["__type"], answer["message"]) == (
        400, "InvalidParameterException", "Invalid filter pattern")
    status, answer = call(logs, "GetLogEvents", logGroupName="nope", logStreamName="s")
    assert (status, answer["__type"]) == (400, "ResourceNotFoundException")
    assert answer["message"] == "The specified log group does not exist."
    status, answer = call(logs, "GetLogEvents", logGroupName="/aws/lambda/f",
                          logStreamName="nope")
    assert answer["message"] == "The specified log stream does not exist."


def test_retention_deletes_older_events_at_start(tmp_path: Path) -> None:
    store = LogStore(State(tmp_path / "state.db"))
    day = 86_400_000
    store.declare({"Kept": 1, "Forever": None}, now_ms=10 * day)
    store.put("Kept", "s", "old", at_ms=8 * day)
    store.put("Kept", "s", "new", at_ms=10 * day)
    store.put("Forever", "s", "old", at_ms=day)
    store.declare({"Kept": 1, "Forever": None}, now_ms=10 * day)
    assert store.lines("Kept") == ["new"]
    assert store.lines("Forever") == ["old"]


def test_one_invocation_lines_for_the_log_tail(tmp_path: Path) -> None:
    store = LogStore(State(tmp_path / "state.db"))
    for stream, line, request_id in [
            ("a", "init line", None), ("a", "START RequestId: r1 Version: $LATEST", "r1"),
            ("b", "other worker", "r0"), ("a", "hello", "r1"), ("a", "END RequestId: r1", "r1"),
            ("a", "REPORT RequestId: r1\tDuration: 1 ms", "r1"),
            ("a", "START RequestId: r2 Version: $LATEST", "r2")]:
        store.put("g", stream, line, request_id=request_id)
    assert store.invocation("r1") == ["START RequestId: r1 Version: $LATEST", "hello",
                                      "END RequestId: r1", "REPORT RequestId: r1\tDuration: 1 ms"]
    assert store.invocation("r9") == []


def test_reading_an_invocation_costs_the_same_however_many_lines_its_function_wrote(
        tmp_path: Path) -> None:
    """SQLite's own count of the steps it ran, not a timing: a worker's stream goes on with
    every later invocation, and none of them may be read to find this one's lines."""
    def steps(later: int) -> int:
        state = State(tmp_path / f"{later}.db")
        store = LogStore(state)
        lines = [("START RequestId: r0 Version: $LATEST", "r0"), ("hello", "r0"),
                 ("REPORT RequestId: r0\tDuration: 1 ms", "r0")]
        lines += [(f"line of run {n}", f"r{n + 1}") for n in range(later)]
        for message, request_id in lines:
            store.put("g", "a", message, request_id=request_id)
        counted = [0]
        with state.reading() as db:
            db.set_progress_handler(lambda: counted.__setitem__(0, counted[0] + 1) or 0, 10)
        assert store.invocation("r0") == [line for line, _ in lines[:3]]
        with state.reading() as db:
            db.set_progress_handler(None, 10)
        state.close()
        return counted[0]

    assert steps(5_000) <= 1.5 * steps(50)


def test_the_lines_of_an_earlier_state_get_their_invocation_from_their_stream(
        tmp_path: Path) -> None:
    import sqlite3
    path = tmp_path / "v3.db"
    State(path).close()
    db = sqlite3.connect(path)  # as a version-3 sandbox left it: lines without their invocation
    db.execute("DROP INDEX log_events_request")
    db.execute("ALTER TABLE log_events DROP COLUMN request_id")
    db.executemany("INSERT INTO log_events (log_group, stream, at, message) VALUES (?, ?, 0, ?)",
                   [("g", "a", "init line"), ("g", "a", "START RequestId: r1 Version: $LATEST"),
                    ("g", "b", "START RequestId: r2 Version: $LATEST"), ("g", "a", "hello"),
                    ("g", "a", "REPORT RequestId: r1\tDuration: 1 ms"), ("g", "a", "later")])
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    store = LogStore(State(path))
    assert store.invocation("r1") == ["START RequestId: r1 Version: $LATEST", "hello",
                                      "REPORT RequestId: r1\tDuration: 1 ms"]
    assert store.invocation("r2") == ["START RequestId: r2 Version: $LATEST"]


def test_lines_written_in_batches_are_read_as_soon_as_they_are_put(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    store = LogStore(state)
    store.start()
    lines = ["START RequestId: r1 Version: $LATEST", "hello", "REPORT RequestId: r1"]
    for line in lines:
        store.put("g", "a", line, request_id="r1")
    assert store.invocation("r1") == lines  # a read writes what is pending first
    store.put("g", "a", "after", request_id="r2")
    store.stop()  # writes the last batch
    store.put("g", "a", "stopped", request_id="r3")  # no writer: at once
    with state.reading() as db:
        assert [row[0] for row in db.execute("SELECT message FROM log_events ORDER BY id")] == [
            *lines, "after", "stopped"]
