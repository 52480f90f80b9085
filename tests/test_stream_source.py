"""What Lambda's DynamoDB stream pollers hand a function and do with its answer, pure: the record
shape of AWS's documented example, filters, the partial batch answer, retries, bisection and
checkpoints, the on-failure record of AWS's example, what Lambda refuses when a stream mapping
is created, and the poller over a fake stream. One slow test starts DynamoDB Local: a table of an
older state folder gets the stream its template asks for."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_assembly import only_stack, write_assembly

from sandbox.assembly import AssemblyError
from sandbox.core.history import InvocationRun
from sandbox.core.state import Checkpoint, State, Writes
from sandbox.core.targets import Targets
from sandbox.dynamodb.local import DynamoDBLocal, client, ensure_tables, table_request
from sandbox.events.patterns import compile_pattern
from sandbox.lambda_.backend import LambdaService
from sandbox.lambda_.event_sources import EventSources
from sandbox.lambda_.records import invocation_record
from sandbox.lambda_.runtime_api import Invocation
from sandbox.lambda_.stream_source import (
    AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    Outcome,
    ShardBatch,
    StreamMapping,
    StreamPoller,
    failure_record,
    first_failed,
    lambda_record,
    matches,
)
from sandbox.sandbox import PROJECT_DIR
from sandbox.settings import Settings

STREAM = "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388"
FUNCTION = "arn:aws:lambda:us-east-2:123456789012:function:myfunction"


def mapping(**fields: Any) -> StreamMapping:
    settings: dict[str, Any] = {
        "uuid": "u", "table": "mytable", "stream_arn": STREAM, "function_arn": FUNCTION,
        "batch_size": 100, "window_s": 0, "starting_position": "TRIM_HORIZON",
        "max_retries": -1, "max_age_s": -1, "bisect": False, "report_item_failures": False,
        "filters": [], "on_failure": None} | fields
    return StreamMapping(**settings)


def record(number: int, created: float = 1573690399.0, key: str = "101") -> dict[str, Any]:
    return {"eventID": str(number), "eventName": "INSERT", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-2",
            "dynamodb": {"ApproximateCreationDateTime": created, "Keys": {"Id": {"N": key}},
                         "SequenceNumber": f"{number:021d}", "SizeBytes": 26,
                         "StreamViewType": "NEW_AND_OLD_IMAGES"},
            "eventSourceARN": STREAM}


def test_a_record_has_the_shape_of_awss_example_event() -> None:
    # DynamoDB Local's record, as boto3 reads it: region ddblocal, no eventSourceARN.
    raw = {"eventID": "2", "eventName": "MODIFY", "eventVersion": "1.1",
           "eventSource": "aws:dynamodb", "awsRegion": "ddblocal",
           "dynamodb": {"ApproximateCreationDateTime": datetime(2019, 11, 14, tzinfo=UTC),
                        "Keys": {"Id": {"N": "101"}},
                        "NewImage": {"Message": {"S": "This item has changed"},
                                     "Id": {"N": "101"}},
                        "OldImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
                        "SequenceNumber": "222", "SizeBytes": 59,
                        "StreamViewType": "NEW_AND_OLD_IMAGES"}}
    # AWS's example ("Using AWS Lambda with Amazon DynamoDB"), with the record version 1.1.
    assert lambda_record(raw, STREAM, "us-west-2") == {
        "eventID": "2", "eventName": "MODIFY", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-west-2",
        "dynamodb": {"ApproximateCreationDateTime": 1573689600.0,
                     "Keys": {"Id": {"N": "101"}},
                     "NewImage": {"Message": {"S": "This item has changed"},
                                  "Id": {"N": "101"}},
                     "OldImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
                     "SequenceNumber": "222", "SizeBytes": 59,
                     "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "eventSourceARN": STREAM,
    }


def test_a_filter_matches_the_record_with_its_images_as_json() -> None:
    inserts = [compile_pattern({"eventName": ["INSERT"],
                                "dynamodb": {"Keys": {"Id": {"N": ["101"]}}}})]
    assert matches(inserts, record(1))
    assert not matches(inserts, record(1, key="102"))
    assert matches([], record(1)), "no filter: all"


def test_a_partial_batch_answer_checkpoints_before_the_lowest_failure() -> None:
    batch = [record(1), record(2), record(3)]
    failures = {"batchItemFailures": [{"itemIdentifier": f"{3:021d}"},
                                      {"itemIdentifier": f"{2:021d}"}]}
    assert first_failed(json.dumps(failures).encode(), batch) == 1
    for success in (b"", b"null", b"{}", b'{"batchItemFailures": []}',
                    b'{"batchItemFailures": null}'):
        assert first_failed(success, batch) == 3, success
    for unusable in (b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
                     b'{"batchItemFailures": [{"itemIdentifier": null}]}',
                     b'{"batchItemFailures": [{"id": "1"}]}',
                     b'{"batchItemFailures": [{"itemIdentifier": "999"}]}',
                     b'"not json', b'"text"'):
        assert first_failed(unusable, batch) == 0, unusable


class Fake:
    """A function that fails on the records `poison` names; what the run did."""

    def __init__(self, poison: set[str], partial: bool = False, refused: int = 0) -> None:
        self.poison = poison
        self.partial = partial
        self.refused = refused
        self.invoked: list[list[str]] = []
        self.checkpoints: list[str] = []
        self.given_up: list[tuple[list[str], str, int]] = []
        self.pauses = 0

    def invoke(self, batch: list[dict[str, Any]], attempt: int) -> Outcome:
        if self.refused:
            self.refused -= 1
            return Outcome(ran=False, done=0)
        ids = [r["eventID"] for r in batch]
        self.invoked.append(ids)
        bad = [i for i, n in enumerate(ids) if n in self.poison]
        if not bad:
            return Outcome(ran=True, done=len(batch))
        return Outcome(ran=True, done=bad[0] if self.partial else 0)

    def run(self, settings: StreamMapping, batch: list[dict[str, Any]],
            now: float = 1573690400.0) -> None:
        ShardBatch(settings, self.invoke, lambda r: self.checkpoints.append(r["eventID"]),
                 lambda b, c, _, n: self.given_up.append(([r["eventID"] for r in b], c, n)),
                 lambda _: setattr(self, "pauses", self.pauses + 1), lambda: now).run(batch)


def test_a_failing_batch_is_retried_whole_until_the_retry_limit_then_given_up() -> None:
    fake = Fake({"2"})
    fake.run(mapping(max_retries=2), [record(1), record(2), record(3)])
    assert fake.invoked == [["1", "2", "3"]] * 3
    assert fake.given_up == [(["1", "2", "3"], RETRIES_EXHAUSTED, 3)]
    assert fake.checkpoints == []


def test_bisection_isolates_the_poison_record_without_counting_splits_as_retries() -> None:
    fake = Fake({"2"})
    fake.run(mapping(max_retries=0, bisect=True), [record(n) for n in range(1, 5)])
    assert fake.invoked == [["1", "2", "3", "4"], ["1", "2"], ["1"], ["2"], ["3", "4"]]
    assert fake.checkpoints == ["1", "4"]
    assert fake.given_up == [(["2"], RETRIES_EXHAUSTED, 1)]


def test_a_partial_failure_checkpoints_before_it_and_retries_from_it() -> None:
    fake = Fake({"3"}, partial=True)
    fake.run(mapping(max_retries=1, report_item_failures=True),
             [record(n) for n in range(1, 5)])
    assert fake.invoked == [["1", "2", "3", "4"], ["3", "4"]]
    assert fake.checkpoints == ["2"]
    assert fake.given_up == [(["3", "4"], RETRIES_EXHAUSTED, 2)]


def test_a_record_older_than_the_maximum_age_is_given_up_without_an_invocation() -> None:
    fake = Fake(set())
    fake.run(mapping(max_age_s=60), [record(1, created=1000.0)], now=1061.0)
    assert fake.invoked == []
    assert fake.given_up == [(["1"], AGE_EXCEEDED, 0)]
    fake = Fake({"1"})  # -1: until the stream's 24-hour retention
    fake.run(mapping(), [record(1, created=1000.0)], now=1000.0 + 24 * 3600 + 1)
    assert fake.given_up == [(["1"], AGE_EXCEEDED, 0)]


def test_a_refused_invocation_is_retried_without_counting_as_a_retry() -> None:
    fake = Fake(set(), refused=3)
    fake.run(mapping(max_retries=0), [record(1)])
    assert (fake.pauses, fake.invoked, fake.checkpoints) == (3, [["1"]], ["1"])


def test_the_on_failure_record_has_the_shape_of_awss_example() -> None:
    invocation = Invocation(request_id="316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
                            function="myfunction", ok=False, payload=b"{}", error_type="E",
                            started=0.0, duration_ms=1.0, init_duration_ms=None,
                            max_memory_mb=1, memory_mb=128)
    batch = [record(800000000003126276362, created=1573690399.0)]
    made = failure_record(mapping(), "shardId-00000001573689847184-864758bb", batch,
                          RETRIES_EXHAUSTED, invocation, 1, 1573690429.717)
    # "Retaining discarded records for a DynamoDB event source in Lambda", its example.
    assert made == {
        "requestContext": {
            "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
            "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 1,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": "2019-11-14T00:13:49.717Z",
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000001573689847184-864758bb",
            "startSequenceNumber": "800000000003126276362",
            "endSequenceNumber": "800000000003126276362",
            "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
            "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z",
            "batchSize": 1,
            "streamArn": STREAM,
        },
    }


def test_checkpoints_are_kept_across_a_restart(tmp_path: Path) -> None:
    state = State(tmp_path / "sandbox.db")
    state.commit(Writes(checkpoints=[Checkpoint("m", "shard-1", "5", closed=True),
                                     Checkpoint("m", "shard-2", "7")]))
    state.commit(Writes(checkpoints=[Checkpoint("m", "shard-2", "9")]))
    state.close()
    again = State(tmp_path / "sandbox.db")
    assert again.checkpoints("m") == {"shard-1": Checkpoint("m", "shard-1", "5", True),
                                      "shard-2": Checkpoint("m", "shard-2", "9")}
    assert again.checkpoints("other") == {}


def test_a_table_is_created_with_its_stream() -> None:
    properties = {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                  "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                  "BillingMode": "PAY_PER_REQUEST",
                  "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"}}
    assert table_request(properties, "t")["StreamSpecification"] == {
        "StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    del properties["StreamSpecification"]
    assert "StreamSpecification" not in table_request(properties, "t")


# What Lambda refuses when the mapping is created: the start stops, naming file, resource and
# property.

def sources(tmp_path: Path, mapping_properties: dict[str, Any],
            stream: dict[str, Any] | None = None) -> EventSources:
    code = tmp_path / "asset.code"
    code.mkdir(exist_ok=True)
    table: dict[str, Any] = {
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]}
    if stream is not None:
        table["StreamSpecification"] = stream
    properties = {"FunctionName": {"Ref": "Fn"},
                  "EventSourceArn": {"Fn::GetAtt": ["Table", "StreamArn"]},
                  **mapping_properties}
    stack = only_stack(write_assembly(tmp_path / "assembly", {
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": table},
        "Fn": {"Type": "AWS::Lambda::Function",
               "Properties": {"Runtime": "python3.12", "Handler": "index.handler",
                              "Code": {"S3Key": "x.zip"}},
               "Metadata": {"aws:asset:path": "../asset.code"}},
        "Mapping": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": properties},
    }))
    state = State(tmp_path / "state.db")
    targets = Targets()
    lambda_ = LambdaService([stack], state, targets, Settings(), {}, lambda *_: None)
    return EventSources([stack], lambda_, None, {}, state, targets,  # type: ignore[arg-type]
                        "http://127.0.0.1:1")


NEW_IMAGES = {"StreamViewType": "NEW_IMAGE"}


def test_a_valid_stream_mapping_is_read_with_lambdas_defaults(tmp_path: Path) -> None:
    (read,) = sources(tmp_path, {"StartingPosition": "LATEST"}, NEW_IMAGES).streams
    assert (read.table, read.batch_size, read.window_s, read.max_retries, read.max_age_s,
            read.bisect, read.on_failure) == ("S-Table", 100, 0, -1, -1, False, None)
    assert read.stream_arn.endswith(":table/S-Table/stream/1970-01-01T00:00:00.000")


def test_parallelization_and_tumbling_windows_are_named_as_not_emulated(
        tmp_path: Path) -> None:
    found = sources(tmp_path, {"StartingPosition": "LATEST", "ParallelizationFactor": 4,
                               "TumblingWindowInSeconds": 30}, NEW_IMAGES)
    assert found.not_emulated == ["Mapping.ParallelizationFactor",
                                  "Mapping.TumblingWindowInSeconds"]


@pytest.mark.parametrize(("properties", "stream", "named"), [
    ({"StartingPosition": "LATEST"}, None, "EventSourceArn: table S-Table has no stream"),
    ({}, NEW_IMAGES, "StartingPosition: is missing"),
    ({"StartingPosition": "AT_TIMESTAMP"}, NEW_IMAGES, "StartingPosition: AT_TIMESTAMP"),
    ({"StartingPosition": "LATEST", "BatchSize": 10_001}, NEW_IMAGES,
     "BatchSize: 10001 is not between 1 and 10000"),
    ({"StartingPosition": "LATEST", "BatchSize": 0}, NEW_IMAGES, "BatchSize: 0"),
    ({"StartingPosition": "LATEST", "MaximumRetryAttempts": 10_001}, NEW_IMAGES,
     "MaximumRetryAttempts: 10001"),
    ({"StartingPosition": "LATEST", "MaximumRecordAgeInSeconds": 30}, NEW_IMAGES,
     "MaximumRecordAgeInSeconds: 30"),
    ({"StartingPosition": "LATEST", "MaximumBatchingWindowInSeconds": 301}, NEW_IMAGES,
     "MaximumBatchingWindowInSeconds: 301"),
    ({"StartingPosition": "LATEST", "DestinationConfig": {"OnFailure": {
        "Destination": "arn:aws:lambda:us-east-1:000000000000:function:f"}}}, NEW_IMAGES,
     "DestinationConfig.OnFailure.Destination"),
    ({"StartingPosition": "LATEST", "FilterCriteria": {"Filters": [{"Pattern": "{"}]}},
     NEW_IMAGES, "FilterCriteria"),
])
def test_what_lambda_refuses_stops_the_start_naming_the_property(
        tmp_path: Path, properties: dict[str, Any], stream: dict[str, Any] | None,
        named: str) -> None:
    with pytest.raises(AssemblyError) as error:
        sources(tmp_path, properties, stream)
    assert "S.template.json: Resources.Mapping.Properties." + named in str(error.value)


# The poller over a fake stream: shards in lineage order, LATEST, checkpoints.

class FakeStreams:
    """DynamoDB Local's streams API over shards given as id -> (parent, closed, records)."""

    def __init__(self, shards: dict[str, tuple[str | None, bool, list[dict[str, Any]]]]) -> None:
        self.shards = shards

    def describe_stream(self, StreamArn: str, **_: Any) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [
            {"ShardId": shard, "SequenceNumberRange": {"StartingSequenceNumber": "1"}
             | ({"EndingSequenceNumber": "9"} if closed else {})}
            | ({"ParentShardId": parent} if parent else {})
            for shard, (parent, closed, _) in self.shards.items()]}}

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str,
                           SequenceNumber: str = "") -> dict[str, Any]:
        records = self.shards[ShardId][2]
        numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        start = numbers.index(SequenceNumber) + 1 if SequenceNumber else 0
        return {"ShardIterator": f"{ShardId}|{start}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        shard, start = ShardIterator.split("|")
        _, closed, records = self.shards[shard]
        page = records[int(start):int(start) + Limit]
        end = int(start) + len(page)
        at_end = closed and end == len(records)
        return {"Records": page} | ({} if at_end else {"NextShardIterator": f"{shard}|{end}"})


class FakeTable:
    def describe_table(self, TableName: str) -> dict[str, Any]:
        return {"Table": {"LatestStreamArn": "local-stream"}}


class FakeLambda:
    settings = Settings(retry_scale=0)

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def run(self, arn: str, payload: bytes, **context: Any) -> tuple[Invocation,
                                                                     InvocationRun]:
        self.batches.append([r["eventID"] for r in json.loads(payload)["Records"]])
        invocation = Invocation(request_id="r", function="myfunction", ok=True, payload=b"null",
                                error_type=None, started=0.0, duration_ms=1.0,
                                init_duration_ms=None, max_memory_mb=1, memory_mb=128)
        return invocation, invocation_record(invocation, "MyFunction", context)


def poller(tmp_path: Path, streams: FakeStreams,
           **fields: Any) -> tuple[StreamPoller, FakeLambda]:
    function = FakeLambda()
    made = StreamPoller(mapping(**fields), function, State(tmp_path / "state.db"),  # type: ignore[arg-type]
                        Targets(), "http://127.0.0.1:1", "us-east-2")
    made.ddb, made.streams = FakeTable(), streams
    made._running.set()
    return made, function


def fresh(number: int) -> dict[str, Any]:
    return record(number, created=time.time())


def test_a_child_shard_is_read_after_its_parent_is_read_to_its_end(tmp_path: Path) -> None:
    streams = FakeStreams({"child": ("parent", False, [fresh(3), fresh(4)]),
                           "parent": (None, True, [fresh(1), fresh(2)])})
    made, function = poller(tmp_path, streams)
    for _ in range(3):
        made._step()
    assert function.batches == [["1", "2"], ["3", "4"]]
    assert made.state.checkpoints("u") == {
        "parent": Checkpoint("u", "parent", f"{2:021d}", closed=True),
        "child": Checkpoint("u", "child", f"{4:021d}")}


def test_latest_skips_what_the_stream_held_at_the_first_start_and_resumes_after_a_restart(
        tmp_path: Path) -> None:
    streams = FakeStreams({"shard": (None, False, [fresh(1), fresh(2)])})
    made, function = poller(tmp_path, streams, starting_position="LATEST")
    made._step()
    made._step()
    streams.shards["shard"][2].append(fresh(3))
    made._step()
    assert function.batches == [["3"]]
    streams.shards["shard"][2].append(fresh(4))  # written while the sandbox is down
    again, function = poller(tmp_path, streams, starting_position="LATEST")
    again._step()
    assert function.batches == [["4"]], "resumed after the checkpoint, not at the new end"


def test_records_no_filter_matches_are_checkpointed_without_an_invocation(
        tmp_path: Path) -> None:
    streams = FakeStreams({"shard": (None, False, [fresh(1), fresh(2)])})
    only_two = [compile_pattern({"eventID": ["2"]})]
    made, function = poller(tmp_path, streams, filters=only_two)
    made._step()
    assert function.batches == [["2"]]
    streams.shards["shard"][2].append(fresh(3))
    made._step()
    assert function.batches == [["2"]]
    assert made.state.checkpoints("u")["shard"].sequence == f"{3:021d}"


@pytest.mark.slow
def test_a_table_from_an_older_state_folder_gets_its_stream(tmp_path: Path) -> None:
    """A state folder from before streams holds the table without one: the next start turns
    the template's stream on, and keeps the items."""
    local = DynamoDBLocal(PROJECT_DIR, tmp_path / "dynamodb", say=lambda _: None)
    local.start()
    try:
        properties = {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                      "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                      "BillingMode": "PAY_PER_REQUEST"}
        assert ensure_tables(local.endpoint_url, [table_request(properties, "old")]) == ["old"]
        client(local.endpoint_url).put_item(TableName="old", Item={"pk": {"S": "kept"}})
        properties["StreamSpecification"] = {"StreamViewType": "KEYS_ONLY"}
        assert ensure_tables(local.endpoint_url, [table_request(properties, "old")]) == []
        table = client(local.endpoint_url).describe_table(TableName="old")["Table"]
        assert table["StreamSpecification"] == {"StreamEnabled": True,
                                                "StreamViewType": "KEYS_ONLY"}
        assert client(local.endpoint_url).scan(TableName="old")["Count"] == 1
    finally:
        local.stop()
