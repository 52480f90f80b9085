"""Lambda's event source mappings (`AWS::Lambda::EventSourceMapping`) read from the template and
run: pollers for SQS queues (`sqs_source`) and DynamoDB streams (`stream_source`). What a mapping
names that the sandbox does not poll (Kinesis, Kafka, MQ, DocumentDB) is named at start, and so
are a stream mapping's settings it does not emulate (`ParallelizationFactor`,
`TumblingWindowInSeconds`); what Lambda refuses when the mapping is created (an unknown
function, a batch size out of range, a batching window missing for a batch over 10, a FIFO
batch over 10, a queue whose visibility timeout is below the function's timeout; a table without
a stream, a stream mapping without `StartingPosition` or with Kinesis's AT_TIMESTAMP, retries or
a record age out of range, an on-failure destination that is not a standard queue or topic)
stops the start with the resource and property named.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sandbox.assembly import AssemblyError, Stack
from sandbox.core.state import State
from sandbox.core.targets import Targets
from sandbox.events.patterns import EventPattern, InvalidEventPatternError
from sandbox.lambda_.backend import FunctionNotFound, LambdaService
from sandbox.lambda_.sqs_source import (
    DEFAULT_BATCH,
    DEFAULT_POLLERS,
    QueueReader,
    SqsMapping,
    SqsPollers,
    compile_filters,
)
from sandbox.lambda_.stream_source import DEFAULT_BATCH as STREAM_DEFAULT_BATCH
from sandbox.lambda_.stream_source import MAX_BATCH as STREAM_MAX_BATCH
from sandbox.lambda_.stream_source import StreamMapping, StreamPoller

MAPPING = "AWS::Lambda::EventSourceMapping"
TABLE = "AWS::DynamoDB::Table"
NOT_EMULATED = ("ParallelizationFactor", "TumblingWindowInSeconds")


class EventSources:
    def __init__(self, stacks: list[Stack], lambda_: LambdaService, queues: QueueReader,
                 queue_settings: dict[str, tuple[bool, int]], state: State, targets: Targets,
                 dynamodb_url: str) -> None:
        """`queue_settings`: queue ARN -> (FIFO, visibility timeout), for Lambda's checks."""
        self.lambda_ = lambda_
        self.queues = queues
        self.state = state
        self.targets = targets
        self.dynamodb_url = dynamodb_url
        self.sqs: list[SqsMapping] = []
        self.streams: list[StreamMapping] = []
        self.not_run: list[str] = []
        self.not_emulated: list[str] = []  # a stream mapping's settings the pollers ignore
        self._pollers: list[SqsPollers | StreamPoller] = []
        self._region = stacks[0].region if stacks else "us-east-1"
        # The template's StreamArn of every table -> (table name, StreamViewType or None).
        self._tables = {
            stack.get_att(t.logical_id, "StreamArn"): (
                stack.ref(t.logical_id),
                stack.properties(t.logical_id).get("StreamSpecification", {})
                .get("StreamViewType"))
            for stack in stacks for t in stack.of_type(TABLE)}
        for stack in stacks:
            for resource in stack.of_type(MAPPING):
                self._read(stack, resource.logical_id, queue_settings)

    def _read(self, stack: Stack, logical_id: str,
              queue_settings: dict[str, tuple[bool, int]]) -> None:
        where = f"{stack.template_file}: Resources.{logical_id}.Properties"
        props = stack.properties(logical_id)
        source = str(props.get("EventSourceArn") or "")
        try:
            config = self.lambda_.config(str(props.get("FunctionName", "")))
            function_arn = self.lambda_.invoked_arn(str(props.get("FunctionName", "")))
        except FunctionNotFound:
            raise AssemblyError(f"{where}.FunctionName: function {props.get('FunctionName')} "
                                "is not one the sandbox runs") from None
        if ":dynamodb:" in source and "/stream/" in source:
            mapping = self._stream(where, mapping_uuid(stack.name, logical_id), props, function_arn,
                                   source)
            self.not_emulated += [f"{logical_id}.{name}" for name in NOT_EMULATED
                                  if str(props.get(name, "")) not in ("", "0", "1")]
            if str(props.get("Enabled", True)).lower() == "false":
                self.not_run.append(f"{logical_id} (disabled)")
            else:
                self.streams.append(mapping)
            return
        if source not in queue_settings:
            kind = source.split(":")[2] if source.count(":") >= 2 else "?"
            if kind != "sqs":
                self.not_run.append(f"{logical_id} ({kind} source)")
                return
            raise AssemblyError(f"{where}.EventSourceArn: queue {source} is not in the assembly")
        fifo, visibility = queue_settings[source]
        batch = int(props.get("BatchSize", DEFAULT_BATCH))
        window = float(props.get("MaximumBatchingWindowInSeconds", 0))
        limit = 10 if fifo else 10_000
        if not 1 <= batch <= limit:
            raise AssemblyError(f"{where}.BatchSize: {batch} is not between 1 and {limit}")
        if batch > 10 and window < 1:
            raise AssemblyError(f"{where}.MaximumBatchingWindowInSeconds: a batch over 10 "
                                "needs a batching window of at least 1 second")
        if visibility < config.timeout_s:
            raise AssemblyError(f"{where}.EventSourceArn: the queue's visibility timeout "
                                f"({visibility} s) is less than the function's timeout "
                                f"({config.timeout_s:g} s); Lambda refuses the mapping")
        filters = _filters(where, props)
        scaling = props.get("ScalingConfig") or {}
        concurrency = int(scaling.get("MaximumConcurrency", DEFAULT_POLLERS))
        if not 2 <= concurrency <= 1000:
            raise AssemblyError(f"{where}.ScalingConfig.MaximumConcurrency: {concurrency} is "
                                "not between 2 and 1000")
        if str(props.get("Enabled", True)).lower() == "false":
            self.not_run.append(f"{logical_id} (disabled)")
            return
        self.sqs.append(SqsMapping(
            uuid=mapping_uuid(stack.name, logical_id), queue_arn=source, function_arn=function_arn,
            batch_size=batch, window_s=window, filters=filters,
            report_item_failures="ReportBatchItemFailures" in (
                props.get("FunctionResponseTypes") or []),
            max_concurrency=concurrency, fifo=fifo))

    def _stream(self, where: str, uuid: str, props: dict[str, Any], function_arn: str,
                source: str) -> StreamMapping:
        """A DynamoDB stream mapping, checked as Lambda checks it when it is created."""
        if source not in self._tables:
            raise AssemblyError(f"{where}.EventSourceArn: stream {source} is not a stream of "
                                "a table in the assembly")
        table, view_type = self._tables[source]
        if not view_type:
            raise AssemblyError(f"{where}.EventSourceArn: table {table} has no stream (its "
                                "StreamSpecification is missing)")
        position = props.get("StartingPosition")
        if position not in ("TRIM_HORIZON", "LATEST"):
            said = "is missing" if position is None else f"{position} is not valid"
            raise AssemblyError(f"{where}.StartingPosition: {said}; a DynamoDB stream takes "
                                "TRIM_HORIZON or LATEST (AT_TIMESTAMP is Kinesis's only)")
        on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure")
                      or {}).get("Destination")
        if on_failure and (on_failure.split(":")[2:3] not in (["sqs"], ["sns"])
                           or on_failure.endswith(".fifo")):
            raise AssemblyError(f"{where}.DestinationConfig.OnFailure.Destination: "
                                f"{on_failure} is not a standard SQS queue or SNS topic")
        age = _bounded(where, props, "MaximumRecordAgeInSeconds", -1, -1, 604_800)
        if 0 <= age < 60:
            raise AssemblyError(f"{where}.MaximumRecordAgeInSeconds: {age} is neither -1 nor "
                                "between 60 and 604800")
        return StreamMapping(
            uuid=uuid, table=table, stream_arn=source, function_arn=function_arn,
            batch_size=_bounded(where, props, "BatchSize", STREAM_DEFAULT_BATCH, 1,
                                STREAM_MAX_BATCH),
            window_s=_bounded(where, props, "MaximumBatchingWindowInSeconds", 0, 0, 300),
            starting_position=position,
            max_retries=_bounded(where, props, "MaximumRetryAttempts", -1, -1, 10_000),
            max_age_s=age,
            bisect=str(props.get("BisectBatchOnFunctionError", False)).lower() == "true",
            report_item_failures="ReportBatchItemFailures" in (
                props.get("FunctionResponseTypes") or []),
            filters=_filters(where, props), on_failure=on_failure)

    def start(self) -> None:
        for mapping in self.sqs:
            pollers = SqsPollers(mapping, self.queues, self.lambda_.run, self._region)
            self._pollers.append(pollers)
            pollers.start()
        for stream in self.streams:
            poller = StreamPoller(stream, self.lambda_, self.state, self.targets,
                                  self.dynamodb_url, self._region)
            self._pollers.append(poller)
            poller.start()

    def stop(self) -> None:
        for pollers in self._pollers:
            pollers.stop()


def _filters(where: str, props: dict[str, Any]) -> list[EventPattern]:
    try:
        return compile_filters(props.get("FilterCriteria"))
    except (InvalidEventPatternError, KeyError, TypeError) as error:
        raise AssemblyError(f"{where}.FilterCriteria: {error}") from None


def _bounded(where: str, props: dict[str, Any], name: str, default: int, low: int,
             high: int) -> int:
    value = int(props.get(name, default))
    if not low <= value <= high:
        raise AssemblyError(f"{where}.{name}: {value} is not between {low} and {high}")
    return value


def mapping_uuid(stack: str, logical_id: str) -> str:
    """A mapping's UUID as Lambda shows it, stable for the same template."""
    digest = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
