"""Lambda's event source mappings (`AWS::Lambda::EventSourceMapping`) read from the template and
run: pollers for SQS queues (`sqs_source`). What a mapping names that the sandbox does not poll
(Kinesis, Kafka, MQ, DocumentDB) is named at start; what Lambda refuses when the mapping is
created (an unknown function, a batch size out of range, a batching window missing for a batch
over 10, a FIFO batch over 10, a queue whose visibility timeout is below the function's timeout)
stops the start with the resource and property named.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sandbox.assembly import AssemblyError, Stack
from sandbox.events.patterns import InvalidEventPatternError
from sandbox.lambda_.backend import FunctionNotFound, LambdaService
from sandbox.lambda_.sqs_source import (
    DEFAULT_BATCH,
    DEFAULT_POLLERS,
    QueueReader,
    SqsMapping,
    SqsPollers,
    compile_filters,
)

MAPPING = "AWS::Lambda::EventSourceMapping"


class EventSources:
    def __init__(self, stacks: list[Stack], lambda_: LambdaService, queues: QueueReader,
                 queue_settings: dict[str, tuple[bool, int]]) -> None:
        """`queue_settings`: queue ARN -> (FIFO, visibility timeout), for Lambda's checks."""
        self.lambda_ = lambda_
        self.queues = queues
        self.sqs: list[SqsMapping] = []
        self.not_run: list[str] = []
        self._pollers: list[SqsPollers] = []
        self._region = stacks[0].region if stacks else "us-east-1"
        for stack in stacks:
            for resource in stack.of_type(MAPPING):
                self._read(stack, resource.logical_id, queue_settings)

    def _read(self, stack: Stack, logical_id: str,
              queue_settings: dict[str, tuple[bool, int]]) -> None:
        where = f"{stack.template_file}: Resources.{logical_id}.Properties"
        props: dict[str, Any] = stack.resolve(stack.resources[logical_id].properties, where)
        source = str(props.get("EventSourceArn") or "")
        try:
            config = self.lambda_.config(str(props.get("FunctionName", "")))
        except FunctionNotFound:
            raise AssemblyError(f"{where}.FunctionName: function {props.get('FunctionName')} "
                                "is not one the sandbox runs") from None
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
        try:
            filters = compile_filters(props.get("FilterCriteria"))
        except (InvalidEventPatternError, KeyError, TypeError) as error:
            raise AssemblyError(f"{where}.FilterCriteria: {error}") from None
        scaling = props.get("ScalingConfig") or {}
        concurrency = int(scaling.get("MaximumConcurrency", DEFAULT_POLLERS))
        if not 2 <= concurrency <= 1000:
            raise AssemblyError(f"{where}.ScalingConfig.MaximumConcurrency: {concurrency} is "
                                "not between 2 and 1000")
        if str(props.get("Enabled", True)).lower() == "false":
            self.not_run.append(f"{logical_id} (disabled)")
            return
        self.sqs.append(SqsMapping(
            uuid=_uuid(stack.name, logical_id), queue_arn=source, function_arn=config.arn,
            batch_size=batch, window_s=window, filters=filters,
            report_item_failures="ReportBatchItemFailures" in (
                props.get("FunctionResponseTypes") or []),
            max_concurrency=concurrency, fifo=fifo))

    def start(self) -> None:
        for mapping in self.sqs:
            pollers = SqsPollers(mapping, self.queues, self.lambda_.invoke, self._region)
            self._pollers.append(pollers)
            pollers.start()

    def stop(self) -> None:
        for pollers in self._pollers:
            pollers.stop()


def _uuid(stack: str, logical_id: str) -> str:
    """A mapping's UUID as Lambda shows it, stable for the same template."""
    digest = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
