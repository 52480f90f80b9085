"""Traces in process: how a span's context is carried, and the SQL under the history: the
queries use their indexes (no scan of the history at any size), retention trims only history
and logs past their time or the size cap, and a cursor returns only what is newer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sandbox.core.history import DeadLetter, DeliveryAttempt, Entry, EventPut, InvocationRun
from sandbox.core.state import Message, NewJob, State
from sandbox.traces import context, indexer, query, store
from sandbox.traces.model import Trace, span_of
from sandbox.traces.retention import Retention, parse_duration, parse_size, trim


@pytest.fixture
def state(tmp_path: Path) -> State:
    opened = State(tmp_path / "state.db")
    yield opened
    opened.close()


def event(order_id: str, event_id: str = "e-1") -> EventPut:
    return EventPut("arn:aws:events:us-east-1:123456789012:event-bus/orders",
                    {"id": event_id, "detail-type": "order_created",
                     "detail": {"orderId": order_id}}, ["order_created"])


def run(request_id: str, ok: bool = True) -> InvocationRun:
    return InvocationRun(request_id, "arn:aws:lambda:us-east-1:123456789012:function:f", "F", ok,
                         time.time(), time.time(), 3.0, None, 40, 128)


def test_a_header_is_continued_and_each_span_is_claimed_by_its_own_record() -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    with context.resume_header(header), context.span("event"):
        put = event("o-1")
        job = NewJob("delivery", "arn", {})
        handed = context.header()
    assert put.stamp.trace_id == "1-5759e988-bd862e3fe1be46a994272793"
    assert put.stamp.parent_id == "53995c3f42cd8ad8"
    assert job.trace == [put.stamp.trace_id, put.stamp.span_id]
    assert handed == f"Root={put.stamp.trace_id};Parent={put.stamp.span_id};Sampled=1"
    with context.resume(job.trace), context.span("delivery"):
        first = DeliveryAttempt("e-1", "r", "t", "arn", 1, True)
        other = event("o-1", "e-2")  # not the span's kind: a child of it
    assert first.stamp.parent_id == put.stamp.span_id
    assert other.stamp.parent_id == first.stamp.span_id


def test_a_malformed_header_or_none_starts_a_new_trace() -> None:
    for header in (None, "", "Root=nonsense", "Parent=53995c3f42cd8ad8"):
        with context.resume_header(header):
            put = event("o-1")
        assert put.stamp.parent_id is None and put.stamp.trace_id.startswith("1-")


def test_an_open_span_of_the_same_kind_is_not_nested() -> None:
    with context.span("invocation") as outer, context.span("invocation") as inner:
        assert inner is outer
        assert run("r-1").stamp.span_id == outer.span_id


def test_a_trace_is_found_by_id_and_by_a_value_its_records_carry(state: State) -> None:
    with context.span("event"):
        put = event("order-42")
        state.add(history=[put])
    with context.resume([put.stamp.trace_id, put.stamp.span_id]), context.span("invocation"):
        state.record(run("req-7"))
    state.record(event("order-43", "e-9"))  # another trace
    [found] = query.find(state, "order-42")
    assert found.trace_id == put.stamp.trace_id
    assert [(d, s.kind) for d, s in found.walk()] == [(0, "event"), (1, "invocation")]
    assert query.trace_ids(state, "req-7") == [put.stamp.trace_id]
    assert query.trace_ids(state, f"Root={put.stamp.trace_id}") == [put.stamp.trace_id]
    assert query.find(state, "nothing-like-it") == []
    assert [t["entry"] for t in query.recent(state)] == ["order_created put"] * 2


def test_values_are_indexed_behind_the_writes_and_found_before_and_after(
        state: State) -> None:
    put = event("order-7")
    state.add(history=[put])
    with state.reading() as db:
        assert store.values_cursor(db) == 0  # the write did not index it...
    assert query.trace_ids(state, "order-7") == [put.stamp.trace_id]  # ...a search finds it
    assert indexer.catch_up(state) == 1
    with state.reading() as db:
        assert store.values_cursor(db) == store.cursor(db)
        assert db.execute("SELECT COUNT(*) FROM trace_values WHERE value = 'order-7'"
                          ).fetchone()[0] == 1
    assert query.trace_ids(state, "order-7") == [put.stamp.trace_id]
    newer = event("order-7", "e-2")  # a second trace carrying the same value: newest first
    state.record(newer)
    assert query.trace_ids(state, "order-7") == [newer.stamp.trace_id, put.stamp.trace_id]
    assert indexer.catch_up(state) == 1 and indexer.catch_up(state) == 0


def test_an_event_with_a_lone_surrogate_is_kept_and_found_by_its_other_values(
        state: State) -> None:
    """JSON allows a lone surrogate, so PutEvents accepts one; SQLite's text cannot hold it."""
    odd = EventPut("arn:aws:events:us-east-1:123456789012:event-bus/b\ud800",
                   {"id": "e-odd", "detail-type": "x", "detail": {"a": "\uda00", "b": "o-7"}},
                   [])
    state.record(odd)
    [found] = query.find(state, "o-7")
    assert found.trace_id == odd.stamp.trace_id
    [entry] = query.entries_of(state, [found.trace_id])
    assert entry.record.event["detail"]["a"] == "\uda00", "the record itself is whole"


