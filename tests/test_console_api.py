"""The console's JSON API in process, on a real state and a stand-in for DynamoDB: a refresh
with a cursor returns only the traces that changed, every query it runs uses an index (SQLite's
`EXPLAIN QUERY PLAN` of each statement shows no full scan), a trace is a waterfall with its
marks and log lines, and a table's items show under their full key."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.console.api import Console
from sandbox.core.history import DeliveryAttempt, EventPut, InvocationRun, MessageQueued
from sandbox.core.state import State
from sandbox.traces import context

BUS = "bookings"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:audit"
FUNCTION = "booker"


class Tables:
    """DynamoDB's answers the console reads: one table with a partition and a sort key."""

    def list_tables(self) -> dict[str, Any]:
        return {"TableNames": ["Stays"]}

    def describe_table(self, TableName: str) -> dict[str, Any]:
        return {"Table": {"KeySchema": [{"AttributeName": "night", "KeyType": "RANGE"},
                                        {"AttributeName": "hotel", "KeyType": "HASH"}]}}

    def scan(self, TableName: str, Limit: int) -> dict[str, Any]:
        return {"Items": [{"hotel": {"S": "abc"}, "night": {"N": str(n)}, "guest": {"S": g}}
                          for n, g in ((1, "ann"), (2, "bob"))]}


@pytest.fixture
def state(tmp_path: Path) -> Iterator[State]:
    opened = State(tmp_path / "state.db")
    yield opened
    opened.close()


@pytest.fixture
def console(state: State) -> Console:
    return Console(state, Tables(), lambda request_id: [
                       f"START RequestId: {request_id}", f"{request_id} says hello"],
                   [], {BUS: ["to-booker"]}, {FUNCTION: "Booker"}, {QUEUE: "audit"}, [QUEUE],
                   "Hotels")


def put(value: str) -> EventPut:
    return EventPut(BUS, {"id": f"e-{value}", "detail-type": "booked", "source": "front",
                          "detail": {"booking": value}}, ["to-booker"])


def invocation(request_id: str, ok: bool = True, cold: bool = False,
               attempt: int | None = None) -> InvocationRun:
    return InvocationRun(request_id, FUNCTION, "Booker", ok, time.time(), time.time(), 3.0,
                         120.0 if cold else None, 40, 128, attempt=attempt,
                         error_type=None if ok else "Boom", error_message=None if ok else "no")


def new_trace(state: State, value: str) -> EventPut:
    with context.span("event"):
        event = put(value)
        state.add(history=[event])
    return event


def child(state: State, parent: EventPut, *makes: Callable[[], Any]) -> None:
    """Records made under `parent`'s span, in turn (a record takes its place as it is made)."""
    with context.resume([parent.stamp.trace_id, parent.stamp.span_id]):
        for make in makes:
            state.record(make())


def test_a_refresh_with_a_cursor_returns_only_the_traces_that_changed(
        state: State, console: Console) -> None:
    first = new_trace(state, "b-1")
    start = console.traces(None)
    assert [t["trace_id"] for t in start["traces"]] == [first.stamp.trace_id]
    assert console.traces(start["cursor"]) == {"cursor": start["cursor"], "traces": []}

    second = new_trace(state, "b-2")
    newer = console.traces(start["cursor"])
    assert [t["trace_id"] for t in newer["traces"]] == [second.stamp.trace_id]
    assert newer["cursor"] > start["cursor"]

    child(state, first, lambda: invocation("r-1"))  # an older trace goes on
    again = console.traces(newer["cursor"])
    assert [(t["trace_id"], t["spans"]) for t in again["traces"]] == [(first.stamp.trace_id, 2)]


def test_every_query_of_the_console_uses_an_index(state: State, console: Console) -> None:
    event = new_trace(state, "b-1")
    child(state, event, lambda: invocation("r-1"),
          lambda: MessageQueued(QUEUE, "m-1", "{}", "api"))
    statements: list[str] = []
    with state.reading() as db:
        db.set_trace_callback(statements.append)
    cursor = console.traces(None)["cursor"]
    console.traces(cursor - 1)
    console.trace(event.stamp.trace_id)
    console.search("b-1")
    for kind, name in (("bus", BUS), ("function", FUNCTION), ("queue", QUEUE)):
        console.resource(kind, name)
    console.failures()
    with state.reading() as db:
        db.set_trace_callback(None)
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        plans = {s: [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + s)] for s in selects}
    assert len(plans) >= 6
    scans = {s: p for s, p in plans.items()
             if any(re.match(r"SCAN \w+$", step) for step in p)}  # a scan with no index
    assert scans == {}


def test_a_trace_is_a_waterfall_with_its_marks_and_log_lines(state: State,
                                                             console: Console) -> None:
    event = new_trace(state, "b-1")
    with context.resume([event.stamp.trace_id, event.stamp.span_id]), context.span("delivery"):
        state.record(DeliveryAttempt("e-b-1", "to-booker", "t0", FUNCTION, 2, True))
        with context.span("invocation"):
            state.record(invocation("r-1", ok=False, cold=True, attempt=2))
    shown = console.trace(f"Root={event.stamp.trace_id}")
    assert shown is not None and shown["ok"] is False
    rows = [(s["depth"], s["kind"], s["marks"]) for s in shown["spans"]]
    assert rows == [(0, "event", []), (1, "delivery", ["retry 1"]),
                    (2, "invocation", ["cold start", "retry 1", "failed"])]
    run = shown["spans"][2]
    assert run["logs"] == ["START RequestId: r-1", "r-1 says hello"]
    assert run["reason"] == "Boom: no" and run["offset_ms"] >= 0
    assert console.trace("1-00000000-000000000000000000000000") is None


def test_resources_show_events_with_their_rules_invocations_messages_and_full_keys(
        state: State, console: Console) -> None:
    event = new_trace(state, "b-1")
    child(state, event, lambda: invocation("r-1"),
          lambda: MessageQueued(QUEUE, "m-1", '{"b": 1}', "api"))
    [bus_row] = console.resource("bus", BUS)["rows"]
    assert (bus_row["detail_type"], bus_row["rules"]) == ("booked", ["to-booker"])
    [run] = console.resource("function", FUNCTION)["rows"]
    assert run["logs"][0] == "START RequestId: r-1" and run["trace_id"] == event.stamp.trace_id
    queue = console.resource("queue", QUEUE)
    assert [m["message_id"] for m in queue["rows"]] == ["m-1"] and queue["held"] == 0

    table = console.resource("table", "Stays")
    assert table["key"] == ["hotel", "night"]
    assert [row["key"] for row in table["rows"]] == [{"hotel": "abc", "night": 1},
                                                     {"hotel": "abc", "night": 2}]
    assert table["rows"][0]["item"] == {"guest": "ann"}
    assert [t["label"] for t in console.app()["resources"]["table"]] == ["Stays"]
