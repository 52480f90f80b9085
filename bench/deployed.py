"""`python -m bench --stack NAME`: the bench against a stack deployed on AWS, with the user's own
credentials (`--profile`, `--region`, found as the AWS CLI finds them; never printed).

What it does, and the facts it rests on:
- The order URL and the order table come from the stack's CloudFormation outputs (`OrderUrl`,
  and the table as `python -m sandbox trace --stack` finds it): what the stack says, not a guess.
- An order is `GET <OrderUrl>` over one kept-alive connection per user; its `ID` comes from the
  answer. Then the item is read with a strongly consistent GetItem until it holds the five
  `time_*` stamps, or `--order-timeout`. Polls start 50 ms apart and back off to 250 ms: each
  costs a read unit on AWS, and most of an order's time is spent waiting anyway.
- End to end is measured twice. By the client's clock alone: from sending the request to the
  answer of the first poll that sees the fifth stamp (an upper bound, late by at most one poll
  interval). And by the stamps: the latest stamp (written by a function, on AWS's clock) minus
  the moment the request was sent (on this machine's clock). The second has no poll delay but
  is off by however far the two clocks are apart: clock skew matters, a few milliseconds with
  NTP, seconds on a machine whose clock drifts; trust it only beside the first.
- Phase 1: `--orders` orders one at a time, p50/p99 end to end. Phase 2: `--users` users in a
  closed loop for `--seconds`; throughput is the orders completed in the window over the window.
  Lambda scales out for the load: the window holds those cold starts, as real users would.
- It stops by itself: at the window's end, at `--max-orders` orders in all (both phases: each
  costs Lambda, EventBridge and DynamoDB requests), or when more than a tenth of the orders
  fail (not accepted, or not complete in time) once a few have: something is wrong, and
  carrying on only costs money.
- An order is lost when the API accepted it and its item lacks a stamp at the end (each
  incomplete order is read once more after the phases, so a late one is not counted lost).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bench import analysis, report
from bench.orders import STAMPS
from sandbox.dynamodb.tables import Table
from sandbox.trace import TraceError, aws_session, deployed_table

ORDER_URL_OUTPUT = "OrderUrl"
FIRST_POLL_S = 0.05
POLL_BACKOFF = 1.5
LAST_POLL_S = 0.25
FAILED_SHARE = 0.1  # more failures than this share of the orders made stops the bench...
FAILED_FLOOR = 5  # ...once at least this many have failed: one early failure is not a trend
HTTP_TIMEOUT_S = 30


class BenchError(Exception):
    """What stops the bench before it measures anything: the stack, an output, credentials."""


@dataclass(frozen=True)
class Stack:
    name: str
    region: str
    order_url: str
    table: Table


@dataclass
class Order:
    """One order the bench made, and when it was seen complete."""

    phase: str
    sent: float  # time.time() before the request left
    answered: float  # time.time() when the answer was in
    status: int  # the HTTP status, 0 when no answer came
    order_id: str | None
    error: str | None = None  # why it failed, for the reader
    seen_complete: float | None = None  # time.time() at the answer of the poll that saw 5 stamps
    last_stamp: float | None = None  # the latest of the five stamps, on AWS's clock

    @property
    def accepted(self) -> bool:
        return self.status == 200 and self.order_id is not None

    def e2e_ms(self) -> float | None:
        return None if self.seen_complete is None else (self.seen_complete - self.sent) * 1000

    def e2e_stamps_ms(self) -> float | None:
        return None if self.last_stamp is None else (self.last_stamp - self.sent) * 1000


# Finding the stack


def open_session(args: argparse.Namespace) -> Any:
    """The user's session, refused early when it has no region or no credentials."""
    session = aws_session(args.profile, args.region)
    if session.region_name is None:
        raise BenchError("no AWS region: name one with --region (or in the profile's config)")
    try:
        credentials = session.get_credentials()
    except BotoCoreError as error:
        raise BenchError(f"AWS: {error}") from None
    if credentials is None:
        raise BenchError("no AWS credentials found: name a profile with --profile (or sign in: "
                         "`aws sso login` / `aws configure`)")
    return session


