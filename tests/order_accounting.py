"""Accounting for orders, the claim the fault, load and bad-input tests check: every order the API
answered 200 ends with five stamps, or is found, by its ID in the event, in a failure queue.

Read from outside, as a user would: the table through the sandbox's endpoint, the failure queues
through `python -m sandbox dlq --json`, and the state file for whether work is still pending.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import report
from sandbox_process import STAMPS, SandboxProcess, failure_messages

from sandbox.core.history import Record
from sandbox.core.state import State


def order_id_in(message: dict[str, Any]) -> str | None:
    """The order ID a failure-queue message is about: EventBridge's dead-letter queues hold the
    event, Lambda's on-failure destinations an invocation record with the event inside."""
    try:
        body = json.loads(message["body"])
        event = body.get("requestPayload", body)
        order_id = event["detail"]["data"]["ID"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return order_id if isinstance(order_id, str) else None


def send_orders(sandbox: SandboxProcess, count: int, at_a_time: int) -> tuple[list[str], int]:
    """GET /prod/order `count` times, `at_a_time` in parallel: the IDs of the orders answered
    200 (accepted), and how many were answered otherwise or not at all."""

    def one(_: int) -> str | None:
        try:
            with urllib.request.urlopen(f"{sandbox.url}/prod/order", timeout=60) as answer:
                return json.loads(answer.read())["ID"]
        except (OSError, urllib.error.HTTPError):  # 5xx, or the sandbox went away
            return None

    with ThreadPoolExecutor(max_workers=at_a_time) as pool:
        answers = list(pool.map(one, range(count)))
    accepted = [order_id for order_id in answers if order_id]
    return accepted, count - len(accepted)


def pending_jobs(state: Path) -> int:
    """Deliveries and asynchronous invocations not finished yet: none left means nothing more
    will happen to any order."""
    db = sqlite3.connect(state / "sandbox.db", timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    finally:
        db.close()


def events_accepted(state: Path) -> int:
    """How many events the bus has accepted so far."""
    db = sqlite3.connect(state / "sandbox.db", timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM history WHERE kind = 'event'").fetchone()[0]
    finally:
        db.close()


def history(state: Path, kind: str) -> list[Record]:
    """The sandbox's history records of one kind ('event', 'delivery', 'invocation', ...), as
    the typed records the sandbox wrote."""
    db = State(state / "sandbox.db")
    try:
        return [entry.record for entry in db.history(kind=kind, limit=1_000_000)]
    finally:
        db.close()


def stamped_items(sandbox: SandboxProcess) -> dict[str, dict[str, str]]:
    """Every item of the order table, read through the sandbox's endpoint."""
    dynamodb = sandbox.client("dynamodb")
    (table,) = dynamodb.list_tables()["TableNames"]
    items = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            items[item["ID"]["S"]] = {key: value["S"] for key, value in item.items()}
    return items


@dataclass
class Account:
    sent: int
    accepted: list[str]
    completed: set[str] = field(default_factory=set)
    in_failure_queues: set[str] = field(default_factory=set)
    lost: list[str] = field(default_factory=list)

    def line(self, scenario: str) -> str:
        return (f"{scenario}: sent {self.sent}, accepted {len(self.accepted)}, "
                f"completed {len(self.completed)}, in failure queues "
                f"{len(self.in_failure_queues)}, lost {len(self.lost)}")


def take_account(sandbox: SandboxProcess, sent: int, accepted: Iterable[str]) -> Account:
    """Sort the accepted orders into completed (five stamps), in a failure queue (and not
    complete), and lost (neither)."""
    account = Account(sent, list(accepted))
    items = stamped_items(sandbox)
    queued = {order_id_in(message) for message in failure_messages(sandbox.state)}
    for order_id in account.accepted:
        if all(stamp in items.get(order_id, {}) for stamp in STAMPS):
            account.completed.add(order_id)
        elif order_id in queued:
            account.in_failure_queues.add(order_id)
        else:
            account.lost.append(order_id)
    return account


def settle(sandbox: SandboxProcess, sent: int, accepted: Iterable[str], scenario: str,
           timeout_s: float = 120) -> Account:
    """Wait until the sandbox has no work left (or `timeout_s` passes), then take the account
    and print its line. While DynamoDB Local restarts the table cannot be read: try again."""
    accepted = list(accepted)
    deadline = time.monotonic() + timeout_s
    while pending_jobs(sandbox.state) and time.monotonic() < deadline:
        time.sleep(0.2)
    while True:
        try:
            account = take_account(sandbox, sent, accepted)
            break
        except Exception:
            if time.monotonic() > deadline + 30:
                raise
            time.sleep(0.5)
    report(account.line(scenario))
    return account
