"""Lambda's event source mappings on DynamoDB streams: a poller per mapping that reads the
table's stream from DynamoDB Local, shard by shard in order, and invokes the function
synchronously with batches, as Lambda's own pollers do.

From Lambda's developer guide ("Using AWS Lambda with Amazon DynamoDB", "Lambda parameters for
Amazon DynamoDB event source mappings", "Configuring partial batch response with DynamoDB"):
- `StartingPosition` TRIM_HORIZON or LATEST (required); `BatchSize` 1 to 10,000 (default 100)
  gathered for up to `MaximumBatchingWindowInSeconds` (default 0); shards are polled 4 times a
  second; a shard's children are read after their parent, so an item's records come in order;
- the event is `{"Records": [...]}`, each record as DynamoDB Streams writes it (`eventID`,
  `eventName`, `eventVersion` "1.1", `eventSource` "aws:dynamodb", `awsRegion`, `dynamodb` with
  `ApproximateCreationDateTime` in epoch seconds, `Keys`, `NewImage`/`OldImage` by view type,
  `SequenceNumber`, `SizeBytes`, `StreamViewType`) plus `eventSourceARN`, the stream's ARN;
- a function error retries the whole batch, and the shard waits: until
  `MaximumRetryAttempts` (default -1: until the record expires) or `MaximumRecordAgeInSeconds`
  (default -1: the stream's 24-hour retention); `BisectBatchOnFunctionError` splits a failed
  batch in two, and a split does not count as a retry; with `ReportBatchItemFailures` the
  answer's `batchItemFailures` name SequenceNumbers: Lambda checkpoints before the lowest and
  retries from it (an empty or null answer is a success; an `itemIdentifier` empty, null or not
  in the batch fails the whole batch);
- a batch given up is sent as an invocation record with `DDBStreamBatchInfo` (shardId, start
  and end SequenceNumber, approximate arrival of the first and last record, batchSize,
  streamArn) to `DestinationConfig.OnFailure`, an SQS queue or SNS topic, and the shard moves
  on; without a destination the records are dropped;
- `FilterCriteria`: a record matching no filter is dropped without an invocation (the record is
  matched as it is: `dynamodb` is JSON already).

DynamoDB Local differs from DynamoDB: its stream ARN has the region `ddblocal` and its own
timestamp, so the stream is found by the table's name (`LatestStreamArn`) and the records carry
the template's `StreamArn` and the stack's region; its `ApproximateCreationDateTime` is rounded
down to the minute, so a record's age may read up to a minute old.

Checkpoints are durable (`State`): a killed sandbox, or a DynamoDB Local that died, resumes each
shard after the last record done. At least once: a batch may run again, none is skipped.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sandbox.core import ids
from sandbox.core.delivery import Failure
from sandbox.core.history import BatchRun, DeadLetter, DestinationTaken
from sandbox.core.jobs import STORAGE_FULL_PAUSE_S, Abandoned
from sandbox.core.state import Checkpoint, State, StorageFull, Writes
from sandbox.core.targets import Parcel, Targets
from sandbox.dynamodb.local import client
from sandbox.events.patterns import EventPattern
from sandbox.lambda_.backend import FunctionNotFound, InvokeRefused, LambdaService
from sandbox.lambda_.runtime_api import Invocation

DEFAULT_BATCH = 100
MAX_BATCH = 10_000
RETENTION_S = 24 * 3600  # DynamoDB Streams keeps a record 24 hours
POLL_S = 0.25  # Lambda polls a shard 4 times a second
READ_RETRY_S = 1.0  # DynamoDB Local unreachable: try again after this
MAX_BACKOFF_S = 60.0
GET_RECORDS_LIMIT = 1000
RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
AGE_EXCEEDED = "RecordAgeExceeded"

Record = dict[str, Any]


@dataclass(frozen=True)
class StreamMapping:
    uuid: str
    table: str  # the table's name: DynamoDB Local's stream is found by it
    stream_arn: str  # the template's StreamArn, the records' eventSourceARN
    function_arn: str
    batch_size: int
    window_s: float
    starting_position: str  # TRIM_HORIZON or LATEST
    max_retries: int  # -1: until the record expires
    max_age_s: int  # -1: the stream's retention
    bisect: bool
    report_item_failures: bool
    filters: list[EventPattern]
    on_failure: str | None


# Pure: the record, the answer, the batch arithmetic, the on-failure record.

def lambda_record(raw: Record, stream_arn: str, region: str) -> Record:
    """A record as DynamoDB Local's GetRecords gives it (through boto3), as Lambda hands it on:
    the stack's region and the template's stream ARN, the creation time in epoch seconds."""
    dynamodb = dict(raw["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    return {"eventID": raw["eventID"], "eventName": raw["eventName"],
            "eventVersion": raw.get("eventVersion", "1.1"), "eventSource": "aws:dynamodb",
            "awsRegion": region, "dynamodb": dynamodb, "eventSourceARN": stream_arn}


def matches(filters: list[EventPattern], record: Record) -> bool:
    return not filters or any(f.matches(record) for f in filters)


def sequence(record: Record) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def first_failed(payload: bytes, batch: list[Record]) -> int:
    """How many records of `batch` a `ReportBatchItemFailures` answer says are done: those
    before the lowest SequenceNumber it names (the whole batch when it names none, nothing when
    Lambda cannot use it)."""
    try:
        answer = json.loads(payload or b"null")
    except ValueError:
        return 0
    if answer is None:
        return len(batch)
    if not isinstance(answer, dict):
        return 0
    failures = answer.get("batchItemFailures")
    if not failures:
        return len(batch)
    if not isinstance(failures, list):
        return 0
    numbers = [sequence(r) for r in batch]
    places = []
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(item, str) or item not in numbers:
            return 0
        places.append(numbers.index(item))
    return min(places)


def halves(batch: list[Record]) -> tuple[list[Record], list[Record]]:
    middle = (len(batch) + 1) // 2
    return batch[:middle], batch[middle:]


def created_at(record: Record) -> float:
    return float(record["dynamodb"].get("ApproximateCreationDateTime") or 0)


def too_old(batch: list[Record], max_age_s: int, now: float) -> bool:
    limit = RETENTION_S if max_age_s == -1 else max_age_s
    return now - created_at(batch[0]) > limit


def _iso(seconds: float, milliseconds: bool = False) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    if milliseconds:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def failure_record(mapping: StreamMapping, shard: str, batch: list[Record], condition: str,
                   invocation: Invocation | None, invokes: int, now: float) -> Record:
    """The invocation record Lambda sends to a stream mapping's on-failure destination (the
    example of "Retaining discarded records for a DynamoDB event source"); no response context
    when the function never ran."""
    record: Record = {
        "requestContext": {
            "requestId": invocation.request_id if invocation else ids.uuid4(),
            "functionArn": mapping.function_arn,
            "condition": condition,
            "approximateInvokeCount": invokes,
        },
    }
    if invocation is not None:
        record["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if not invocation.ok:
            record["responseContext"]["functionError"] = "Unhandled"
    record |= {
        "version": "1.0",
        "timestamp": _iso(now, milliseconds=True),
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": sequence(batch[0]),
            "endSequenceNumber": sequence(batch[-1]),
            "approximateArrivalOfFirstRecord": _iso(created_at(batch[0])),
            "approximateArrivalOfLastRecord": _iso(created_at(batch[-1])),
            "batchSize": len(batch),
            "streamArn": mapping.stream_arn,
        },
    }
    return record


@dataclass(frozen=True)
class Outcome:
    """One try at a batch: `done` records from its start are finished."""

    ran: bool  # the function ran (a refused invocation is retried without counting)
    done: int
    invocation: Invocation | None = None


class ShardBatch:
    """One batch of one shard, run to its end: each record is done or given up, in order.

    `invoke(batch, attempt)` tries it; `checkpoint(record)` marks the records up to `record`
    done; `give_up(batch, condition, invocation, invokes)` sends the on-failure record and
    marks them done; `pause(retry)` waits before a retry."""

    def __init__(self, mapping: StreamMapping, invoke: Callable[[list[Record], int], Outcome],
                 checkpoint: Callable[[Record], None],
                 give_up: Callable[[list[Record], str, Invocation | None, int], None],
                 pause: Callable[[int], None], now: Callable[[], float] = time.time) -> None:
        self.mapping = mapping
        self.invoke = invoke
        self.checkpoint = checkpoint
        self.give_up = give_up
        self.pause = pause
        self.now = now

    def run(self, batch: list[Record], retries: int = 0) -> None:
        mapping = self.mapping
        invokes = retries
        last: Invocation | None = None
        while batch:
            if too_old(batch, mapping.max_age_s, self.now()):
                self.give_up(batch, AGE_EXCEEDED, last, invokes)
                return
            outcome = self.invoke(batch, invokes + 1)
            if not outcome.ran:
                self.pause(1)
                continue
            invokes += 1
            last = outcome.invocation
            if outcome.done:
                self.checkpoint(batch[outcome.done - 1])
                batch = batch[outcome.done:]
            if not batch:
                return
            if mapping.bisect and len(batch) > 1 and outcome.done == 0:
                for half in halves(batch):  # a split is not a retry
                    self.run(half, retries)
                return
            if mapping.max_retries != -1 and retries >= mapping.max_retries:
                self.give_up(batch, RETRIES_EXHAUSTED, last, invokes)
                return
            retries += 1
            self.pause(retries)


# The poller: DynamoDB Local's stream, the function, the state.

@dataclass
class _Shard:
    id: str
    parent: str | None
    closed: bool  # has an EndingSequenceNumber: no more records will come


class StreamPoller:
    """The poller of one mapping: reads each readable shard in turn, batches, invokes."""

    def __init__(self, mapping: StreamMapping, lambda_: LambdaService, state: State,
                 targets: Targets, dynamodb_url: str, region: str) -> None:
        self.mapping = mapping
        self.lambda_ = lambda_
        self.state = state
        self.targets = targets
        self.region = region
        self.ddb = client(dynamodb_url)
        self.streams = client(dynamodb_url, "dynamodbstreams")
        self._iterators: dict[str, str | None] = {}  # shard -> next iterator (None: at end)
        self._stream: str | None = None  # DynamoDB Local's stream ARN
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"ddb-esm-{mapping.table}",
                                        daemon=True)

    def start(self) -> None:
        self._running.set()
        self._thread.start()

    def stop(self) -> None:
        self._running.clear()
        self._thread.join(timeout=10)

    def _poll(self) -> None:
        while self._running.is_set():
            try:
                if not self._step():
                    time.sleep(POLL_S)
            except Abandoned:
                return  # the sandbox is stopping: the batch runs again at the next start
            except StorageFull:  # no checkpoint written: the batch runs again
                self._iterators.clear()
                time.sleep(STORAGE_FULL_PAUSE_S)
            except (BotoCoreError, ClientError):
                # DynamoDB Local down, restarting, or an iterator expired: read again from the
                # checkpoints once it answers.
                self._iterators.clear()
                self._stream = None
                time.sleep(READ_RETRY_S)

    def _step(self) -> bool:
        """One batch from each readable shard; False when none had records."""
        shards = self._shards()
        checkpoints = self.state.checkpoints(self.mapping.uuid)
        if not checkpoints and self.mapping.starting_position == "LATEST":
            self._skip_to_latest(shards)
            return True
        busy = False
        known = {s.id for s in shards}
        for shard in shards:
            mine = checkpoints.get(shard.id)
            parent = checkpoints.get(shard.parent or "")
            if (mine and mine.closed) or (shard.parent in known and not
                                          (parent and parent.closed)):
                continue  # done, or its parent is not read to its end yet
            busy = self._read(shard, mine.sequence if mine else "") or busy
            if not self._running.is_set():
                break
        return busy

    def _shards(self) -> list[_Shard]:
        if self._stream is None:
            table = self.ddb.describe_table(TableName=self.mapping.table)["Table"]
            self._stream = table["LatestStreamArn"]
        shards: list[_Shard] = []
        start: dict[str, str] = {}
        while True:
            described = self.streams.describe_stream(StreamArn=self._stream, **start)
            description = described["StreamDescription"]
            shards += [_Shard(s["ShardId"], s.get("ParentShardId"),
                              "EndingSequenceNumber" in s["SequenceNumberRange"])
                       for s in description["Shards"]]
            if "LastEvaluatedShardId" not in description:
                return shards
            start = {"ExclusiveStartShardId": description["LastEvaluatedShardId"]}

    def _skip_to_latest(self, shards: list[_Shard]) -> None:
        """LATEST: the first start checkpoints each shard after its last record, so a restarted
        sandbox still hands on what was written while it was down."""
        marks = []
        for shard in shards:
            iterator = self._iterator(shard.id, "")
            last, records = "", True
            while iterator and records:
                page = self.streams.get_records(ShardIterator=iterator,
                                                Limit=GET_RECORDS_LIMIT)
                records = page["Records"]
                last = sequence(records[-1]) if records else last
                iterator = page.get("NextShardIterator")
            self._iterators[shard.id] = iterator
            marks.append(Checkpoint(self.mapping.uuid, shard.id, last,
                                    closed=shard.closed and iterator is None))
        self.state.commit(Writes(checkpoints=marks))

    def _iterator(self, shard: str, after: str) -> str | None:
        if shard in self._iterators:
            return self._iterators[shard]
        position: dict[str, str] = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                                     "SequenceNumber": after} if after else
                                    {"ShardIteratorType": "TRIM_HORIZON"})
        return self.streams.get_shard_iterator(StreamArn=self._stream, ShardId=shard,
                                               **position)["ShardIterator"]

    def _gather(self, shard: _Shard, after: str) -> tuple[list[Record], bool]:
        """Up to BatchSize records within the batching window; and whether the shard is read
        to its end (closed, no iterator left)."""
        mapping = self.mapping
        deadline = time.monotonic() + mapping.window_s
        batch: list[Record] = []
        iterator = self._iterator(shard.id, after)
        while iterator and len(batch) < mapping.batch_size and self._running.is_set():
            page = self.streams.get_records(
                ShardIterator=iterator,
                Limit=min(GET_RECORDS_LIMIT, mapping.batch_size - len(batch)))
            iterator = page.get("NextShardIterator")
            self._iterators[shard.id] = iterator
            batch += [lambda_record(r, mapping.stream_arn, self.region) for r in page["Records"]]
            if time.monotonic() >= deadline or (not page["Records"] and not batch):
                break
            if not page["Records"]:
                time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
        return batch, iterator is None

    def _read(self, shard: _Shard, after: str) -> bool:
        batch, ended = self._gather(shard, after)
        mapping = self.mapping
        if batch:
            kept = [r for r in batch if matches(mapping.filters, r)]
            run = ShardBatch(mapping, self._invoke, lambda r: self._mark(shard.id, r),
                           lambda b, c, i, n: self._give_up(shard.id, b, c, i, n), self._pause)
            if kept:
                run.run(kept)
        if batch or ended:
            # The filtered-out records, and a closed shard's end, are done too.
            self.state.commit(Writes(checkpoints=[Checkpoint(
                mapping.uuid, shard.id, sequence(batch[-1]) if batch else after, ended)]))
        return bool(batch)

    def _mark(self, shard: str, record: Record) -> None:
        self.state.commit(Writes(checkpoints=[Checkpoint(self.mapping.uuid, shard,
                                                         sequence(record))]))

    def _pause(self, retry: int) -> None:
        delay = min(2.0 ** (retry - 1), MAX_BACKOFF_S) * self.lambda_.settings.retry_scale
        deadline = time.monotonic() + delay
        while self._running.is_set() and time.monotonic() < deadline:
            time.sleep(min(POLL_S, deadline - time.monotonic()))
        if not self._running.is_set():
            raise Abandoned(f"{self.mapping.uuid}: the sandbox is stopping")

    def _invoke(self, batch: list[Record], attempt: int) -> Outcome:
        mapping = self.mapping
        payload = json.dumps({"Records": batch}).encode()
        try:
            invocation, run = self.lambda_.run(mapping.function_arn, payload,
                                               trigger="dynamodb", rule=mapping.uuid,
                                               attempt=attempt)
        except (InvokeRefused, FunctionNotFound):
            return Outcome(ran=False, done=0)  # throttled: retried until the records expire
        done = 0
        if invocation.ok:
            done = (first_failed(invocation.payload, batch) if mapping.report_item_failures
                    else len(batch))
        numbers = [sequence(record) for record in batch]
        self.state.add(history=[run, BatchRun(mapping.stream_arn, invocation.function,
                                              invocation.request_id, numbers, numbers[done:],
                                              invocation.ok)])
        return Outcome(ran=True, done=done, invocation=invocation)

    def _give_up(self, shard: str, batch: list[Record], condition: str,
                 invocation: Invocation | None, invokes: int) -> None:
        """The on-failure record to the destination, and the batch done, in one commit."""
        mapping = self.mapping
        record = failure_record(mapping, shard, batch, condition, invocation, invokes,
                                time.time())
        label = self.lambda_.label(self.lambda_.config(mapping.function_arn).name)
        writes = Writes(checkpoints=[Checkpoint(mapping.uuid, shard, sequence(batch[-1]))])
        taken: str | None = None
        if mapping.on_failure:
            try:
                writes += self.targets.deliver(mapping.on_failure, Parcel(json.dumps(record)))
                taken = mapping.on_failure
            except Failure as error:  # the record is lost, as on AWS: the history says why
                writes.history.append(DestinationTaken(
                    label, record["requestContext"]["requestId"], condition,
                    mapping.on_failure, "OnFailure", ok=False, error_message=error.message))
        writes.history.append(DeadLetter(taken, "lambda", function=label, record=record,
                                         rule=mapping.uuid, route="OnFailure" if taken else None))
        self.state.commit(writes)
