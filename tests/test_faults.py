"""Faults on the real app in the sandbox: nothing the API accepted is lost when a worker dies in
the middle of an invocation, when a share of invocations and deliveries fails, when the sandbox
is killed with events in flight, or when DynamoDB Local is killed.

Each scenario prints its figures (orders sent, accepted, completed, in failure queues, lost) and
fails on any order unaccounted for.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import report
from order_accounting import (
    events_accepted,
    history,
    pending_jobs,
    send_orders,
    settle,
    stamped_items,
)
from sandbox_process import (
    FAST_RETRIES,
    SandboxProcess,
    alive,
    create_order,
    descendants,
    failure_messages,
    wait_for,
    workers,
)

from sandbox.core.history import InvocationRun

pytestmark = pytest.mark.slow

CONSUMER_LABELS = ("InvoiceService", "FulfilmentService", "ForecastingService", "LogisticService")


@pytest.fixture(scope="module")
def order_function(synthesized_app: Any) -> str:
    """The order service's logical id, which its local function name contains."""
    return synthesized_app.logical_id(synthesized_app.stack.functions["order-service"])


@pytest.fixture
def started() -> Iterator[list[SandboxProcess]]:
    """Sandboxes a test starts, stopped at its end whatever happened."""
    sandboxes: list[SandboxProcess] = []
    yield sandboxes
    for sandbox in sandboxes:
        if sandbox.process is not None and sandbox.process.poll() is None:
            sandbox.stop()


def function_of(pid: int) -> str:
    """The name of the function a worker process runs, from its Lambda environment ("" for a
    worker gone meanwhile)."""
    try:
        environment = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return ""
    for variable in environment.split(b"\0"):
        name, _, value = variable.partition(b"=")
        if name == b"AWS_LAMBDA_FUNCTION_NAME":
            return value.decode()
    return ""


def dynamodb_local(sandbox: SandboxProcess) -> int | None:
    """The pid of the sandbox's DynamoDB Local."""
    assert sandbox.process is not None
    for pid in descendants(sandbox.process.pid):
        try:
            if b"DynamoDBLocal.jar" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def unfinished(sandbox: SandboxProcess, label: str) -> set[str]:
    """Request ids of `label`'s invocations that wrote START and not yet END: the runtime has
    the event and the handler has not answered."""
    lines = list(sandbox.lines)
    began = {line.split("RequestId: ")[1].split()[0] for line in lines
             if line.startswith(f"[{label}] START RequestId: ")}
    ended = {line.split("RequestId: ")[1].split()[0] for line in lines
             if line.startswith(f"[{label}] END RequestId: ")}
    return began - ended


def fire_when(condition: Callable[[], bool], action: Callable[[], None]) -> Callable[[], bool]:
    """Watch `condition` from a thread and run `action` as soon as it holds. The function
    returned ends the watch and says whether `action` ran."""
    fired, done = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            if condition():
                action()
                fired.set()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    def finish() -> bool:
        done.set()
        watcher.join()
        return fired.is_set()

    return finish


def table_answers(sandbox: SandboxProcess) -> bool:
    try:
        stamped_items(sandbox)
    except Exception:  # DynamoDB Local not up yet: the endpoint answers 503
        return False
    return True


def order_of_event(state: Path) -> dict[str, str]:
    """Event id -> the order ID it carries, from the events the bus accepted."""
    return {record.event["id"]: record.event["detail"].get("data", {}).get("ID")
            for record in history(state, "event")}