def find_stack(session: Any, args: argparse.Namespace) -> Stack:
    """The order URL and table the stack's outputs name."""
    try:
        [described] = session.client("cloudformation").describe_stacks(
            StackName=args.stack)["Stacks"]
    except ClientError as error:
        raise BenchError(f"stack {args.stack}: {error.response['Error']['Message']}") from None
    except BotoCoreError as error:
        raise BenchError(f"AWS: {error}") from None
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in described.get("Outputs", [])}
    if ORDER_URL_OUTPUT not in outputs:
        raise BenchError(f"stack {args.stack} has no output {ORDER_URL_OUTPUT} (outputs: "
                         f"{', '.join(outputs) or 'none'}): is it the order choreography stack?")
    table = deployed_table(session, args.stack, args.table)
    return Stack(args.stack, session.region_name, outputs[ORDER_URL_OUTPUT], table)


# Orders


class Client:
    """One user: one kept-alive connection to the order URL's host, as a browser keeps one."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.netloc
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._host, timeout=HTTP_TIMEOUT_S)
        return self._connection

    def order(self, phase: str) -> Order:
        sent = time.time()
        try:
            connection = self._connect()
            connection.request("GET", self._path)
            answer = connection.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return Order(phase, sent, time.time(), 0, None, f"no answer: {error}")
        answered = time.time()
        try:
            order_id = json.loads(body).get("ID")
        except (ValueError, AttributeError):
            order_id = None
        error = None if answer.status == 200 and order_id else \
            f"HTTP {answer.status}: {body[:200].decode(errors='replace')}"
        return Order(phase, sent, answered, answer.status, order_id, error)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def stamped_at(item: dict[str, Any]) -> float | None:
    """The latest of the five stamps (epoch seconds), or None while one is missing: each is an
    ISO 8601 UTC text ending in Z that a service wrote when it did its step."""
    if not all("S" in item.get(name, {}) for name in STAMPS):
        return None
    return max(datetime.fromisoformat(item[name]["S"]).astimezone(UTC).timestamp()
               for name in STAMPS)


class Poller:
    """Reads an order's item until its five stamps are there, gently (read units cost)."""

    def __init__(self, dynamodb: Any, table: Table) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def read(self, order: Order) -> bool:
        """One strongly consistent read; notes the order complete when it is."""
        try:
            item = self._dynamodb.get_item(
                TableName=self._table.name, ConsistentRead=True,
                Key={self._table.key_name: {self._table.key_type: order.order_id}}).get("Item")
        except (ClientError, BotoCoreError) as error:
            order.error = f"GetItem: {error}"
            return False
        last = stamped_at(item or {})
        if last is None:
            return False
        order.seen_complete, order.last_stamp, order.error = time.time(), last, None
        return True

    def wait(self, order: Order, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pause = FIRST_POLL_S
        while not self.read(order):
            if time.monotonic() + pause > deadline:
                order.error = order.error or f"not complete within {timeout_s:g} s"
                return
            time.sleep(pause)
            pause = min(pause * POLL_BACKOFF, LAST_POLL_S)


class Guard:
    """Decides, for every user, whether one more order may be made: the cap on orders in all,
    the failures' share, the window's end, Ctrl-C. The first reason to stop is kept."""

    def __init__(self, max_orders: int) -> None:
        self._lock = threading.Lock()
        self._max = max_orders
        self.made = 0
        self.failed = 0
        self.stopped: str | None = None
        self.failing = False  # stopped by failures: the figures do not describe the stack

    def admit(self) -> bool:
        with self._lock:
            if self.stopped is None and self.made >= self._max:
                self.stopped = f"the cap: {self._max} orders made (--max-orders)"
            if self.stopped is not None:
                return False
            self.made += 1
            return True

    def stop(self, reason: str) -> None:
        with self._lock:
            self.stopped = self.stopped or reason

    def done(self, order: Order) -> None:
        with self._lock:
            if order.seen_complete is not None:
                return
            self.failed += 1
            if self.stopped is None and self.failed >= FAILED_FLOOR and \
                    self.failed > FAILED_SHARE * self.made:
                self.failing = True
                self.stopped = (f"too many failures: {self.failed} of {self.made} orders "
                                f"(last: {order.error})")


def make(client: Client, poller: Poller, guard: Guard, phase: str,
         timeout_s: float) -> Order | None:
    """One order, waited for; None when the guard says stop."""
    if not guard.admit():
        return None
    order = client.order(phase)
    if order.accepted:
        poller.wait(order, timeout_s)
    guard.done(order)
    return order


def one_at_a_time(stack: Stack, poller: Poller, guard: Guard, count: int,
                  timeout_s: float) -> list[Order]:
    client = Client(stack.order_url)
    orders = []
    try:
        for _ in range(count):
            order = make(client, poller, guard, "single", timeout_s)
            if order is None:
                break
            orders.append(order)
    finally:
        client.close()
    return orders


def closed_loop(stack: Stack, poller: Poller, guard: Guard, users: int, seconds: float,
                timeout_s: float) -> tuple[list[Order], float, float]:
    """`users` users, each making an order and waiting for it before the next, until the window
    ends or the guard stops them. Returns the orders and the window: from the start until the
    window's end, or until the last user finished when the guard stopped them sooner."""
    orders: list[Order] = []
    lock = threading.Lock()
    start = time.time()
    deadline = start + seconds

    def user() -> None:
        client = Client(stack.order_url)
        try:
            while time.time() < deadline:
                order = make(client, poller, guard, "throughput", timeout_s)
                if order is None:
                    return
                with lock:
                    orders.append(order)
        finally:
            client.close()

    threads = [threading.Thread(target=user, name=f"user-{i}", daemon=True)
               for i in range(users)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        guard.stop("interrupted (Ctrl-C)")
        for thread in threads:
            thread.join()
    return orders, start, min(deadline, time.time())


def lost(poller: Poller, orders: list[Order]) -> list[str]:
    """Accepted orders still without their five stamps, each read once more."""
    missing = []
    for order in orders:
        if order.accepted and order.seen_complete is None and not poller.read(order):
            missing.append(str(order.order_id))
    return missing


# Figures


def throughput(orders: list[Order], start: float, end: float) -> float | None:
    done = sum(1 for o in orders if o.seen_complete is not None and start <= o.seen_complete <= end)
    return done / (end - start) if end > start else None


def figures(args: argparse.Namespace, stack: Stack, single: list[Order], loaded: list[Order],
            window: tuple[float, float], lost_ids: list[str],
            stopped: str | None) -> dict[str, Any]:
    """Every figure of the run, as the JSON file holds them."""
    e2e = [ms for ms in map(Order.e2e_ms, single) if ms is not None]
    everything = single + loaded
    orders_s = throughput(loaded, *window)
    return {
        "run": datetime.now(UTC).isoformat(timespec="seconds"),
        "stack": stack.name, "region": stack.region, "table": stack.table.name,
        "sizes": {"orders": args.orders, "users": args.users, "seconds": args.seconds,
                  "max_orders": args.max_orders, "order_timeout_s": args.order_timeout},
        "e2e_p50_ms": analysis.rounded(analysis.percentile(e2e, 50)),
        "e2e_p99_ms": analysis.rounded(analysis.percentile(e2e, 99)),
        "throughput_orders_s": analysis.rounded(orders_s),
        "orders_lost": len(lost_ids),
        "stopped": stopped,  # why the bench stopped before its window's end, if it did
        "e2e": {
            "polled_ms": analysis.summary(e2e),
            # On AWS's clock minus this machine's: as good as the two clocks agree.
            "stamps_ms": analysis.summary(
                ms for ms in map(Order.e2e_stamps_ms, single) if ms is not None),
            "client_answer_ms": analysis.summary(
                (o.answered - o.sent) * 1000 for o in single if o.accepted),
        },
        "throughput": {
            "orders_s": analysis.rounded(orders_s),
            "window_s": analysis.rounded(window[1] - window[0]),
            "orders_made": len(loaded),
            "e2e_ms": analysis.summary(ms for ms in map(Order.e2e_ms, loaded) if ms is not None),
        },
        "orders": {"made": len(everything),
                   "not_accepted": sum(1 for o in everything if not o.accepted),
                   "lost": len(lost_ids), "lost_ids": lost_ids[:20],
                   "errors": sorted({o.error for o in everything if o.error})[:10]},
    }


def table(r: dict[str, Any]) -> str:
    e2e, load = r["e2e"], r["throughput"]
    rows = [
        ("end to end, one at a time (p50 / p99): polled", p50_p99(e2e["polled_ms"])),
        ("end to end, one at a time (p50 / p99): by the stamps", p50_p99(e2e["stamps_ms"])),
        ("the order URL's answer (p50 / p99)", p50_p99(e2e["client_answer_ms"])),
        (f"throughput, {r['sizes']['users']} in flight",
         f"{report.number(r['throughput_orders_s'], '/s')} over "
         f"{report.number(load['window_s'], 's')}"),
        ("end to end under that load (p50 / p99)", p50_p99(load["e2e_ms"])),
        ("orders made / not accepted / lost",
         f"{r['orders']['made']} / {r['orders']['not_accepted']} / {r['orders_lost']}"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"bench {r['run']}: stack {r['stack']} in {r['region']}, table {r['table']}", ""]
    lines += [f"{name.ljust(width)}  {value}" for name, value in rows]
    if r["stopped"]:
        lines.append(f"\nstopped early: {r['stopped']}")
    return "\n".join(lines)


def p50_p99(summary: dict[str, Any]) -> str:
    return f"{report.p50_p99(summary)} (n={summary['n']})"


# The command


def measure(args: argparse.Namespace, session: Any, stack: Stack) -> tuple[dict[str, Any], bool]:
    """The figures, and whether failures stopped the run."""
    say = report.progress
    dynamodb = session.client("dynamodb", config=Config(max_pool_connections=args.users + 1))
    poller, guard = Poller(dynamodb, stack.table), Guard(args.max_orders)
    single: list[Order] = []
    loaded: list[Order] = []
    start = end = time.time()
    try:
        say(f"one at a time: {args.orders} orders on {stack.order_url}")
        single = one_at_a_time(stack, poller, guard, args.orders, args.order_timeout)
        if guard.stopped is None:
            say(f"throughput: {args.users} users for {args.seconds:g} s (at most "
                f"{args.max_orders} orders in all)")
            loaded, start, end = closed_loop(stack, poller, guard, args.users, args.seconds,
                                             args.order_timeout)
    except KeyboardInterrupt:
        guard.stop("interrupted (Ctrl-C)")
    say("reading every incomplete order once more")
    lost_ids = lost(poller, single + loaded)
    return figures(args, stack, single, loaded, (start, end), lost_ids, guard.stopped), \
        guard.failing


def main(args: argparse.Namespace) -> int:
    """0 when the run measured what it was asked to (the cap may shorten it), 1 when failures
    stopped it, 2 when it could not start: the stack, an output, the credentials."""
    try:
        session = open_session(args)
        stack = find_stack(session, args)
    except (BenchError, TraceError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    results, failing = measure(args, session, stack)
    print(table(results))
    written = report.write_json(results, args.results, "deployed-")
    print(f"\nbench: results in {written}")
    return 1 if failing else 0
