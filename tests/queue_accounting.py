"""Accounting for queue messages, the claim the queue fault and load tests check: every message
SQS accepted ends handled by the consumer, or in the dead-letter queue after exactly
`maxReceiveCount` receives; none is lost.

Read from outside, as a user would: what the consumer (tests/breadth/functions/
queue_load_consumer) printed, the queues' counts through GetQueueAttributes, and the messages
with their receive counts in the state file (what `python -m sandbox dlq` reads).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import report
from sandbox_process import SandboxProcess, wait_for

from sandbox.core.state import Message, State

CONSUMER = "QueueLoadConsumer"
COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
          "ApproximateNumberOfMessagesDelayed")


def printed(lines: Iterable[str], word: str) -> list[dict[str, Any]]:
    """What the consumer printed after `word` (HANDLED, FAILED, HOLDING), oldest first."""
    prefix = f"[{CONSUMER}] {word} "
    return [json.loads(line.removeprefix(prefix)) for line in list(lines)
            if line.startswith(prefix)]


def url_of(sandbox: SandboxProcess, part: str) -> str:
    (url,) = [u for u in sandbox.client("sqs").list_queues()["QueueUrls"]
              if part in u.rsplit("/", 1)[-1]]
    return url


def arn_of(sandbox: SandboxProcess, url: str) -> str:
    return sandbox.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def held(state: Path, queue_arn: str) -> dict[str, Message]:
    """The messages a queue holds in the state file, by id, with their receive counts."""
    db = State(state / "sandbox.db")
    try:
        return {message.id: message for message in db.messages(queue_arn)}
    finally:
        db.close()


def send(sandbox: SandboxProcess, url: str, bodies: list[dict[str, Any]],
         threads: int = 4) -> dict[str, dict[str, Any]]:
    """SendMessageBatch, ten at a time from a few threads: message id -> body of each accepted
    (a failed entry is refused, so it is not the queue's to lose)."""
    sqs = sandbox.client("sqs")

    def batch(start: int) -> list[tuple[str, dict[str, Any]]]:
        chunk = bodies[start:start + 10]
        answer = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": json.dumps(body)} for i, body in enumerate(chunk)])
        return [(entry["MessageId"], chunk[int(entry["Id"])])
                for entry in answer.get("Successful", [])]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return dict(pair for pairs in pool.map(batch, range(0, len(bodies), 10))
                    for pair in pairs)


def queue_empty(sandbox: SandboxProcess, url: str) -> bool:
    attributes = sandbox.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=list(COUNTS))["Attributes"]
    return all(attributes[name] == "0" for name in COUNTS)


@dataclass
class Ledger:
    sent: dict[str, dict[str, Any]]  # message id -> body
    handled: dict[str, list[int]] = field(default_factory=dict)  # id -> receive counts
    failed: dict[str, list[int]] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)  # id -> receives before redrive
    lost: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Messages handled more than once: at-least-once delivery allows it, the figure says
        how often it happened."""
        return sum(len(counts) > 1 for counts in self.handled.values())

    def line(self, scenario: str) -> str:
        return (f"{scenario}: sent {len(self.sent)}, processed {len(self.handled)}, "
                f"in DLQ {len(self.dead_letters)}, lost {len(self.lost)}, "
                f"duplicates {self.duplicates}")


def take_ledger(sent: dict[str, dict[str, Any]], lines: Iterable[str], state: Path,
                dead_letter_arn: str) -> Ledger:
    ledger = Ledger(sent)
    for word, seen in (("HANDLED", ledger.handled), ("FAILED", ledger.failed)):
        counts: dict[str, list[int]] = defaultdict(list)
        for entry in printed(lines, word):
            if entry["messageId"] in sent:
                counts[entry["messageId"]].append(entry["receives"])
        seen.update(counts)
    ledger.dead_letters = {message_id: message.receives for message_id, message
                           in held(state, dead_letter_arn).items() if message_id in sent}
    ledger.lost = [message_id for message_id in sent
                   if message_id not in ledger.handled and message_id not in ledger.dead_letters]
    return ledger


def settle(sandbox: SandboxProcess, sent: dict[str, dict[str, Any]], scenario: str,
           lines: Iterable[str] = (), timeout_s: float = 90) -> Ledger:
    """Wait until the work queue holds nothing (or `timeout_s` passes) and the consumer's
    lines have all been read, then take the ledger and print its line. `lines` adds what an
    earlier run of the sandbox printed."""
    work, dead = url_of(sandbox, "QueueLoadWork"), url_of(sandbox, "QueueLoadDeadLetters")
    dead_letter_arn = arn_of(sandbox, dead)
    earlier = list(lines)
    deadline = time.monotonic() + timeout_s
    while not queue_empty(sandbox, work) and time.monotonic() < deadline:
        time.sleep(0.2)

    def ledger() -> Ledger:
        return take_ledger(sent, earlier + list(sandbox.lines), sandbox.state, dead_letter_arn)

    try:  # a HANDLED line is printed before its message is deleted, but read a moment later
        account = wait_for(lambda: (taken := ledger()) and not taken.lost and taken, 10,
                           "every message handled or in the dead-letter queue")
    except AssertionError:
        account = ledger()
    report(account.line(scenario))
    return account
