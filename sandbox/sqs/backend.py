"""SQS queues from the template, as far as the sandbox needs them yet: targets of rules, dead-letter
queues and destinations. Messages live in `State`, so they outlast a restart and
`python -m sandbox dlq` can list them from another process."""

from __future__ import annotations

import time
import uuid

from sandbox.assembly import Stack
from sandbox.core.delivery import Failure
from sandbox.core.state import Message, Writes
from sandbox.core.targets import Parcel, Targets

QUEUE = "AWS::SQS::Queue"


class Queues:
    def __init__(self, stacks: list[Stack], targets: Targets) -> None:
        self.names: dict[str, str] = {}  # ARN -> queue name
        for stack in stacks:
            for queue in stack.of_type(QUEUE):
                arn = stack.get_att(queue.logical_id, "Arn")
                self.names[arn] = stack.get_att(queue.logical_id, "QueueName")
                targets.register(arn, _QueueSink(arn, self.names[arn].endswith(".fifo")))


class _QueueSink:
    def __init__(self, arn: str, fifo: bool) -> None:
        self.arn = arn
        self.fifo = fifo

    def accept(self, parcel: Parcel) -> Writes:
        if self.fifo and not parcel.group_id:
            raise Failure("InvalidParameterValue",
                          f"The request must contain the parameter MessageGroupId ({self.arn})",
                          retryable=False)
        message = Message(str(uuid.uuid4()), self.arn, parcel.body, dict(parcel.attributes),
                          time.time(), parcel.group_id if self.fifo else None)
        return Writes(messages=[message])
