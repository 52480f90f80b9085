"""`python -m sandbox trace` and `orders`: a deployed order's journey in the terminal (moto's
in-process CloudFormation and DynamoDB), and a request's trace from a sandbox's state: made in
process, then an order's through a running sandbox, proved span by span."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from sandbox_process import ROOT, SandboxProcess, wait_for

from sandbox.__main__ import main
from sandbox.core.history import EventPut, InvocationRun
from sandbox.core.state import State
from sandbox.traces import context, query
from sandbox.traces.model import Trace

SERVICES = ("OrderService", "InvoiceService", "FulfilmentService", "ForecastingService",
            "LogisticService")
STAMPS = ("time_order_service", "time_invoice_service", "time_fulfilment_service",
          "time_forecasting_service", "time_logistic_service")
OFFSET = r"\+\d+(\.\d+)? (ms|s)"


def services_section(output: str) -> list[tuple[str, str]]:
    """(service, offset) as `trace` lists them under 'services, in the order they first
    acted:'."""
    lines = output.splitlines()
    start = lines.index("services, in the order they first acted:") + 1
    section = []
    for line in lines[start:]:
        if not line.strip():
            break
        name, offset = line.split(maxsplit=1)
        section.append((name, offset.strip()))
    return section


def in_seconds(offset: str) -> float:
    number, unit = offset.lstrip("+").split()
    return float(number) / (1000 if unit == "ms" else 1)


# A deployed stack, in moto

ORDER_ID = "3f1e2d4c-0000-4000-8000-000000000001"
START = datetime(2026, 11, 24, 14, 27, 32, 123000, tzinfo=UTC)
# Milliseconds after the order: the three consumers run side by side, logistic last.
AFTER_MS = {"time_order_service": 0, "time_invoice_service": 412, "time_forecasting_service": 398,
            "time_fulfilment_service": 405, "time_logistic_service": 1250}