def test_an_orphan_span_is_shown_under_the_trace_not_lost(state: State) -> None:
    with context.resume(["1-5759e988-bd862e3fe1be46a994272793", "0000000000000001"]):
        state.record(run("r-1"))
    trace = query.one(state, "1-5759e988-bd862e3fe1be46a994272793")
    assert isinstance(trace, Trace) and [s.kind for s in trace.roots] == ["invocation"]


def test_a_cursor_returns_only_newer_spans(state: State) -> None:
    state.record(event("o-1", "e-1"))
    spans, cursor = query.since(state, 0)
    assert [s.kind for s in spans] == ["event"]
    assert query.since(state, cursor) == ([], cursor)
    state.record(run("r-2"))
    state.record(event("o-2", "e-2"))
    newer, after = query.since(state, cursor)
    assert [s.kind for s in newer] == ["invocation", "event"] and after > cursor


def plan(state: State, sql: str, args: tuple) -> str:
    with state.reading() as db:
        return " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, args))


@pytest.mark.parametrize("sql, args", [
    (f"SELECT {store.ROW} FROM history WHERE trace_id = ? ORDER BY id", ("t",)),
    ("SELECT h.trace_id FROM trace_values v JOIN history h ON h.id = v.history_id "
     "WHERE v.value = ? ORDER BY v.history_id DESC LIMIT ?", ("order-1", 10)),
    (f"SELECT {store.ROW} FROM history WHERE parent_id IS NULL AND id < ? ORDER BY id DESC "
     "LIMIT ?", (10, 10)),
    (f"SELECT {store.ROW} FROM history WHERE resource = ? ORDER BY id DESC LIMIT ?", ("a", 1)),
    (f"SELECT {store.ROW} FROM history WHERE id > ? ORDER BY id LIMIT ?", (0, 10)),
    ("DELETE FROM trace_values WHERE history_id <= ?", (5,)),
    ("SELECT id, at FROM history WHERE id >= ? ORDER BY id LIMIT 1", (5,)),
])
def test_each_query_of_the_traces_reads_an_index_not_the_whole_history(
        state: State, sql: str, args: tuple) -> None:
    for n in range(50):
        state.record(event(f"o-{n}", f"e-{n}"))
    with state.reading() as db:
        db.execute("ANALYZE")
    found = plan(state, sql, args)
    assert not any(step.startswith("SCAN") and "USING" not in step
                   for step in found.split(" | ")), found


def test_retention_trims_old_history_and_logs_and_never_undelivered_work(state: State) -> None:
    old = time.time() - 8 * 24 * 3600
    for n in range(3):
        state.record(event(f"old-{n}", f"e-old-{n}"))
    with state.transaction() as db:
        db.execute("UPDATE history SET at = ?", (old,))
        db.execute("INSERT INTO log_events (log_group, stream, at, message) VALUES "
                   "('/aws/lambda/f', 's', ?, 'old line'), ('/aws/lambda/f', 's', ?, 'new')",
                   (int(old * 1000), int(time.time() * 1000)))
    state.add(jobs=[NewJob("delivery", "arn", {}, created=old, due=old)],
              messages=[Message("m-1", "arn:aws:sqs:us-east-1:123456789012:q", "{}", {}, old)])
    state.record(event("new-1", "e-new"))
    assert trim(state, Retention()) == 3
    assert [e.record.event["id"] for e in state.history()] == ["e-new"]
    assert query.find(state, "old-1") == [] and query.find(state, "new-1")
    with state.reading() as db:
        assert db.execute("SELECT message FROM log_events").fetchall() == [("new",)]
        assert db.execute("SELECT COUNT(*) FROM trace_values WHERE value LIKE 'old-%'"
                          ).fetchone()[0] == 0
    assert state.pending_jobs() == 1 and [m.id for m in state.messages()] == ["m-1"]


