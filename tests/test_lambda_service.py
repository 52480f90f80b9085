"""Lambda's asynchronous invocations as durable jobs, without starting a worker."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sandbox.core.delivery import Deliveries
from sandbox.core.history import DeadLetter
from sandbox.core.state import NewJob, State
from sandbox.core.targets import Targets
from sandbox.lambda_.backend import INVOKE, AsyncInvocation, LambdaService
from sandbox.settings import Settings

GONE = "arn:aws:lambda:us-east-1:000000000000:function:gone"


def test_an_invocation_whose_function_left_the_template_ends_with_its_reason(
        tmp_path: Path) -> None:
    """Accepted by an earlier run, its function since removed: it must not be retried forever,
    nor vanish without a trace."""
    state = State(tmp_path / "sandbox.db")
    service = LambdaService([], state, Targets(), Settings(), base_env={},
                            on_log=lambda *_: None)
    event = {"id": "e-1", "detail": {"data": {"ID": "order-1"}}}
    state.add(jobs=[NewJob(INVOKE, GONE, {"body": json.dumps(event), "request_id": "r-1",
                                          "context": {"event_id": "e-1"}})])
    (job,) = state.due_jobs(time.time(), set(), 10)

    Deliveries(state, Settings(), {INVOKE: AsyncInvocation(service)}).run(job)

    assert state.pending_jobs() == 0
    [entry] = state.history()
    record = entry.record
    assert isinstance(record, DeadLetter)
    assert (record.event_id, record.queue) == ("e-1", None)
    assert record.record is not None
    assert record.record["requestContext"]["condition"] == "ResourceNotFoundException"
    assert record.record["requestPayload"] == event
    assert GONE in record.record["responsePayload"]["errorMessage"]