def stamp(ms: int) -> str:
    moment = START + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def deploy(outputs: dict[str, Any], stack: str = "OrderChoreography") -> str:
    """A stack with an order table and `outputs`; its table holds one order with five stamps.
    Returns the table's physical name."""
    template = {
        "Resources": {"OrderTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "KeySchema": [{"AttributeName": "ID", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "ID", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    [table] = [r["PhysicalResourceId"] for r in
               cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
               if r["LogicalResourceId"] == "OrderTable"]
    item = {"ID": {"S": ORDER_ID}, **{name: {"S": stamp(ms)} for name, ms in AFTER_MS.items()}}
    boto3.client("dynamodb").put_item(TableName=table, Item=item)
    return table


URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/order"


@pytest.mark.parametrize("outputs", [
    {"OrderUrl": URL, "TableName": {"Ref": "OrderTable"}},  # what our stack says
    # No key says "Table" but a value is one; a key says "Table" but its table is gone.
    {"Api": URL, "LegacyTableName": "orders-2019", "Store": {"Ref": "OrderTable"}},
], ids=["output-key-names-the-table", "output-value-is-a-table"])
def test_trace_stack_finds_the_table_through_the_outputs(
        mocked_aws: None, capsys: pytest.CaptureFixture[str], outputs: dict[str, Any]) -> None:
    table = deploy(outputs)

    assert main(["trace", ORDER_ID, "--stack", "OrderChoreography"]) == 0

    output = capsys.readouterr().out
    assert f"ID {ORDER_ID} in table {table}" in output
    causal = sorted(AFTER_MS, key=AFTER_MS.get)
    listed = services_section(output)
    assert [name for name, _ in listed] == [name.removeprefix("time_") for name in causal]
    assert [in_seconds(offset) for _, offset in listed] == [AFTER_MS[n] / 1000 for n in causal]
    for name in STAMPS:
        assert f"stamped {name} = {stamp(AFTER_MS[name])}" in output
    assert "took 1.25 s" in output


def test_orders_stack_lists_the_deployed_orders(mocked_aws: None,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    deploy({"TableName": {"Ref": "OrderTable"}})

    assert main(["orders", "--stack", "OrderChoreography"]) == 0

    [header, row] = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "started", "steps", "status", "took"]
    assert row.split()[:3] == [ORDER_ID, stamp(0), "5/5"]


def test_trace_table_reads_a_named_table(mocked_aws: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    table = deploy({})
    assert main(["trace", ORDER_ID, "--table", table]) == 0
    assert len(services_section(capsys.readouterr().out)) == 5


@pytest.mark.parametrize(("args", "message"), [
    (["--stack", "Elsewhere"], "stack Elsewhere: Stack with id Elsewhere does not exist"),
    (["--stack", "OrderChoreography"],
     "stack OrderChoreography has no output naming a DynamoDB table that exists (outputs: "
     "OrderUrl): name the table with --table"),
])
def test_trace_stack_says_what_it_could_not_find(
        mocked_aws: None, capsys: pytest.CaptureFixture[str], args: list[str],
        message: str) -> None:
    deploy({"OrderUrl": URL})
    assert main(["trace", ORDER_ID, *args]) == 1
    assert capsys.readouterr().err.strip() == f"trace: {message}"


def test_trace_stack_says_when_the_order_is_not_there(
        mocked_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    table = deploy({"TableName": {"Ref": "OrderTable"}})
    assert main(["trace", "no-such-order", "--stack", "OrderChoreography"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"trace: no item with ID no-such-order in table {table}")


def test_trace_says_when_there_is_no_state(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", ORDER_ID, "--state", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"trace: no sandbox state at {tmp_path / 'none'} (say where with --state)")


# A sandbox's state, made in process

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:orders-OrderService"


def failed_run(request_id: str) -> InvocationRun:
    now = time.time()
    return InvocationRun(request_id, FUNCTION, "OrderService", False, now, now, 12.5, None, 40,
                         128, error_type="ValueError", error_message="no such product")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A state holding two traces that carry order o-1 (the newer failed) and one that does
    not."""
    state = State(tmp_path / "sandbox.db")
    for request_id, order in (("r-1", "o-1"), ("r-2", "o-2"), ("r-3", "o-1")):
        with context.span("event"):
            state.record(EventPut("arn:aws:events:us-east-1:123456789012:event-bus/orders",
                                  {"id": f"e-{request_id}", "detail-type": "order_created",
                                   "detail": {"orderId": order}}, ["order_created"]))
            with context.span("invocation"):
                state.record(failed_run(request_id))
    state.close()
    return tmp_path


def test_trace_prints_each_trace_a_value_leads_to_as_a_tree_newest_first(
        state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "o-1", "--state", str(state_dir)]) == 0
    output = capsys.readouterr().out
    newest, oldest = output.split("\n\n")
    for text in (newest, oldest):
        head, put, run = text.splitlines()
        assert re.fullmatch(r"trace 1-[0-9a-f]{8}-[0-9a-f]{24}  order_created put  .+  1 failed"
                            r"  \(2 spans: EventBridge, OrderService\)", head), head
        assert re.fullmatch(r"  +\+0\.0 ms +\d+\.\d ms  order_created put  \[EventBridge "
                            r"arn:aws:events:us-east-1:123456789012:event-bus/orders\]", put), put
        assert re.fullmatch(r"! +\+\d+\.\d ms +12\.5 ms    OrderService invoke  \[OrderService "
                            r"orders-OrderService\]  ValueError: no such product", run), run
    state = State(state_dir / "sandbox.db", read_only=True)
    [later, earlier] = query.find(state, "o-1")
    assert newest.startswith(f"trace {later.trace_id}") and earlier.start <= later.start


def test_trace_finds_a_trace_by_its_id_and_by_a_request_id(
        state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = State(state_dir / "sandbox.db", read_only=True)
    [trace_id] = query.trace_ids(state, "r-2")
    for key in (trace_id, f"Root={trace_id};Parent=0000000000000001", "r-2"):
        assert main(["trace", key, "--state", str(state_dir)]) == 0
        assert capsys.readouterr().out.startswith(f"trace {trace_id}  ")


def test_trace_json_is_each_trace_with_its_spans_in_tree_order(
        state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "r-2", "--state", str(state_dir), "--json"]) == 0
    [trace] = json.loads(capsys.readouterr().out)
    put, run = trace["spans"]
    assert (put["depth"], run["depth"]) == (0, 1) and run["parent_id"] == put["span_id"]
    assert (run["ok"], run["reason"]) == (False, "ValueError: no such product")
    assert run["attributes"]["faas.invocation_id"] == "r-2"
    assert trace["errors"] == ["OrderService invoke: ValueError: no such product"]


def test_trace_otlp_json_is_an_export_request_with_hex_ids(
        state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "r-2", "--state", str(state_dir), "--otlp-json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    spans = {s["name"]: (r["resource"], s) for r in exported["resourceSpans"]
             for scope in r["scopeSpans"] for s in scope["spans"]}
    (bus, put), (function, run) = spans["order_created put"], spans["OrderService invoke"]
    trace_id = query.trace_ids(State(state_dir / "sandbox.db", read_only=True), "r-2")[0]
    assert put["traceId"] == run["traceId"] == trace_id.removeprefix("1-").replace("-", "")
    assert run["parentSpanId"] == put["spanId"] and "parentSpanId" not in put
    assert re.fullmatch("[0-9a-f]{16}", put["spanId"])
    assert (put["kind"], run["kind"]) == (4, 5)  # PRODUCER, CONSUMER
    assert run["status"] == {"code": 2, "message": "ValueError: no such product"}
    assert {"key": "service.name", "value": {"stringValue": "OrderService"}} in \
        function["attributes"]
    assert {"key": "faas.invocation_id", "value": {"stringValue": "r-2"}} in run["attributes"]
    assert bus["attributes"][0]["value"]["stringValue"] == "EventBridge"


# A running sandbox


@pytest.fixture(scope="module")
def sandbox(assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(assembly, tmp_path_factory.mktemp("state"),
                        extra_args=("--retry-scale", "0.001")) as running:
        yield running


def run_cli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=ROOT, check=True,
                          capture_output=True, text=True, timeout=60).stdout


SERVICES = {"OrderService", "InvoiceService", "FulfilmentService", "ForecastingService",
            "LogisticService"}


def order_trace(state_dir: Path, order_id: str) -> Trace | None:
    """The order's trace once each of the five services' invocations is in it (logistic's can
    be written before forecasting's: the fan-out's functions run side by side)."""
    [trace] = query.find(State(state_dir / "sandbox.db", read_only=True), order_id) or [None]
    ran = {s.service for s in trace.spans if s.kind == "invocation"} if trace else set()
    return trace if ran == SERVICES else None


@pytest.mark.slow
def test_an_orders_trace_holds_every_hop_under_its_parent(sandbox: SandboxProcess) -> None:
    with urllib.request.urlopen(f"{sandbox.url}/prod/order", timeout=60) as answer:
        order_id = json.load(answer)["ID"]
    trace = wait_for(lambda: order_trace(sandbox.state, order_id), 60,
                     f"order {order_id}'s trace to hold its five invocations")

    def one(spans: list, service: str, kind: str) -> Any:
        [span] = [s for s in spans if s.service == service and s.kind == kind]
        return span

    [api] = trace.roots
    assert (api.kind, api.name, api.span_kind) == ("api", "GET /order", "SERVER")
    [order] = trace.children[api.span_id]
    assert (order.service, order.kind) == ("OrderService", "invocation")
    [created] = trace.children[order.span_id]
    assert (created.kind, created.name) == ("event", "order_created put")
    deliveries = trace.children[created.span_id]
    assert [d.kind for d in deliveries] == ["delivery"] * 3
    consumers = [c for d in deliveries for c in trace.children[d.span_id]]
    assert sorted(c.service for c in consumers) == ["ForecastingService", "FulfilmentService",
                                                    "InvoiceService"]
    assert {c.kind for c in consumers} == {"invocation"}
    fulfilment = one(consumers, "FulfilmentService", "invocation")
    [completed] = trace.children[fulfilment.span_id]
    assert (completed.kind, completed.name) == ("event", "fulfilment_completed put")
    [handed] = trace.children[completed.span_id]
    [logistic] = trace.children[handed.span_id]
    assert (handed.kind, logistic.service) == ("delivery", "LogisticService")
    assert len(trace.spans) == 12 and {s.trace_id for s in trace.spans} == {trace.trace_id}
    assert all(s.ok for s in trace.spans)
    assert all(trace.children.get(c.span_id) is None
               for c in consumers if c is not fulfilment)
    assert [s.trace_id for s in [logistic]] == [api.trace_id]

    output = run_cli("trace", order_id, "--state", str(sandbox.state), "--logs")
    lines = output.splitlines()
    assert lines[0].startswith(f"trace {trace.trace_id}  GET /order  ")
    names = [re.sub(r"^[ !] +\+\S+ \w+ +\S+ \w+  ", "", line) for line in lines[1:]
             if not line.strip().startswith("|")]
    assert names[0] == "GET /order  [API Gateway OrderApi]"
    assert names[1].startswith("  OrderService invoke  [OrderService ")
    assert names[2].startswith("    order_created put  [EventBridge ")
    assert f'"ID": "{order_id}"' in output  # the order service's log line, under its run
    assert re.search(r"^ +\| REPORT RequestId: ", output, re.M)


@pytest.mark.slow
def test_orders_lists_the_running_sandboxs_orders(sandbox: SandboxProcess) -> None:
    with urllib.request.urlopen(f"{sandbox.url}/prod/order", timeout=60) as answer:
        order_id = json.load(answer)["ID"]
    wait_for(lambda: order_trace(sandbox.state, order_id), 60,
             f"order {order_id}'s trace to hold its five invocations")
    wait_for(lambda: [line for line in run_cli("orders", "--port", str(sandbox.port))
                      .splitlines() if line.startswith(order_id) and " 5/5 " in line], 30,
             f"order {order_id} listed with its five steps")


@pytest.fixture(scope="module")
def traced_dynamodb(assembly: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(assembly, tmp_path_factory.mktemp("state"),
                        extra_args=("--trace-dynamodb",)) as running:
        yield running


@pytest.mark.slow
def test_with_trace_dynamodb_each_functions_write_is_a_span_under_its_invocation(
        traced_dynamodb: SandboxProcess) -> None:
    with urllib.request.urlopen(f"{traced_dynamodb.url}/prod/order", timeout=60) as answer:
        order_id = json.load(answer)["ID"]
    trace = wait_for(lambda: order_trace(traced_dynamodb.state, order_id), 60,
                     f"order {order_id}'s trace to hold its five invocations")
    invocations = {s.span_id: s.service for s in trace.spans if s.kind == "invocation"}
    calls = [s for s in trace.spans if s.kind == "call"]
    assert sorted(invocations[c.parent_id] for c in calls) == [
        "ForecastingService", "FulfilmentService", "InvoiceService", "LogisticService",
        "OrderService"]
    assert {(c.name, c.span_kind, c.ok) for c in calls} == {
        ("DynamoDB UpdateItem", "CLIENT", True)}
    (table,) = traced_dynamodb.client("dynamodb").list_tables()["TableNames"]
    assert {c.resource for c in calls} == {c.attributes["aws.dynamodb.table_names"][0]
                                           for c in calls} == {table}
    assert len(trace.spans) == 17 and {s.trace_id for s in trace.spans} == {trace.trace_id}

    # A call from outside any trace (the CLI, a script) is passed on and recorded nowhere.
    before = len(State(traced_dynamodb.state / "sandbox.db", read_only=True).history())
    traced_dynamodb.client("dynamodb").get_item(TableName=table, Key={"ID": {"S": order_id}})
    after = State(traced_dynamodb.state / "sandbox.db", read_only=True).history()
    assert len(after) == before
