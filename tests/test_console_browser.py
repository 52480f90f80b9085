"""The console page in a real browser (Playwright driving Debian's Chromium) against the real
app in the sandbox: create an order, watch it complete live, read its journey, see a failing
event in the failure queues. The journey view is saved as tests/artifacts/journey.png.

A few checks of the console's routes and pure parts come first; they need no browser.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sandbox_process import ROOT, SandboxProcess, wait_for

from sandbox.apigateway.rest_api import Method, RestApi
from sandbox.console.api import Console, api_calls, failure_message, static_file
from sandbox.core.state import Message

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SERVICES = ("OrderService", "InvoiceService", "FulfilmentService", "ForecastingService",
            "LogisticService")
STAMPS = ("time_order_service", "time_invoice_service", "time_fulfilment_service",
          "time_forecasting_service", "time_logistic_service")
SETTLE_MS = 60_000  # cold starts on a busy 2-core machine; the page is polled every second


# The console's routes and pure parts


def test_the_one_get_route_without_parameters_becomes_a_create_button() -> None:
    def method(verb: str, path: str) -> Method:
        return Method(verb, path, "r", "arn:aws:lambda:us-east-1:0:function:f", "AWS_PROXY")

    api = RestApi("id", "shop", "prod", "d", [
        method("GET", "/order"), method("POST", "/order"), method("GET", "/order/{id}")])
    assert api_calls([api]) == [{"method": "GET", "path": "/prod/order", "noun": "order",
                                 "label": "Create order"}]
    api.methods.append(method("GET", "/health"))  # not one obvious thing to create any more
    assert [call["label"] for call in api_calls([api])] == [
        "Call GET /prod/order", "Call GET /prod/health"]


def test_the_console_serves_its_own_files_and_nothing_else() -> None:
    status, headers, body = static_file("")
    assert status == 200 and b"<title>Sandbox console</title>" in body
    assert ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:") in headers
    for name in ("../sandbox.py", "../../pyproject.toml", "app.js/../../console.py"):
        assert static_file(name)[0] == 404
    console = Console(None, None, ROOT, [], {}, {}, {}, "t")  # type: ignore[arg-type]
    assert console.handle("POST", "/console/api/overview", b"")[0] == 405
    assert console.handle("GET", "/console", b"")[:2] == (302, [("Location", "/console/")])
    status, _, body = console.handle("GET", "/console/api/overview?since=x", b"")
    assert (status, json.loads(body)) == (400, {"message": "since must be a history id: x"})


def test_a_failure_message_names_its_reason_event_and_order() -> None:
    event = {"id": "e-1", "detail-type": "order_created", "source": "order_service",
             "detail": {"data": {"ID": "order-1"}}}
    record = {"requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
              "requestPayload": event,
              "responsePayload": {"errorType": "Boom", "errorMessage": "no"}}
    shown = failure_message(Message("m-1", "arn:q", json.dumps(record), {}, 0.0), "q",
                            {"order-1": "orders", "order-2": "orders"})
    assert shown["reason"] == "RetriesExhausted: Boom: no"
    assert shown["items"] == [{"table": "orders", "key": "order-1"}]
    assert shown["event"] == {"id": "e-1", "detail_type": "order_created",
                              "source": "order_service"}
    assert (shown["source"], shown["attempts"]) == ("lambda", 3)

    attributes = {"ERROR_CODE": "ThrottlingException", "ERROR_MESSAGE": "Rate exceeded",
                  "RETRY_ATTEMPTS": "2"}
    shown = failure_message(Message("m-2", "arn:q", json.dumps(event), attributes, 0.0), "q", {})
    assert (shown["source"], shown["attempts"], shown["items"]) == ("eventbridge", 3, [])
    assert shown["reason"] == "ThrottlingException: Rate exceeded"


# In the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("install Chromium: apt-get install chromium")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="install Playwright: pip install -r requirements-dev.txt")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def sandbox(assembly: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(assembly, tmp_path_factory.mktemp("state"),
                        extra_args=("--retry-scale", "0.001")) as running:
        yield running


@dataclass
class OpenConsole:
    page: Any
    url: str
    requested: list[str] = field(default_factory=list)


@pytest.fixture
def console(browser: Any, sandbox: SandboxProcess) -> Iterator[OpenConsole]:
    context = browser.new_context(viewport={"width": 1366, "height": 860})
    page = context.new_page()
    page.set_default_timeout(SETTLE_MS)
    opened = OpenConsole(page, f"{sandbox.url}/console/")
    page.on("request", lambda request: opened.requested.append(request.url))
    page.goto(opened.url)
    yield opened
    context.close()


@pytest.mark.slow
def test_create_an_order_and_watch_its_journey_complete(console: OpenConsole,
                                                        sandbox: SandboxProcess) -> None:
    from playwright.sync_api import expect

    page = console.page
    page.evaluate("window.sameDocument = true")  # gone if anything reloads the page
    page.get_by_role("button", name="Create order").click()
    answer = page.locator("#answer")
    expect(answer).to_contain_text('"status": "order_created"')
    found = re.search(r'"ID": "([^"]+)"', answer.inner_text())
    assert found, answer.inner_text()
    order_id = found.group(1)

    journey_button = page.get_by_role("button", name=f"Show the journey of order {order_id}")
    row = page.get_by_role("row").filter(has=journey_button)
    expect(row.locator("td", has_text=re.compile(r"^\+"))).to_have_count(len(STAMPS))
    expect(row).to_contain_text("complete")
    assert page.evaluate("window.sameDocument") is True

    journey_button.click()
    expect(page.get_by_role("heading", name=f"Journey of order {order_id}")).to_be_visible()
    expect(page.locator("#journey-summary")).to_contain_text("complete")
    lanes = page.locator("#timeline .lane-name")
    expect(lanes).to_have_count(len(SERVICES))
    order = lanes.all_text_contents()
    assert sorted(order) == sorted(SERVICES)
    assert order[0] == "OrderService"
    assert order.index("FulfilmentService") < order.index("LogisticService")

    steps = page.locator("#steps tbody tr")
    texts = steps.all_inner_texts()
    stamped = [next(i for i, text in enumerate(texts) if f"stamped {name}" in text)
               for name in STAMPS]
    assert stamped[0] < stamped[2] < stamped[4]  # order, then fulfilment, then logistic
    assert any("published fulfilment_completed" in t and "FulfilmentService" in t for t in texts)

    logistic_run = steps.filter(has_text="LogisticService").filter(has_text="invoked for")
    logistic_run.get_by_text("Log lines and REPORT").click()
    expect(logistic_run.locator("pre")).to_contain_text("REPORT RequestId:")
    expect(logistic_run.locator("pre")).to_contain_text(order_id)

    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#journey").screenshot(path=ARTIFACTS / "journey.png")
    outside = [url for url in console.requested
               if not url.startswith((sandbox.url + "/", "data:"))]
    assert outside == [], "the console must load nothing from outside the sandbox"


@pytest.mark.slow
def test_a_failing_event_shows_in_the_failure_queues(console: OpenConsole,
                                                     sandbox: SandboxProcess) -> None:
    from playwright.sync_api import expect

    page = console.page
    page.get_by_role("tab", name=re.compile("Failure queues")).click()
    events = sandbox.client("events")
    [bus] = [b["Name"] for b in events.list_event_buses()["EventBuses"] if b["Name"] != "default"]
    answer = events.put_events(Entries=[{
        "EventBusName": bus, "Source": "order_service", "DetailType": "order_created",
        "Detail": json.dumps({"metadata": {"service": "demo-eventbridge"}, "data": {}})}])
    event_id = answer["Entries"][0]["EventId"]

    messages = page.locator(".message", has_text=event_id)
    expect(messages).to_have_count(3)  # the three consumers, after Lambda's retries
    for message in messages.all():
        expect(message.locator(".reason")).to_contain_text("RetriesExhausted: BadEvent:")
        expect(message.locator(".reason")).to_contain_text("detail.data.ID")
        expect(message).to_contain_text("none: the message names no order")
        expect(message).to_contain_text("3 attempts")
    headings = page.locator(".queue", has=messages).locator("h3").all_inner_texts()
    for service in ("InvoiceService", "FulfilmentService", "ForecastingService"):
        assert any(f"{service}OnFailureQueue" in heading for heading in headings), headings


@pytest.mark.slow
def test_the_page_polls_a_cursor_that_answers_in_a_few_bytes_while_nothing_happens(
        sandbox: SandboxProcess) -> None:
    def overview(query: str = "") -> dict[str, Any]:
        with urllib.request.urlopen(f"{sandbox.url}/console/api/overview{query}",
                                    timeout=30) as answer:
            return json.load(answer)

    with urllib.request.urlopen(f"{sandbox.url}/prod/order", timeout=60) as answer:
        order_id = json.load(answer)["ID"]

    def quiet() -> dict[str, Any] | None:
        cursor = overview()["cursor"]
        answer = overview(f"?since={cursor}")
        return answer if answer.get("unchanged") else None

    answer = wait_for(quiet, 30, "a moment with nothing new in the sandbox")
    assert answer == {"cursor": answer["cursor"], "unchanged": True}
    everything = overview("?since=0")  # a page that saw nothing yet
    assert order_id in [item["key"] for item in everything["items"]]
