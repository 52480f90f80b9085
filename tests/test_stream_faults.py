"""Faults while Lambda reads a DynamoDB stream (the breadth stack's outbox table and its
consumer): DynamoDB Local killed in the middle, then the whole sandbox killed in the middle.
Every record the stream holds is handled (or would be in the on-failure queue), in order per
item; a batch may run twice, none is skipped.

Each scenario prints its figures (writes, stream records, handled, run twice, lost)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import report
from sandbox_process import FAST_RETRIES, SandboxProcess, wait_for
from test_breadth_streams import handled
from test_faults import dynamodb_local, fire_when

from sandbox.dynamodb.local import client

pytestmark = pytest.mark.slow

ITEMS = 150


@pytest.fixture
def sandbox(breadth_assembly: Path, tmp_path: Path) -> Iterator[SandboxProcess]:
    sandbox = SandboxProcess(breadth_assembly, tmp_path / "state", extra_args=FAST_RETRIES)
    yield sandbox.start()
    if sandbox.process is not None and sandbox.process.poll() is None:
        sandbox.stop()


def table_of(sandbox: SandboxProcess) -> str:
    (table,) = [t for t in sandbox.client("dynamodb").list_tables()["TableNames"]
                if "StreamsOutbox" in t]
    return table


class Writer:
    """Puts ITEMS order items, then sets each one's `v` to 2, from a thread; a write refused
    while DynamoDB Local is down is sent again until it is accepted, or the writer is stopped."""

    def __init__(self, sandbox: SandboxProcess, prefix: str) -> None:
        self.sandbox = sandbox
        self.prefix = prefix
        self.refused = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._write, daemon=True)
        self.thread.start()

    def _write(self) -> None:
        ddb = self.sandbox.client("dynamodb")
        table = table_of(self.sandbox)
        for n in range(ITEMS):
            self._until_accepted(lambda n=n: ddb.put_item(TableName=table, Item={
                "pk": {"S": f"{self.prefix}{n}"}, "v": {"N": "1"}}))
        for n in range(ITEMS):
            self._until_accepted(lambda n=n: ddb.update_item(
                TableName=table, Key={"pk": {"S": f"{self.prefix}{n}"}},
                UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": "2"}}))

    def _until_accepted(self, write: Callable[[], Any]) -> None:
        def accepted() -> bool:
            if self.stopped.is_set():
                return True
            try:
                write()
            except Exception:  # DynamoDB Local is down: the endpoint answers 503
                self.refused += 1
                return False
            return True
        wait_for(accepted, 120, "DynamoDB Local to accept a write again")

    def done(self) -> bool:
        self.thread.join(timeout=180)
        return not self.thread.is_alive()


def stream_records(sandbox: SandboxProcess, prefix: str) -> list[dict[str, Any]]:
    """Every record of the outbox stream about the items written, read from DynamoDB Local
    itself (its port is on its command line)."""
    pid = wait_for(lambda: dynamodb_local(sandbox), 30, "DynamoDB Local to run")
    command = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    url = f"http://127.0.0.1:{command[command.index('-port') + 1]}"
    wait_for(lambda: _answers(url), 60, "DynamoDB Local to answer")
    streams = client(url, "dynamodbstreams")
    arn = client(url).describe_table(TableName=table_of(sandbox))["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator)
            records += page["Records"]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"].startswith(prefix)]


def _answers(url: str) -> bool:
    try:
        client(url).list_tables(Limit=1)
    except Exception:
        return False
    return True


def account(sandbox: SandboxProcess, seen: list[dict[str, Any]], prefix: str,
            name: str) -> tuple[int, int]:
    """Wait until every stream record is handled; check each item's records came in order.
    Returns (records, handled twice)."""
    expected = {r["dynamodb"]["SequenceNumber"] for r in stream_records(sandbox, prefix)}
    assert len(expected) >= 2 * ITEMS

    def mine() -> list[dict[str, Any]]:
        return [r for r in seen + handled(sandbox)
                if r["dynamodb"]["Keys"]["pk"]["S"].startswith(prefix)]

    def missing() -> set[str]:
        return expected - {r["dynamodb"]["SequenceNumber"] for r in mine()}

    try:
        wait_for(lambda: not missing(), 120, "every stream record handled")
    finally:
        report(f"faults/{name}: {len(expected)} stream records, {len(mine())} handled, "
               f"{len(missing())} lost")
    per_item: dict[str, list[int]] = {}
    for record in mine():
        numbers = per_item.setdefault(record["dynamodb"]["Keys"]["pk"]["S"], [])
        number = int(record["dynamodb"]["SequenceNumber"])
        if number not in numbers:
            assert not numbers or number > numbers[-1], "an item's records out of order"
            numbers.append(number)
    assert all(len(numbers) >= 2 for numbers in per_item.values())
    return len(expected), len(mine()) - len(expected)


def test_dynamodb_local_killed_while_the_stream_is_read_loses_no_record(
        sandbox: SandboxProcess) -> None:
    prefix = "order-ddb-kill-"
    old = dynamodb_local(sandbox)
    assert old is not None
    killed = fire_when(lambda: len(handled(sandbox)) >= ITEMS // 3,
                       lambda: os.kill(old, signal.SIGKILL))
    writer = Writer(sandbox, prefix)
    assert writer.done(), "the writes did not end"
    assert killed(), "every record was handled before DynamoDB Local could be killed"
    assert "DynamoDB Local exited (code -9); starting it again" in sandbox.output()
    records, twice = account(sandbox, [], prefix, "DynamoDB Local killed mid-stream")
    report(f"faults/DynamoDB Local killed mid-stream: {writer.refused} writes refused while "
           f"it was down, {records} records handled, {twice} handled twice")


def test_the_sandbox_killed_while_the_stream_is_read_resumes_from_its_checkpoints(
        sandbox: SandboxProcess) -> None:
    prefix = "order-sandbox-kill-"
    writer = Writer(sandbox, prefix)

    def kill() -> None:
        writer.stopped.set()
        sandbox.process.kill()  # type: ignore[union-attr]

    killed = fire_when(lambda: len(handled(sandbox)) >= ITEMS // 2, kill)
    assert writer.done(), "the writes did not end"
    # The writes may end before the poller is half-way (a loaded machine): wait for the kill.
    wait_for(lambda: sandbox.process.poll() is not None,  # type: ignore[union-attr]
             120, "the kill, half-way through")
    assert killed(), "every record was handled before the sandbox could be killed"
    sandbox.process.wait()  # type: ignore[union-attr]
    before = handled(sandbox)
    sandbox.start()  # same state folder: DynamoDB Local's data and the checkpoints
    writer = Writer(sandbox, prefix)  # the same items written again: one MODIFY each more
    assert writer.done(), "the writes did not end"
    records, twice = account(sandbox, before, prefix, "sandbox killed mid-stream")
    report(f"faults/sandbox killed mid-stream: {len(before)} records handled before the kill, "
           f"{records} in the stream, {twice} handled twice after the restart")
