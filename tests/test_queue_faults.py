"""Faults on a queue and its event source mapping (the breadth stack's `queue_load` part): nothing
SQS accepted is lost when the consumer's worker is killed in the middle of a batch, or when the
sandbox is killed with messages received but not deleted and others waiting. Each message ends
handled or in the dead-letter queue, and each receive count the consumer sees is the one SQS
would give: one more than the receives before.

Each scenario prints its figures and fails on any message unaccounted for.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from breadth.queue_load import MAX_RECEIVES
from conftest import report
from order_accounting import history
from queue_accounting import CONSUMER, arn_of, held, printed, send, settle, url_of
from sandbox_process import SandboxProcess, alive, wait_for, workers
from test_faults import started  # noqa: F401

from sandbox.core.history import InvocationRun

pytestmark = pytest.mark.slow


def bodies(count: int, hold_s: float, held: range) -> list[dict[str, object]]:
    """Messages numbered `n`; one in ten fails; those in `held` hold their batch `hold_s`
    seconds on their first receive."""
    return [{"n": n, **({"fail": True} if n % 10 == 9 else {}),
             **({"hold": hold_s} if n in held else {})} for n in range(count)]


def counts(lines: list[str], message_id: str) -> list[int]:
    """The receive counts the consumer saw a message with, in the order it saw them."""
    return sorted(entry["receives"] for word in ("HANDLED", "FAILED")
                  for entry in printed(lines, word) if entry["messageId"] == message_id)


def test_a_worker_killed_in_the_middle_of_a_batch_loses_no_message(
    breadth_assembly: Path, tmp_path: Path, started: list[SandboxProcess],  # noqa: F811
) -> None:
    """The batch holding message 0 waits in its handler; its worker is SIGKILLed there. The
    invocation fails, so the batch is not deleted: each of its messages comes back after the
    visibility timeout and is handled at its second receive."""
    sandbox = SandboxProcess(breadth_assembly, tmp_path / "state").start()
    started.append(sandbox)
    sent = send(sandbox, url_of(sandbox, "QueueLoadWork"), bodies(30, 1.5, range(1)), threads=1)
    (holding,) = wait_for(lambda: printed(sandbox.lines, "HOLDING"), 30,
                          "the consumer to hold the batch with message 0")
    assert holding["pid"] in workers(sandbox)
    os.kill(holding["pid"], signal.SIGKILL)

    ledger = settle(sandbox, sent, "queues/worker killed mid-batch")
    batch = set(holding["messageIds"])
    killed = [r for r in history(sandbox.state, "invocation")
              if isinstance(r, InvocationRun) and r.service == CONSUMER and not r.ok]
    report(f"queues/worker killed mid-batch: 1 worker killed holding a batch of {len(batch)} "
           f"messages; {len(killed)} invocation failed, its messages came back")
    assert ledger.lost == []
    assert [(r.error_type, "signal: killed" in (r.error_message or "")) for r in killed] == [
        ("Runtime.ExitError", True)]
    lines = list(sandbox.lines)
    for message_id, body in sent.items():
        first = 2 if message_id in batch else 1  # the killed receive counts, unseen
        if body.get("fail"):
            assert counts(lines, message_id) == list(range(first, MAX_RECEIVES + 1))
            assert ledger.dead_letters[message_id] == MAX_RECEIVES
        else:
            assert ledger.handled[message_id] == [first], body


def test_a_sandbox_killed_with_messages_in_flight_loses_none_and_counts_each_receive(
    breadth_assembly: Path, tmp_path: Path, started: list[SandboxProcess],  # noqa: F811
) -> None:
    """Every batch holds 1 s at its messages' first receive, so at the SIGKILL the pollers'
    batches are received and not deleted, and the rest wait. The sandbox started again on the
    same state folder finds the received ones when their visibility timeout ends: the consumer
    sees each message first with one receive more than the state file held at the kill, then
    one more per receive, until it is handled or redriven after maxReceiveCount receives."""
    sandbox = SandboxProcess(breadth_assembly, tmp_path / "state").start()
    started.append(sandbox)
    work = url_of(sandbox, "QueueLoadWork")
    work_arn = arn_of(sandbox, work)
    sent = send(sandbox, work, bodies(200, 1, range(200)))
    sqs = sandbox.client("sqs")

    def in_flight_and_waiting() -> bool:
        attributes = sqs.get_queue_attributes(QueueUrl=work, AttributeNames=["All"])[
            "Attributes"]
        return (bool(printed(sandbox.lines, "HOLDING"))
                and int(attributes["ApproximateNumberOfMessagesNotVisible"]) > 0
                and int(attributes["ApproximateNumberOfMessages"]) > 0)

    wait_for(in_flight_and_waiting, 30, "batches in flight and messages waiting")
    orphans = workers(sandbox)
    sandbox.kill()
    for pid in orphans:  # workers run in sessions of their own: they outlive the sandbox
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    before = {message_id: message.receives for message_id, message in
              held(sandbox.state, work_arn).items()}
    first_run = list(sandbox.lines)

    sandbox.start()
    ledger = settle(sandbox, sent, "queues/sandbox killed", lines=first_run)
    in_flight = sum(receives > 0 for receives in before.values())
    report(f"queues/sandbox killed: {in_flight} messages received and not deleted, "
           f"{len(before) - in_flight} waiting at the kill")
    assert in_flight and len(before) > in_flight
    assert ledger.lost == []
    second_run = list(sandbox.lines)
    for message_id, receives in before.items():
        body = sent[message_id]
        last = MAX_RECEIVES if body.get("fail") else receives + 1
        assert counts(second_run, message_id) == list(range(receives + 1, last + 1)), body
        if body.get("fail"):
            assert ledger.dead_letters[message_id] == MAX_RECEIVES
        else:
            assert message_id in ledger.handled