def test_over_the_size_cap_the_oldest_history_goes_first(state: State) -> None:
    for n in range(40):
        state.record(event(f"o-{n}", f"e-{n}"))
    trim(state, Retention(max_bytes=1))  # everything is over: history empties, oldest first
    assert state.history() == []
    assert state.pending_jobs() == 0


def test_a_record_of_an_earlier_state_is_a_trace_of_its_own(tmp_path: Path) -> None:
    import sqlite3
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE jobs (id INTEGER PRIMARY KEY, kind TEXT, target TEXT, "
                     "payload TEXT, attempt INTEGER, due REAL, created REAL);"
                     "CREATE TABLE history (id INTEGER PRIMARY KEY, at REAL NOT NULL, "
                     "kind TEXT NOT NULL, record TEXT NOT NULL);")
    db.execute("INSERT INTO history (at, kind, record) VALUES (?, 'event', ?)",
               (time.time(), '{"bus": "b", "event": {"id": "e"}, "rules": []}'))
    db.commit()
    db.close()
    upgraded = State(path)
    [entry] = upgraded.history()
    span = span_of(entry)
    assert span.trace_id.startswith("1-") and span.parent_id is None
    assert indexer.catch_up(upgraded) == 1  # its values were never indexed: they are now
    assert query.trace_ids(upgraded, "e") == [span.trace_id]
    upgraded.close()


def test_an_on_failure_destination_is_a_destination_span_and_a_dlq_a_dead_letter() -> None:
    record = {"requestContext": {"condition": "RetriesExhausted"},
              "responsePayload": {"errorMessage": "no such product"}}
    topic = "arn:aws:sns:us-east-1:123456789012:Failures"
    queue = "arn:aws:sqs:us-east-1:123456789012:DeadLetters"
    spans = [span_of(Entry(1, time.time(), DeadLetter(where, "lambda", function="F",
                                                      record=record, route=route)))
             for where, route in ((topic, "OnFailure"), (queue, "DeadLetterConfig"))]
    assert [(s.name, s.attributes["messaging.system"], s.reason, s.ok) for s in spans] == [
        ("OnFailure destination -> Failures", "aws.sns", f"no such product (to {topic})", False),
        ("dead letter -> DeadLetters", "aws.sqs", f"no such product (to {queue})", False)]
    assert spans[0].attributes["aws.lambda.condition"] == "RetriesExhausted"


def test_a_state_whose_values_were_indexed_with_its_rows_is_not_indexed_again(
        tmp_path: Path) -> None:
    import sqlite3
    path = tmp_path / "v2.db"
    written = State(path)
    for n in range(3):
        written.record(event(f"o-{n}", f"e-{n}"))
    indexer.catch_up(written)
    written.close()
    db = sqlite3.connect(path)  # as a version-2 sandbox left it: values in, no cursor
    db.execute("DROP TABLE trace_values_cursor")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    upgraded = State(path)
    with upgraded.reading() as db:
        assert store.values_cursor(db) == store.cursor(db) == 3
    assert indexer.catch_up(upgraded) == 0
    upgraded.close()


@pytest.mark.parametrize("text, seconds", [("7d", 7 * 86400), ("12h", 43200), ("30m", 1800),
                                           ("90s", 90), ("3600", 3600), ("1.5h", 5400)])
def test_a_retention_is_days_hours_minutes_or_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text, size", [("1GB", 1024**3), ("500MB", 500 * 1024**2),
                                        ("64kb", 64 * 1024), ("2048", 2048)])
def test_a_history_cap_is_a_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_up_takes_the_retention_and_the_cap_and_refuses_nonsense(
        capsys: pytest.CaptureFixture[str]) -> None:
    from sandbox.__main__ import parser

    args = parser().parse_args(["up", "--retention", "12h", "--history-cap", "500MB"])
    assert (args.retention, args.history_cap) == (43200, 500 * 1024**2)
    defaults = parser().parse_args(["up"])
    assert Retention(defaults.retention, defaults.history_cap) == Retention()
    for option, value in (("--retention", "0"), ("--retention", "soon"),
                          ("--history-cap", "big")):
        with pytest.raises(SystemExit) as exited:
            parser().parse_args(["up", option, value])
        assert exited.value.code == 2
        assert f"argument {option}: {value} is not a" in capsys.readouterr().err
