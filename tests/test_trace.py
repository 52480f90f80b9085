"""`python -m sandbox trace` and `orders`: an order's journey in the terminal, from a deployed
stack (moto's in-process CloudFormation and DynamoDB) and from a running sandbox."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from sandbox_process import ROOT, SandboxProcess, wait_for

from sandbox.__main__ import main
from sandbox.trace import sandbox_journey

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


def test_trace_says_when_no_sandbox_is_running(capsys: pytest.CaptureFixture[str]) -> None:
    from sandbox_process import free_port

    port = free_port()
    assert main(["trace", ORDER_ID, "--port", str(port)]) == 1
    error = capsys.readouterr().err
    assert f"no sandbox answering at http://127.0.0.1:{port}" in error
    assert "make run" in error


# A running sandbox


@pytest.fixture(scope="module")
def sandbox(assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(assembly, tmp_path_factory.mktemp("state"),
                        extra_args=("--retry-scale", "0.001")) as running:
        yield running


def run_cli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=ROOT, check=True,
                          capture_output=True, text=True, timeout=60).stdout


@pytest.mark.slow
def test_trace_shows_an_orders_five_services_in_causal_order(sandbox: SandboxProcess) -> None:
    with urllib.request.urlopen(f"{sandbox.url}/prod/order", timeout=60) as answer:
        order_id = json.load(answer)["ID"]
    wait_for(lambda: sandbox_journey(sandbox.url, order_id)["status"] == "complete", 60,
             f"order {order_id}'s journey to complete")

    output = run_cli("trace", order_id, "--port", str(sandbox.port))

    listed = services_section(output)
    names = [name for name, _ in listed]
    assert sorted(names) == sorted(SERVICES)
    assert names[0] == "OrderService"
    assert names.index("FulfilmentService") < names.index("LogisticService")
    assert all(re.fullmatch(OFFSET, offset) for _, offset in listed), listed
    offsets = [in_seconds(offset) for _, offset in listed]
    assert offsets[0] == 0 and offsets == sorted(offsets)
    for name in STAMPS:
        assert re.search(rf"^  +{OFFSET}  \w+Service +stamped {name} = ", output, re.M), name
    published = [line for line in output.splitlines() if " published " in line]
    assert [line.split()[2] for line in published] == ["OrderService", "FulfilmentService"]

    [row] = [line for line in run_cli("orders", "--port", str(sandbox.port)).splitlines()
             if line.startswith(order_id)]
    assert row.split()[2:4] == ["5/5", "complete"]
