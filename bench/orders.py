"""Orders as a user makes them (`GET /<stage>/order` over a kept-alive connection), and what
became of each, read from the sandbox's history as it is written.

The history says when each step happened on one clock: the request reaching the REST API, each
event accepted by PutEvents, each function's START (the runtime getting the event) and its
duration. An order is complete when the four functions downstream of the order service have
each run to success for it: the last of them returns only after its stamp is stored. Whether
the five stamps are really there is checked on the table itself at the end (`lost_orders`).
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.core.history import EventPut, InvocationRun, Record, loads
from sandbox.dynamodb.local import client

DOWNSTREAM_FUNCTIONS = 4  # invoice, fulfilment, forecasting, logistic
STAMPS = ("time_order_service", "time_invoice_service", "time_fulfilment_service",
          "time_forecasting_service", "time_logistic_service")
# How often the history is read again when it had nothing new. The times come from the history,
# not from when the bench reads it, so this paces the orders and costs the machine, nothing else:
# every 2 ms, the reading took 1.8-3.1 ms of CPU an order on the two cores the orders run on, and
# end to end was 0.07x of the floor slower than when read every 20 ms (two A/B pairs).
POLL_S = 0.02


@dataclass
class Order:
    """One order the bench made, and its trace once the history has it."""

    stage: str
    phase: str
    sent: float  # time.time() before the request left the client
    answered: float  # time.time() when the client had the answer
    status: int
    order_id: str | None
    api_request_id: str | None
    api: InvocationRun | None = None  # the order service's invocation record
    events: list[dict[str, Any]] = field(default_factory=list)  # {"id", "at", "detail-type"}
    invocations: list[InvocationRun] = field(default_factory=list)  # downstream records


class History:
    """Follows the sandbox's history table as it grows (a read-only reader beside its writer:
    SQLite's write-ahead log lets both go on at once)."""

    def __init__(self, db_path: Path) -> None:
        self._db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, check_same_thread=False)
        self._last_id = 0
        self._lock = threading.Lock()
        self.api: dict[str, InvocationRun] = {}  # api request id -> order service record
        self.event_orders: dict[str, str] = {}  # event id -> order ID
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)  # order ID -> events
        self.invocations: dict[str, list[InvocationRun]] = defaultdict(list)  # order ID ->
        self._done: dict[str, set[str]] = defaultdict(set)  # order ID -> functions that succeeded
        self._waiters: dict[str, threading.Event] = {}
        self._running = True
        self._thread = threading.Thread(target=self._follow, name="history", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._running = False
        self._thread.join()
        self._db.close()

    def _follow(self) -> None:
        while self._running:
            try:
                rows = self._db.execute(
                    "SELECT id, at, kind, record FROM history WHERE id > ? ORDER BY id",
                    (self._last_id,)).fetchall()
            except sqlite3.OperationalError:  # busy for a moment (a checkpoint): read again
                rows = []
            if rows:
                self._last_id = rows[-1][0]
                with self._lock:
                    for _, at, kind, record in rows:
                        if kind in (EventPut.KIND, InvocationRun.KIND):
                            self._take(at, loads(kind, record))
            else:
                time.sleep(POLL_S)

    def _take(self, at: float, record: Record) -> None:
        if isinstance(record, EventPut):
            event = record.event
            order_id = (event.get("detail", {}).get("data") or {}).get("ID")
            if isinstance(order_id, str):
                self.event_orders[event["id"]] = order_id
                self.events[order_id].append(
                    {"id": event["id"], "at": at, "detail-type": event["detail-type"]})
        elif isinstance(record, InvocationRun) and record.trigger == "api":
            self.api[record.api_request_id or ""] = record
        elif isinstance(record, InvocationRun) and record.event_id in self.event_orders:
            order_id = self.event_orders[record.event_id]
            self.invocations[order_id].append(record)
            if record.ok:
                self._done[order_id].add(record.function)
                if len(self._done[order_id]) == DOWNSTREAM_FUNCTIONS and order_id in self._waiters:
                    self._waiters[order_id].set()

    def wait_complete(self, order_id: str, timeout_s: float) -> bool:
        with self._lock:
            if len(self._done[order_id]) >= DOWNSTREAM_FUNCTIONS:
                return True
            waiter = self._waiters.setdefault(order_id, threading.Event())
        return waiter.wait(timeout_s)

    def trace(self, order: Order) -> Order:
        """The order with what the history holds about it."""
        with self._lock:
            if order.api_request_id is not None:
                order.api = self.api.get(order.api_request_id)
            if order.order_id is not None:
                order.events = list(self.events.get(order.order_id, []))
                order.invocations = list(self.invocations.get(order.order_id, []))
        return order


class Client:
    """One user: one kept-alive connection to the sandbox's endpoint, as a browser keeps one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: http.client.HTTPConnection | None = None

    def order(self, stage: str, phase: str) -> Order:
        if self._connection is None:
            host, port = self.url.removeprefix("http://").split(":")
            self._connection = http.client.HTTPConnection(host, int(port), timeout=60)
        sent = time.time()
        try:
            self._connection.request("GET", f"/{stage}/order")
            answer = self._connection.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException):
            self._connection.close()
            self._connection = None
            return Order(stage, phase, sent, time.time(), 0, None, None)
        answered = time.time()
        try:
            order_id = json.loads(body).get("ID")
        except (ValueError, AttributeError):
            order_id = None
        return Order(stage, phase, sent, answered, answer.status, order_id,
                     answer.getheader("x-amzn-RequestId"))


def one_at_a_time(url: str, history: History, stages: list[str], count: int, phase: str,
                  between: Callable[[], None] = lambda: None,
                  timeout_s: float = 30) -> list[Order]:
    """`count` orders on each stage, taking turns, each waited for until complete (or
    `timeout_s`) before the next is made, so no two orders ever overlap; `between` runs before
    each turn."""
    user = Client(url)
    orders = []
    for _ in range(count):
        between()
        for stage in stages:
            order = user.order(stage, phase)
            orders.append(order)
            if order.order_id is not None:
                history.wait_complete(order.order_id, timeout_s)
    return orders


def closed_loop(url: str, history: History, stage: str, users: int, seconds: float, phase: str,
                on_start: Callable[[], None] = lambda: None,
                timeout_s: float = 30) -> list[Order]:
    """`users` users, each making an order and waiting until it is complete before the next,
    for `seconds`: `users` orders are in flight at every moment."""
    orders: list[Order] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    on_start()

    def user() -> None:
        me = Client(url)
        while time.monotonic() < deadline:
            order = me.order(stage, phase)
            with lock:
                orders.append(order)
            if order.order_id is not None:
                history.wait_complete(order.order_id, timeout_s)

    threads = [threading.Thread(target=user, name=f"user-{i}") for i in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return orders


def wait_all(history: History, orders: list[Order], timeout_s: float) -> None:
    """Wait until every accepted order is complete, or `timeout_s` is over."""
    deadline = time.monotonic() + timeout_s
    for order in orders:
        if order.order_id is not None:
            history.wait_complete(order.order_id, max(0.0, deadline - time.monotonic()))


def lost_orders(dynamodb_url: str, tables: dict[str, str], orders: list[Order]) -> list[str]:
    """IDs of orders the API accepted whose item does not hold all five stamps, read from
    DynamoDB Local itself; `tables` maps each stage to its stack's order table."""
    dynamodb = client(dynamodb_url)
    stamped: set[str] = set()
    for table in set(tables.values()):
        for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            stamped |= {item["ID"]["S"] for item in page["Items"]
                        if all(stamp in item for stamp in STAMPS)}
    return [o.order_id for o in orders if o.order_id is not None and o.order_id not in stamped]
