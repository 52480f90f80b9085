"""SQS queues from the template, as far as the sandbox needs them: dead-letter queues of rule
targets and on-failure destinations of functions. Messages live in `State`, so they outlast a
restart and `python -m sandbox dlq` can list them from another process."""

from __future__ import annotations

import time
import uuid

from sandbox.assembly import Stack
from sandbox.state import Message

QUEUE = "AWS::SQS::Queue"


class Queues:
    def __init__(self, stacks: list[Stack]) -> None:
        self.names: dict[str, str] = {}  # ARN -> queue name
        for stack in stacks:
            for queue in stack.of_type(QUEUE):
                arn = stack.get_att(queue.logical_id, "Arn")
                self.names[arn] = stack.get_att(queue.logical_id, "QueueName")

    def __contains__(self, arn: str) -> bool:
        return arn in self.names

    def message(self, queue_arn: str, body: str, attributes: dict[str, str]) -> Message:
        """A message for `queue_arn`, to be stored by the caller in the same transaction as
        the work it ends."""
        return Message(str(uuid.uuid4()), queue_arn, body, attributes, time.time())
