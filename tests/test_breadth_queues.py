"""A queue in front of a consumer, end to end: boto3 sends to the queue, Lambda's event source
mapping hands batches to the function, a filter drops what it does not match, and a message the
function keeps failing goes to the dead-letter queue after maxReceiveCount receives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from breadth_sandbox import breadth  # noqa: F401
from sandbox_process import SandboxProcess, wait_for

pytestmark = pytest.mark.slow


def handled(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    prefix = "[QueuesConsumer] HANDLED "
    return [json.loads(line.removeprefix(prefix)) for line in list(sandbox.lines)
            if line.startswith(prefix)]


def url_of(sandbox: SandboxProcess, part: str) -> str:
    sqs = sandbox.client("sqs")
    (url,) = [u for u in sqs.list_queues()["QueueUrls"] if part in u.rsplit("/", 1)[-1]]
    return url


def test_a_queue_feeds_its_consumer_in_batches_and_redrives_what_keeps_failing(
        breadth: SandboxProcess) -> None:  # noqa: F811
    sqs = breadth.client("sqs")
    work = url_of(breadth, "QueuesWork")
    dead = url_of(breadth, "QueuesDeadLetters")
    bodies = [{"kind": "order", "n": n} for n in range(8)]
    bodies += [{"kind": "order", "n": 99, "fail": True}, {"kind": "refund", "n": 100}]
    for start in (0, 5):
        sqs.send_message_batch(QueueUrl=work, Entries=[
            {"Id": f"m{start + i}", "MessageBody": json.dumps(body)}
            for i, body in enumerate(bodies[start:start + 5])])

    done = wait_for(lambda: (h := handled(breadth)) and len(h) >= 8 and h, 60,
                    "the eight good messages handled")
    assert sorted(h["body"]["n"] for h in done) == list(range(8))
    assert {h["receives"] for h in done} == {"1"}

    def redriven() -> list[dict[str, Any]]:
        return sqs.receive_message(QueueUrl=dead, MessageSystemAttributeNames=["All"],
                                   WaitTimeSeconds=1).get("Messages", [])

    (failed,) = wait_for(redriven, 60, "the failing message in the dead-letter queue")
    assert json.loads(failed["Body"]) == bodies[8]
    # Received twice from the work queue, and now once from the dead-letter queue.
    assert failed["Attributes"]["ApproximateReceiveCount"] == "3"
    assert failed["Attributes"]["DeadLetterQueueSourceArn"].endswith(work.rsplit("/", 1)[-1])
    # The refund matched no filter: deleted without an invocation, never handled.
    attributes = sqs.get_queue_attributes(QueueUrl=work, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"],
            attributes["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")
    assert 100 not in {h["body"]["n"] for h in handled(breadth)}
