"""The floor: what the machine's own parts cost with no sandbox plumbing in between.

- A DynamoDB `UpdateItem` straight to DynamoDB Local, as the functions send it (the same
  `if_not_exists` stamp, five stamps on one item per order), one client at a time, then many.
- A `PutEvents` round trip to the sandbox's endpoint that no rule matches: EventBridge's
  accepting an event (validation, writing it down) without any delivery after it.

Both go through boto3 as the functions' calls do, so the floor carries the client's own cost
too. Beside the floor, the same `UpdateItem` through the sandbox's endpoint (as the functions
send it under `up --trace-dynamodb`): the difference is what that pass-through costs a call.

What is left between the floor and the end-to-end figure is the sandbox's plumbing, and what
the floor does not count: the fan-out's three writes to one item queueing behind each
other in DynamoDB Local, and the Lambda runtime around each handler. The first is measured
beside the floor (`Floor.fan_out`): three clients stamping one item at once, as the three
functions order_created reaches do. Each waits for the others' commits: 2.4-4 ms more than
an update alone in this machine's runs, on the order's path (fulfilment's write is one of them).

The floor's calls come one after the other, each to a server that has just answered; an order's
come after pauses (a hop, a function's start), and on this machine a server woken from a pause
answers later: an `UpdateItem` or a `PutEvents` after 30 ms with nothing running took 1.2-1.4
ms longer than one back to back, for DynamoDB Local and the sandbox's own endpoint alike, and
busy-waiting in the client instead of sleeping changed nothing (the machine is a KVM guest whose
idle cores halt, `haltpoll`). `Floor.after_idle` measures that beside the floor too.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.orders import STAMPS
from sandbox.dynamodb.local import client

FLOOR_TABLE = "bench-floor"
FAN_OUT = STAMPS[1:4]  # the stamps of the three services order_created reaches at once
WARM_UP_CALLS = 50  # the JVM compiles DynamoDB Local's hot paths over the first calls
IDLE_S = 0.03  # the pause before each call of `Floor.after_idle`


def timed_ms(call: Callable[[], Any], count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


class Stamps:
    """UpdateItem calls as one order's five services make them: a new item, then four more
    stamps on it."""

    def __init__(self, dynamodb: Any) -> None:
        self.dynamodb = dynamodb
        self.calls = 0
        self.order_id = ""

    def __call__(self) -> None:
        step = self.calls % len(STAMPS)
        if step == 0:
            self.order_id = str(uuid.uuid4())
        self.calls += 1
        self.dynamodb.update_item(
            TableName=FLOOR_TABLE,
            Key={"ID": {"S": self.order_id}},
            UpdateExpression="SET #stamp = if_not_exists(#stamp, :now)",
            ExpressionAttributeNames={"#stamp": STAMPS[step]},
            ExpressionAttributeValues={":now": {"S": "2026-11-24T14:27:32.123Z"}},
        )


class Floor:
    """Raw calls one order's critical path makes, timed one by one: the order service's update
    and PutEvents, the fulfilment service's update and PutEvents, the logistic service's update.

    The bench takes a sample between two orders, so the floor and the orders it is compared
    with are measured under the same load, on a machine whose load others change.
    """

    def __init__(self, dynamodb_url: str, endpoint_url: str, bus: str) -> None:
        create_floor_table(dynamodb_url)
        self.stamps = Stamps(client(dynamodb_url))
        self.through_endpoint = Stamps(client(endpoint_url))
        self.events = client(endpoint_url, "events")
        self.entry = {"EventBusName": bus, "Source": "bench.floor", "DetailType": "floor",
                      "Detail": json.dumps({"metadata": {"service": "bench"}})}
        self.update_ms: list[float] = []
        self.put_events_ms: list[float] = []
        self.update_through_endpoint_ms: list[float] = []
        self.fan_out_clients = [client(dynamodb_url) for _ in FAN_OUT]
        self.fan_out_ms: list[float] = []
        self.idle_stamps = Stamps(client(dynamodb_url))
        self.update_after_idle_ms: list[float] = []
        self.put_events_after_idle_ms: list[float] = []

    def put_event(self) -> None:
        answer = self.events.put_events(Entries=[self.entry])
        if answer["FailedEntryCount"]:
            raise RuntimeError(f"PutEvents rejected the floor's entry: {answer['Entries']}")

    def warm_up(self) -> None:
        """The JVM compiles DynamoDB Local's hot paths over the first calls: not the floor."""
        timed_ms(self.stamps, WARM_UP_CALLS)
        timed_ms(self.through_endpoint, WARM_UP_CALLS // 5)
        timed_ms(self.put_event, WARM_UP_CALLS // 5)

    def sample(self) -> None:
        for call in (self.stamps, self.put_event, self.stamps, self.put_event, self.stamps):
            (ms,) = timed_ms(call, 1)
            (self.update_ms if call is self.stamps else self.put_events_ms).append(ms)
        self.update_through_endpoint_ms += timed_ms(self.through_endpoint, 1)
        self.fan_out()
        self.after_idle()

    def after_idle(self) -> None:
        """An UpdateItem and a PutEvents, each after IDLE_S with nothing running."""
        for call, times in ((self.idle_stamps, self.update_after_idle_ms),
                            (self.put_event, self.put_events_after_idle_ms)):
            time.sleep(IDLE_S)
            times += timed_ms(call, 1)

    def fan_out(self) -> None:
        """Three UpdateItems to one new item at once, each from a client of its own: each
        one's time, queueing behind the others' commits included."""
        key = {"ID": {"S": str(uuid.uuid4())}}
        start = threading.Barrier(len(FAN_OUT))
        times: list[float] = []

        def stamp(dynamodb: Any, name: str) -> None:
            start.wait()
            began = time.perf_counter()
            dynamodb.update_item(
                TableName=FLOOR_TABLE, Key=key,
                UpdateExpression="SET #stamp = if_not_exists(#stamp, :now)",
                ExpressionAttributeNames={"#stamp": name},
                ExpressionAttributeValues={":now": {"S": "2026-11-24T14:27:32.123Z"}})
            times.append((time.perf_counter() - began) * 1000)

        threads = [threading.Thread(target=stamp, args=pair)
                   for pair in zip(self.fan_out_clients, FAN_OUT, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.fan_out_ms += times


def create_floor_table(dynamodb_url: str) -> None:
    """A table of its own, shaped as the order table, so the floor's items never mix with orders."""
    dynamodb = client(dynamodb_url)
    if FLOOR_TABLE not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName=FLOOR_TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "ID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "ID", "AttributeType": "S"}])


def update_item_throughput(dynamodb_url: str, clients: int, seconds: float) -> float:
    """UpdateItem calls per second with `clients` clients calling back to back."""
    stamps = [Stamps(client(dynamodb_url)) for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    deadline = 0.0

    def run(stamp: Stamps) -> None:
        start.wait()
        while time.monotonic() < deadline:
            stamp()

    threads = [threading.Thread(target=run, args=(s,)) for s in stamps]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    deadline = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    return sum(s.calls for s in stamps) / (time.monotonic() - began)
