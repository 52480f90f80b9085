"""A failure's trace, end to end in the breadth stack (tests/breadth/traces.py): an event put
with boto3 reaches a function that always fails; the trace, read from the state, shows Lambda's
retry, the dead letter and the OnFailure destination as spans of the same trace, each with the
reason: the OnFailure destination named as a destination, the DeadLetterConfig queue as a dead
letter."""
# ruff: noqa: F811  (pytest fixtures imported from breadth_sandbox are parameters here)

import json
import uuid

import pytest
from breadth_sandbox import breadth, queue_messages, received, wait_received  # noqa: F401
from sandbox_process import SandboxProcess, wait_for

from sandbox.core.state import State
from sandbox.traces import query
from sandbox.traces.model import Trace

pytestmark = pytest.mark.slow

FAILS = "ValueError: breadth destinations: always fails"


def put_probe(sandbox: SandboxProcess) -> str:
    client = sandbox.client("events")
    (bus,) = [b["Name"] for b in client.list_event_buses()["EventBuses"]
              if "TracesBus" in b["Name"]]
    probe = f"probe-{uuid.uuid4()}"
    answer = client.put_events(Entries=[{"EventBusName": bus, "Source": "breadth.traces",
                                         "DetailType": "probe",
                                         "Detail": json.dumps({"probe": probe})}])
    assert answer["FailedEntryCount"] == 0
    return probe


def finished(sandbox: SandboxProcess, probe: str) -> Trace | None:
    """The probe's trace once both failure routes are in it."""
    found = query.find(State(sandbox.state / "sandbox.db", read_only=True), probe)
    dead = [s for t in found for s in t.spans if s.kind == "dead-letter"]
    return found[0] if len(dead) == 2 else None


def test_a_retry_a_dead_letter_and_a_destination_are_spans_with_their_reason(
        breadth: SandboxProcess) -> None:
    probe = put_probe(breadth)
    trace = wait_for(lambda: finished(breadth, probe), 90, "the probe's failure routes")

    [put] = trace.roots
    assert put.kind == "event" and put.attributes["aws.eventbridge.source"] == "breadth.traces"
    [delivery] = trace.children[put.span_id]
    runs = trace.children[delivery.span_id]
    assert [(s.service, s.ok, s.reason) for s in runs] == [("TracesFails", False, FAILS)] * 2
    assert [s.attributes["aws.lambda.attempt"] for s in runs] == [1, 2]  # Lambda's one retry
    assert trace.children.get(runs[0].span_id) is None

    routes = trace.children[runs[1].span_id]  # the last try's failure takes both routes
    sent = {s.attributes["aws.sqs.via"]: s.resource for s in routes if s.kind == "queued"}
    assert {via: arn.split(":")[-1].split("-")[1][:14] for via, arn in sent.items()} == {
        "destination": "TracesFailures", "dead-letter": "TracesDeadLett"}
    dead = {s.attributes["messaging.destination.name"]: s for s in routes
            if s.kind == "dead-letter"}
    assert set(dead) == set(sent.values())
    for queue, span in dead.items():
        assert not span.ok and span.service == "Lambda"
        assert span.reason == f"breadth destinations: always fails (to {queue})"
    names = {span.attributes.get("aws.lambda.route"): span.name.split(" -> ")[0]
             for span in dead.values()}
    assert names == {"OnFailure": "OnFailure destination", "DeadLetterConfig": "dead letter"}
    assert {span.attributes["aws.lambda.condition"] for span in dead.values()} == {
        "RetriesExhausted"}
    assert {s.trace_id for s in trace.spans} == {put.trace_id}
    assert len(trace.summary()["errors"]) == 4
