"""Lambda's asynchronous invocations as durable jobs, without starting a worker."""

from __future__ import annotations

import time
from pathlib import Path

from sandbox.lambda_service import LambdaService
from sandbox.settings import Settings
from sandbox.sqs import Queues
from sandbox.state import NewJob, State

GONE = "arn:aws:lambda:us-east-1:000000000000:function:gone"


def test_an_invocation_whose_function_left_the_template_ends_with_its_reason(
        tmp_path: Path) -> None:
    """Accepted by an earlier run, its function since removed: it must not be retried forever,
    nor vanish without a trace."""
    state = State(tmp_path / "sandbox.db")
    service = LambdaService([], state, Queues([]), Settings(), base_env={},
                            on_log=lambda function, line: None)
    event = {"id": "e-1", "detail": {"data": {"ID": "order-1"}}}
    state.add(jobs=[NewJob("invoke", GONE, {"event": event, "request_id": "r-1",
                                            "context": {"event_id": "e-1"}})])
    (job,) = state.due_jobs(time.time(), set(), 10)

    service.run_async(job)

    assert state.pending_jobs() == 0
    [(_, _, kind, record)] = state.history()
    assert kind == "dead-letter"
    assert record["event_id"] == "e-1"
    assert record["record"]["requestContext"]["condition"] == "FunctionNotFound"
    assert record["record"]["requestPayload"] == event
    assert GONE in record["record"]["responsePayload"]["errorMessage"]
