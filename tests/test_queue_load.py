"""Load: 1,000 messages through a queue to a function that fails one in ten. Every message is
handled, or in the dead-letter queue after exactly maxReceiveCount receives (each of which the
consumer saw and failed); none is lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from breadth.queue_load import MAX_RECEIVES
from conftest import report
from queue_accounting import send, settle, url_of
from sandbox_process import SandboxProcess

pytestmark = pytest.mark.slow

MESSAGES = 1000


def test_a_thousand_messages_one_in_ten_failing_lose_none(breadth_assembly: Path,
                                                          tmp_path: Path) -> None:
    bodies = [{"n": n, **({"fail": True} if n % 10 == 9 else {})} for n in range(MESSAGES)]
    with SandboxProcess(breadth_assembly, tmp_path / "state") as sandbox:
        started = time.monotonic()
        sent = send(sandbox, url_of(sandbox, "QueueLoadWork"), bodies)
        answered = time.monotonic() - started
        ledger = settle(sandbox, sent, "queues/load (one in ten failing)", timeout_s=120)
        report(f"queues/load: {MESSAGES} messages sent in {answered:.1f} s, all settled in "
               f"{time.monotonic() - started:.1f} s")
    failing = {message_id for message_id, body in sent.items() if body.get("fail")}
    assert len(sent) == MESSAGES
    assert ledger.lost == []
    assert set(ledger.handled) == set(sent) - failing
    assert set(ledger.dead_letters) == failing
    assert set(ledger.dead_letters.values()) == {MAX_RECEIVES}
    assert all(ledger.failed[message_id] == list(range(1, MAX_RECEIVES + 1))
               for message_id in failing), "each receive reached the consumer, which failed it"
