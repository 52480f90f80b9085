"""`python -m bench --stack NAME`: the deployed bench's mechanics, against moto's server.

moto cannot run the stack's functions, so the deployed app is faked here, in the test only: a
stack holding an order table and outputs whose `OrderUrl` points at a small HTTP server on
127.0.0.1 that acts as the order service and the four services behind it at once (on each GET it
answers an `ID` and, a moment later on another thread, writes the item's five stamps into moto's
table). No timing is asserted: only what the bench counts, stops on and writes.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from moto_server import REGION, MotoServer, moto_server

from bench import deployed
from bench.orders import STAMPS
from bench.run import main

pytestmark = pytest.mark.slow

STAMP_DELAY_S = 0.08  # the services' work, so the bench polls more than once


class FakeOrderApp:
    """The deployed app as the bench sees it: the order URL and the table's items."""

    def __init__(self, aws: MotoServer, table: str) -> None:
        self.dynamodb = aws.client("dynamodb")
        self.table = table
        self.status = 200
        self.incomplete: set[int] = set()  # the nth orders (from 1) left without their last stamp
        self.ids: list[str] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/prod/order"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def order(self) -> tuple[int, dict[str, str]]:
        if self.status != 200:
            return self.status, {"status": "order_creation_failed"}
        order_id = str(uuid.uuid4())
        with self._lock:
            self.ids.append(order_id)
            nth = len(self.ids)
        stamps = STAMPS[:-1] if nth in self.incomplete else STAMPS
        threading.Timer(STAMP_DELAY_S, self._stamp, (order_id, stamps)).start()
        return 200, {"status": "order_created", "ID": order_id}

    def _stamp(self, order_id: str, stamps: tuple[str, ...]) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.dynamodb.put_item(TableName=self.table, Item={
            "ID": {"S": order_id}, **{name: {"S": now} for name in stamps}})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # kept alive, as API Gateway keeps it

            def do_GET(self) -> None:
                status, body = app.order()
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture
def environment(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials for moto, and nothing of the user's that could reach a real account."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint_url)


def deploy(aws: MotoServer, outputs: dict[str, Any], name: str | None = None) -> str:
    """A stack with an order table (named `<stack>-orders`) and `outputs`: its name."""
    name = name or new_stack_name()
    template = {
        "Resources": {"OrderTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "TableName": f"{name}-orders",
            "KeySchema": [{"AttributeName": "ID", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "ID", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    aws.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


def new_stack_name() -> str:
    return f"Orders{uuid.uuid4().hex[:8]}"


@pytest.fixture
def app(aws: MotoServer, environment: None) -> Iterator[tuple[str, FakeOrderApp]]:
    """The stack's name and its fake app, whose order URL the stack's outputs name."""
    name = new_stack_name()
    fake = FakeOrderApp(aws, f"{name}-orders")
    try:
        deploy(aws, {"OrderUrl": fake.url, "TableName": {"Ref": "OrderTable"}}, name)
        yield name, fake
    finally:
        fake.close()


def bench(stack: str, results: Path, *options: str) -> tuple[int, dict[str, Any] | None]:
    """Runs `python -m bench --stack ...` in process: its exit code and the JSON it wrote."""
    code = main(["--stack", stack, "--results", str(results), "--order-timeout", "1", *options])
    written = sorted(results.glob("deployed-*.json"))
    return code, json.loads(written[-1].read_text()) if written else None


def test_it_measures_orders_end_to_end_and_writes_the_figures(
        app: tuple[str, FakeOrderApp], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack, fake = app

    code, figures = bench(stack, tmp_path, "--orders", "3", "--users", "2", "--seconds", "1")

    assert code == 0
    assert figures is not None
    assert figures["stack"] == stack and figures["region"] == REGION
    assert figures["table"] == fake.table
    assert figures["sizes"] == {"orders": 3, "users": 2, "seconds": 1.0, "max_orders": 500,
                                "order_timeout_s": 1.0}
    assert figures["orders_lost"] == 0 and figures["stopped"] is None
    assert figures["e2e"]["polled_ms"]["n"] == 3 and figures["e2e"]["stamps_ms"]["n"] == 3
    assert figures["e2e_p50_ms"] is not None and figures["e2e_p99_ms"] is not None
    assert figures["throughput_orders_s"] > 0
    assert figures["orders"]["made"] == len(fake.ids) == 3 + figures["throughput"]["orders_made"]
    table = capsys.readouterr().out
    assert f"stack {stack} in {REGION}" in table and "throughput, 2 in flight" in table


def test_the_cap_stops_the_throughput_phase(app: tuple[str, FakeOrderApp],
                                            tmp_path: Path) -> None:
    stack, fake = app

    # A window far longer than the cap allows: the cap, not the clock, ends it.
    code, figures = bench(stack, tmp_path, "--orders", "2", "--users", "2", "--seconds", "600",
                          "--max-orders", "5")

    assert code == 0
    assert figures is not None
    assert len(fake.ids) == figures["orders"]["made"] == 5
    assert figures["throughput"]["orders_made"] == 3
    assert figures["stopped"] == "the cap: 5 orders made (--max-orders)"
    assert figures["orders_lost"] == 0


def test_an_order_that_never_gets_its_five_stamps_is_lost(app: tuple[str, FakeOrderApp],
                                                          tmp_path: Path) -> None:
    stack, fake = app
    fake.incomplete = {2}

    code, figures = bench(stack, tmp_path, "--orders", "3", "--max-orders", "3")

    assert code == 0
    assert figures is not None
    assert figures["orders_lost"] == 1
    assert figures["orders"]["lost_ids"] == [fake.ids[1]]
    assert figures["e2e"]["polled_ms"]["n"] == 2
    assert figures["orders"]["errors"] == ["not complete within 1 s"]


def test_failing_orders_stop_the_bench_and_it_says_why(
        app: tuple[str, FakeOrderApp], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack, fake = app
    fake.status = 500

    code, figures = bench(stack, tmp_path, "--orders", "50")

    assert code == 1
    assert figures is not None
    assert figures["orders"]["made"] == figures["orders"]["not_accepted"] == deployed.FAILED_FLOOR
    assert figures["stopped"].startswith(f"too many failures: {deployed.FAILED_FLOOR} of "
                                         f"{deployed.FAILED_FLOOR} orders (last: HTTP 500")
    assert figures["orders_lost"] == 0  # never accepted, so never lost
    assert "stopped early: too many failures" in capsys.readouterr().out


@pytest.mark.parametrize(("outputs", "stack", "message"), [
    ({"TableName": {"Ref": "OrderTable"}}, "Elsewhere",
     "stack Elsewhere: Stack with id Elsewhere does not exist"),
    ({"TableName": {"Ref": "OrderTable"}}, None,
     "stack {stack} has no output OrderUrl (outputs: TableName): is it the order choreography "
     "stack?"),
    ({"OrderUrl": "http://127.0.0.1:9/prod/order"}, None,
     "stack {stack} has no output naming a DynamoDB table that exists (outputs: OrderUrl): "
     "name the table with --table"),
], ids=["no-stack", "no-order-url", "no-table"])
def test_a_missing_stack_or_output_exits_2_with_one_line_naming_it(
        aws: MotoServer, environment: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        outputs: dict[str, Any], stack: str | None, message: str) -> None:
    name = deploy(aws, outputs)

    code, figures = bench(stack or name, tmp_path)

    assert code == 2 and figures is None
    assert capsys.readouterr().err == f"bench: {message.format(stack=name)}\n"


@pytest.mark.parametrize(("unset", "message"), [
    (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
     "no AWS credentials found: name a profile with --profile (or sign in: `aws sso login` / "
     "`aws configure`)"),
    (("AWS_DEFAULT_REGION",), "no AWS region: name one with --region (or in the profile's "
     "config)"),
], ids=["no-credentials", "no-region"])
def test_without_credentials_or_region_it_says_which_option_gives_them(
        environment: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, unset: tuple[str, ...], message: str) -> None:
    for name in unset:
        monkeypatch.delenv(name)

    assert bench("OrderChoreography", tmp_path) == (2, None)
    assert capsys.readouterr().err == f"bench: {message}\n"


def test_the_fifth_stamp_is_the_latest_of_the_five_and_none_while_one_is_missing() -> None:
    item = {name: {"S": f"2026-11-24T14:27:3{i}.125Z"} for i, name in enumerate(STAMPS)}
    assert deployed.stamped_at(item) == datetime(2026, 11, 24, 14, 27, 34, 125000,
                                                 tzinfo=UTC).timestamp()
    del item[STAMPS[2]]
    assert deployed.stamped_at(item) is None