def test_a_worker_killed_in_the_middle_of_an_invocation_loses_no_order(
    assembly: Path, order_function: str, tmp_path: Path, started: list[SandboxProcess],
) -> None:
    """DynamoDB Local is paused (SIGSTOP) as soon as a few orders are accepted, so the writes
    of the consumers handling them hang: a consumer that wrote START and no END is provably
    inside an invocation when its worker is killed. Lambda retries each killed invocation, and
    every order completes."""
    sandbox = SandboxProcess(assembly, tmp_path / "state", extra_args=FAST_RETRIES).start()
    started.append(sandbox)
    # Warms the workers, and is accounted for like the others: its consumers may still be
    # running when the kill comes.
    accepted: list[str] = [create_order(sandbox)]
    database = dynamodb_local(sandbox)
    assert database is not None

    in_flight: set[str] = set()
    victims: list[int] = []
    for _ in range(5):  # the consumers of the last order accepted nearly always run after it
        orders, refused = send_orders(sandbox, 5, at_a_time=5)
        accepted += orders
        assert refused == 0
        os.kill(database, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 3
            while not in_flight and time.monotonic() < deadline:
                in_flight = {request_id for label in CONSUMER_LABELS
                             for request_id in unfinished(sandbox, label)}
                time.sleep(0.02)
            if in_flight:
                victims = [pid for pid in workers(sandbox)
                           if function_of(pid) and order_function not in function_of(pid)]
                for pid in victims:
                    os.kill(pid, signal.SIGKILL)
        finally:
            os.kill(database, signal.SIGCONT)
        if in_flight:
            break

    sent = len(accepted)
    account = settle(sandbox, sent, accepted, "faults/worker killed mid-invocation")
    invocations = history(sandbox.state, "invocation")
    first_tries: dict[str, InvocationRun] = {}
    for record in invocations:
        if record.request_id in in_flight:
            first_tries.setdefault(record.request_id, record)
    # (One that was only writing its END when the kill came finished first: not killed.)
    killed = [record for record in first_tries.values() if not record.ok]
    report(f"faults/worker killed mid-invocation: {len(victims)} workers killed, "
          f"{len(killed)} invocations killed in flight, each retried")
    assert killed, "no consumer was inside an invocation when its worker was killed"
    assert account.lost == []
    assert account.completed == set(accepted)
    orders = order_of_event(sandbox.state)
    succeeded = {r.request_id for r in invocations if r.ok}
    for record in killed:
        assert record.error_type == "Runtime.ExitError"
        assert "signal: killed" in (record.error_message or "")
        assert record.request_id in succeeded, "Lambda retried the same invocation"
        assert orders[record.event_id or ""] in account.completed


def test_injected_faults_end_in_retries_or_failure_queues_with_the_reason(
    assembly: Path, tmp_path: Path, started: list[SandboxProcess],
) -> None:
    """Half of all invocations and half of all deliveries fail, by the sandbox's own setting,
    not by code in the handlers: the order service's failures are 502s (not accepted); every
    accepted order completes through retries or waits in a failure queue with the reason."""
    sandbox = SandboxProcess(
        assembly, tmp_path / "state",
        extra_args=(*FAST_RETRIES, "--fail-invocations", "0.5", "--fail-deliveries", "0.5"),
    ).start()
    started.append(sandbox)
    sent = 60
    accepted, refused = send_orders(sandbox, sent, at_a_time=10)
    account = settle(sandbox, sent, accepted, "faults/injected (0.5 of invocations, "
                                              "0.5 of deliveries)")
    assert account.lost == []
    assert 0 < refused < sent  # the order service's own invocations fail too: 502
    # With these shares both outcomes are all but certain (no order in a queue: p < 1e-5).
    assert account.completed and account.in_failure_queues

    invocations = history(sandbox.state, "invocation")
    deliveries = history(sandbox.state, "delivery")
    assert any(r.error_type == "Sandbox.InjectedFault" for r in invocations)
    assert any(r.ok and (r.attempt or 1) > 1 for r in invocations), "retried, then succeeded"
    assert any(r.error_code == "ThrottlingException" for r in deliveries)
    assert any(r.ok and r.attempt > 1 for r in deliveries), "redelivered"
    for message in failure_messages(sandbox.state):
        if "ERROR_CODE" in message["attributes"]:  # EventBridge gave up delivering
            assert message["reason"].startswith("ThrottlingException: "), message
        else:  # Lambda gave up running it
            record = json.loads(message["body"])
            assert record["requestContext"]["approximateInvokeCount"] == 3
            assert "Sandbox.InjectedFault" in message["reason"], message


def test_a_sandbox_killed_with_events_in_flight_under_load_loses_no_order(
    assembly: Path, tmp_path: Path, started: list[SandboxProcess],
) -> None:
    """SIGKILL while orders arrive 20 at a time: what the API accepted is in the state file
    (events not yet delivered, invocations not yet run), and the restarted sandbox finishes it.
    Requests cut off by the kill got no answer, so they were never accepted."""
    sandbox = SandboxProcess(assembly, tmp_path / "state", extra_args=FAST_RETRIES).start()
    started.append(sandbox)
    create_order(sandbox)
    sent = 300

    killed = fire_when(lambda: events_accepted(sandbox.state) >= 200
                       and pending_jobs(sandbox.state) >= 20, sandbox.kill)
    accepted, _ = send_orders(sandbox, sent, at_a_time=20)
    assert killed(), "the orders were all answered before 20 jobs were ever in flight"
    in_flight = pending_jobs(sandbox.state)

    sandbox.start()
    account = settle(sandbox, sent, accepted, "faults/sandbox killed under load")
    report(f"faults/sandbox killed under load: {in_flight} deliveries and invocations "
          "were in flight at the kill")
    assert in_flight > 0
    assert account.lost == []
    assert len(account.completed) == len(accepted)


def test_dynamodb_local_killed_is_restarted_with_every_item(
    assembly: Path, tmp_path: Path, started: list[SandboxProcess],
) -> None:
    """SIGKILL to DynamoDB Local while orders flow: the sandbox starts it again on the same port
    and data; every item written before is there unchanged, and every order accepted before,
    around and after the kill completes or is in a failure queue. Retries are scaled so Lambda's
    (3 and 6 s) outlast the restart, as AWS's (1 and 2 minutes) would."""
    sandbox = SandboxProcess(assembly, tmp_path / "state",
                             extra_args=("--retry-scale", "0.05")).start()
    started.append(sandbox)
    before, _ = send_orders(sandbox, 30, at_a_time=10)
    settle(sandbox, 30, before, "faults/before killing DynamoDB Local")
    items_before = stamped_items(sandbox)
    old = dynamodb_local(sandbox)
    assert old is not None

    events_before = events_accepted(sandbox.state)

    killed = fire_when(lambda: events_accepted(sandbox.state) >= events_before + 10,
                       lambda: os.kill(old, signal.SIGKILL))
    around, refused = send_orders(sandbox, 30, at_a_time=4)
    assert killed(), "the orders were all answered before DynamoDB Local could be killed"
    new = wait_for(lambda: dynamodb_local(sandbox) not in (None, old) and dynamodb_local(sandbox),
                   30, "DynamoDB Local to be started again")
    wait_for(lambda: table_answers(sandbox), 60, "the table to answer again")
    after, refused_after = send_orders(sandbox, 10, at_a_time=4)
    account = settle(sandbox, 40, around + after, "faults/DynamoDB Local killed")
    items_after = stamped_items(sandbox)
    kept = sum(items_after.get(order_id) == item for order_id, item in items_before.items())
    retried = sum(not r.ok and r.event_id is not None
                  for r in history(sandbox.state, "invocation"))
    report(f"faults/DynamoDB Local killed: {refused} orders refused (500) while it was down, "
          f"{retried} consumer invocations failed and were retried; items before "
          f"{len(items_before)}, unchanged after the restart {kept}")
    assert "DynamoDB Local exited (code -9); starting it again" in sandbox.output()
    assert kept == len(items_before)
    assert account.lost == []
    assert refused_after == 0
    assert set(after) <= account.completed

    assert sandbox.stop(signal.SIGINT) == 0
    assert not alive(new), "the restarted DynamoDB Local is stopped with the sandbox"
