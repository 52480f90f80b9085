"""Every resource that can receive something, by ARN: a queue, a function, a bus, a topic.

Services do not import each other. A rule delivering to a queue, a topic fanning out to a
function, a Lambda destination posting to a bus: each looks its target up here by ARN, as AWS
itself wires them, and gets back what to write (a `Writes`) in the same transaction that ends
its own work. A service is added by registering its resources, without touching the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sandbox.core.delivery import Failure
from sandbox.core.state import Writes


@dataclass(frozen=True)
class Parcel:
    """What one hop hands the next."""

    body: str  # the payload as text: JSON for all but a plain-text input template
    # Where it comes from, for the history and the receiver's records: event_id, rule,
    # target_id, request_id...
    context: dict[str, Any] = field(default_factory=dict)
    group_id: str | None = None  # a FIFO queue's MessageGroupId
    # SQS message attributes: name -> text (a String), or typed as SQS's API shapes them
    # ({"DataType": "Number", "StringValue": "3"}).
    attributes: dict[str, Any] = field(default_factory=dict)
    # How it came: a rule delivering ("bus"), a topic ("topic"), a schedule, a "destination",
    # a "dead-letter" route (see also history.EventPut.via).
    via: str = ""


class Sink(Protocol):
    def accept(self, parcel: Parcel) -> Writes:
        """Take `parcel`: what to write for it. Raises `Failure` when it cannot."""
        ...


class Targets:
    def __init__(self) -> None:
        self._sinks: dict[str, Sink] = {}

    def register(self, arn: str, sink: Sink) -> None:
        self._sinks[arn] = sink

    def __contains__(self, arn: str) -> bool:
        return self.find(arn) is not None

    def find(self, arn: str) -> Sink | None:
        """The sink of `arn`. (Lambda registers each function's qualified ARNs too: `:$LATEST`,
        its versions' and its aliases'; an unknown qualifier names nothing, as on AWS.)"""
        return self._sinks.get(arn)

    def sink(self, arn: str) -> Sink:
        sink = self.find(arn)
        if sink is None:
            raise Failure("ResourceNotFoundException",
                          f"{arn} names no resource the sandbox runs", retryable=False)
        return sink

    def deliver(self, arn: str, parcel: Parcel) -> Writes:
        return self.sink(arn).accept(parcel)
