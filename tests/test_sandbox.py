"""The local sandbox end to end, on the real synthesized app: what `make run` gives a user.

Each test talks to the sandbox only as a user would: HTTP on the order URL, boto3 and the
`python -m sandbox` commands against its endpoint, signals to its process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from eventbridge_corpus import AWS_ERRORS, CASES, load, needs_corpus
from sandbox_process import (
    EDGE_ASSEMBLY,
    FAST_RETRIES,
    ROOT,
    Orders,
    SandboxProcess,
    alive,
    create_order,
    descendants,
    failure_messages,
    get,
    order_bus,
    wait_for,
    workers,
)

from sandbox.core.history import InvocationRun
from sandbox.core.state import State

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def sandbox(assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(assembly, tmp_path_factory.mktemp("state"), extra_args=FAST_RETRIES) as sb:
        yield sb


def test_an_order_reaches_five_stamps_in_causal_order(sandbox: SandboxProcess) -> None:
    status, headers, body = get(f"{sandbox.url}/prod/order")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert answer == {"status": "order_created", "ID": answer["ID"]}

    orders = Orders(sandbox)
    item = wait_for(lambda: orders.complete(answer["ID"]), 60, "five stamps")
    assert item["time_order_service"] <= item["time_fulfilment_service"]
    assert item["time_fulfilment_service"] <= item["time_logistic_service"]
    assert "[OrderService] START RequestId:" in sandbox.output()
    wait_for(lambda: "[LogisticService] REPORT RequestId:" in sandbox.output(), 10,
             "logistic-service's REPORT line in the terminal")


def test_an_invalid_event_ends_in_failure_queues_with_its_reason(
    sandbox: SandboxProcess,
) -> None:
    events = sandbox.client("events")
    detail = {"metadata": {"service": "demo-eventbridge"}, "data": {"note": "no ID here"}}
    answer = events.put_events(Entries=[{
        "EventBusName": order_bus(sandbox), "Source": "order_service",
        "DetailType": "order_created", "Detail": json.dumps(detail)}])
    assert answer["FailedEntryCount"] == 0
    event_id = answer["Entries"][0]["EventId"]

    def rejected() -> list[dict[str, Any]]:
        messages = [m for m in failure_messages(sandbox.state) if event_id in m["body"]]
        return messages if len(messages) == 3 else []

    messages = wait_for(rejected, 60, "the three consumers' failures in their queues")
    assert len({m["queue"] for m in messages}) == 3
    for message in messages:
        record = json.loads(message["body"])
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert record["requestPayload"]["detail"] == detail
        assert "ID" in message["reason"]


def test_a_failure_queue_is_an_ordinary_queue_read_with_boto3(sandbox: SandboxProcess) -> None:
    """What ends in a failure queue is read as from any SQS queue: receive, then delete."""
    events = sandbox.client("events")
    detail = {"metadata": {"service": "demo-eventbridge"}, "data": {"note": "read me"}}
    event_id = events.put_events(Entries=[{
        "EventBusName": order_bus(sandbox), "Source": "order_service",
        "DetailType": "order_created", "Detail": json.dumps(detail)}])["Entries"][0]["EventId"]
    sqs = sandbox.client("sqs")
    urls = sqs.list_queues()["QueueUrls"]
    assert all(url.startswith(f"{sandbox.url}/000000000000/") for url in urls)

    def received() -> list[dict[str, Any]]:
        found = []
        for url in urls:
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                               MessageSystemAttributeNames=["All"],
                                               VisibilityTimeout=60).get("Messages", []):
                if event_id in message["Body"]:
                    found.append((url, message))
        return found

    (url, message), *_ = wait_for(received, 60, "a failure record in a queue")
    assert json.loads(message["Body"])["requestPayload"]["id"] == event_id
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="no-such-queue")


def test_missing_routes_and_methods_answer_403(sandbox: SandboxProcess) -> None:
    for path in ("/prod/nowhere", "/prod", "/staging/order", "/"):
        status, _, body = get(f"{sandbox.url}{path}")
        assert (status, body) == (403, b'{"message":"Missing Authentication Token"}'), path
    request = urllib.request.Request(f"{sandbox.url}/prod/order", method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403


def test_test_event_pattern_gives_aws_answers_for_the_recorded_cases(
    sandbox: SandboxProcess,
) -> None:
    needs_corpus()
    events = sandbox.client("events")
    for name in CASES:
        pattern, event = load(name)
        if name.endswith("_EXC"):
            with pytest.raises(events.exceptions.InvalidEventPatternException) as refused:
                events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))
            message = refused.value.response["Error"]["Message"]
            assert message.splitlines()[0] == AWS_ERRORS[name], name
        else:
            result = events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))
            assert result["Result"] is (not name.endswith("_NEG")), name


def test_rules_and_targets_are_listed_as_eventbridge_does(sandbox: SandboxProcess) -> None:
    events = sandbox.client("events")
    bus = order_bus(sandbox)
    rules = {r["Name"]: r for r in events.list_rules(EventBusName=bus)["Rules"]}
    assert json.loads(rules["order_created"]["EventPattern"]) == {
        "detail-type": ["order_created"], "source": ["order_service"]}
    rule = events.describe_rule(Name="fulfilment_completed", EventBusName=bus)
    assert json.loads(rule["EventPattern"])["source"] == ["fulfilment_service"]
    targets = events.list_targets_by_rule(Rule="order_created", EventBusName=bus)["Targets"]
    assert len(targets) == 3
    assert all("DeadLetterConfig" in t and "RetryPolicy" in t for t in targets)
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.describe_rule(Name="no_such_rule", EventBusName=bus)


def test_a_killed_worker_loses_no_order(sandbox: SandboxProcess) -> None:
    """Workers killed while orders are in flight: every order the API accepted completes
    (EventBridge and Lambda retry), answered orders only: a killed order-service is a 502."""
    create_order(sandbox)  # warm every function, so there are workers to kill
    Orders(sandbox).wait_complete([create_order(sandbox)])

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = [pool.submit(get, f"{sandbox.url}/prod/order") for _ in range(12)]
        for pid in workers(sandbox):
            os.kill(pid, signal.SIGKILL)
        accepted = [json.loads(a.result()[2])["ID"] for a in answers if a.result()[0] == 200]
    assert accepted
    Orders(sandbox).wait_complete(accepted)


def test_a_killed_and_restarted_sandbox_loses_no_order(assembly: Path, tmp_path: Path) -> None:
    sandbox = SandboxProcess(assembly, tmp_path / "state", extra_args=FAST_RETRIES).start()
    try:
        accepted = [create_order(sandbox) for _ in range(5)]
        sandbox.kill()  # SIGKILL: nothing gets to clean up
        sandbox.start()
        Orders(sandbox).wait_complete(accepted)
    finally:
        sandbox.stop()


def test_ctrl_c_stops_every_process_the_sandbox_started(assembly: Path, tmp_path: Path) -> None:
    sandbox = SandboxProcess(assembly, tmp_path / "state").start()
    create_order(sandbox)  # start a worker
    assert sandbox.process is not None
    started = wait_for(lambda: workers(sandbox) and descendants(sandbox.process.pid), 30,
                       "worker processes")
    assert sandbox.stop(signal.SIGINT) == 0
    assert "sandbox: stopping" in sandbox.output()
    left = [pid for pid in started if alive(pid)]
    assert left == [], f"still running after Ctrl-C: {left}"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    state = tmp_path_factory.mktemp("edge")
    with SandboxProcess(EDGE_ASSEMBLY, state, extra_args=("--integration-timeout", "1")) as sb:
        yield sb


def test_a_malformed_lambda_answer_is_a_502(edge: SandboxProcess) -> None:
    assert get(f"{edge.url}/test/fine") [0] == 200
    for path in ("/test/malformed", "/test/crash"):
        status, _, body = get(f"{edge.url}{path}")
        assert (status, json.loads(body)) == (502, {"message": "Internal server error"}), path


def test_an_integration_past_its_timeout_is_a_504_and_its_run_is_recorded_when_it_ends(
        edge: SandboxProcess) -> None:
    status, headers, body = get(f"{edge.url}/test/slow?seconds=3")
    assert status == 504
    assert json.loads(body) == {"message": "Endpoint request timed out"}
    request_id = headers["x-amzn-RequestId"]
    state = State(edge.state / "sandbox.db", read_only=True)

    def recorded() -> list[InvocationRun]:
        return [e.record for e in state.history() if isinstance(e.record, InvocationRun)
                and e.record.api_request_id == request_id]

    try:
        [run] = wait_for(recorded, 30, "the slow function's run in the history")
    finally:
        state.close()
    assert run.ok and run.duration_ms >= 3000


def test_an_assembly_that_cannot_be_read_says_what_and_where(tmp_path: Path) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "sandbox", "up", "--assembly", str(tmp_path / "nope"),
         "--state", str(tmp_path / "state")], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode == 2
    assert str(tmp_path / "nope") in missing.stderr

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"artifacts": {')
    answer = subprocess.run(
        [sys.executable, "-m", "sandbox", "up", "--assembly", str(broken),
         "--state", str(tmp_path / "state")], cwd=ROOT, capture_output=True, text=True)
    assert answer.returncode == 2
    assert "manifest.json" in answer.stderr
