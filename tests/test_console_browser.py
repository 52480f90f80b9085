"""The console page in a real browser (Playwright driving Debian's Chromium) against the real
app in the sandbox: call the order route from the route form, watch its trace complete live as
a waterfall, find the order in its table and by a search, see a failing event in the failure
queues. The trace is saved as tests/artifacts/trace.png.

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
from sandbox.console.api import Console, api_routes, failure_message, static_file
from sandbox.core.state import Message

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SERVICES = ("OrderService", "InvoiceService", "FulfilmentService", "ForecastingService",
            "LogisticService")
SETTLE_MS = 60_000  # cold starts on a busy 2-core machine; the page is polled every second


# The console's routes and pure parts


def test_every_route_of_every_api_is_offered_with_its_methods_and_parameters() -> None:
    def method(verb: str, path: str) -> Method:
        return Method(verb, path, "r", "arn:aws:lambda:us-east-1:0:function:f", "AWS_PROXY")

    api = RestApi("id", "shop", "prod", "d", [
        method("GET", "/order"), method("POST", "/order/{id}/{proxy+}"), method("ANY", "/x")])
    assert api_routes([api]) == [
        {"api": "shop", "methods": ["GET"], "path": "/prod/order", "parameters": []},
        {"api": "shop", "methods": ["POST"], "path": "/prod/order/{id}/{proxy+}",
         "parameters": ["id", "proxy+"]},
        {"api": "shop", "methods": ["GET", "POST", "PUT", "PATCH", "DELETE"], "path": "/prod/x",
         "parameters": []}]


def test_the_console_serves_its_own_files_and_nothing_else() -> None:
    status, headers, body = static_file("")
    assert status == 200 and b"<title>Sandbox console</title>" in body
    assert ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:") in headers
    for name in ("../sandbox.py", "../../pyproject.toml", "app.js/../../console.py"):
        assert static_file(name)[0] == 404
    console = Console(None, None, None, [], {}, {}, {}, [], "t")  # type: ignore[arg-type]
    assert console.handle("POST", "/console/api/traces", b"")[0] == 405
    assert console.handle("GET", "/console", b"")[:2] == (302, [("Location", "/console/")])
    status, _, body = console.handle("GET", "/console/api/traces?since=x", b"")
    assert (status, json.loads(body)) == (400, {"message": "since must be a cursor (a number): x"})
    assert console.handle("GET", "/console/api/resource?type=disk&name=x", b"")[0] == 400
    assert console.handle("GET", "/console/api/nothing", b"")[0] == 404


def test_a_failure_message_names_its_reason_and_event() -> None:
    event = {"id": "e-1", "detail-type": "order_created", "source": "order_service",
             "detail": {"data": {"ID": "order-1"}}}
    record = {"requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
              "requestPayload": event,
              "responsePayload": {"errorType": "Boom", "errorMessage": "no"}}
    shown = failure_message(Message("m-1", "arn:q", json.dumps(record), {}, 0.0), "q")
    assert shown["reason"] == "RetriesExhausted: Boom: no"
    assert shown["event"] == {"id": "e-1", "detail_type": "order_created",
                              "source": "order_service"}
    assert (shown["source"], shown["attempts"]) == ("lambda", 3)

    attributes = {"ERROR_CODE": "ThrottlingException", "ERROR_MESSAGE": "Rate exceeded",
                  "RETRY_ATTEMPTS": "2"}
    shown = failure_message(Message("m-2", "arn:q", json.dumps(event), attributes, 0.0), "q")
    assert (shown["source"], shown["attempts"]) == ("eventbridge", 3)
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
    from playwright.sync_api import expect
    expect.set_options(timeout=SETTLE_MS)
    opened = OpenConsole(page, f"{sandbox.url}/console/")
    page.on("request", lambda request: opened.requested.append(request.url))
    page.goto(opened.url)
    yield opened
    context.close()


@pytest.mark.slow
def test_call_the_route_and_watch_the_orders_trace_complete(console: OpenConsole,
                                                           sandbox: SandboxProcess) -> None:
    from playwright.sync_api import expect

    page = console.page
    page.evaluate("window.sameDocument = true")  # gone if anything reloads the page
    expect(page.locator("#call-route")).to_have_value("0")
    page.locator("#call").get_by_role("button", name="Send").click()
    answer = page.locator("#answer")
    expect(answer).to_contain_text('"status": "order_created"')
    found = re.search(r'"ID": "([^"]+)"', answer.inner_text())
    assert found, answer.inner_text()
    order_id = found.group(1)

    answer.get_by_role("button", name="Show its trace").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Trace 1-"))).to_be_visible()
    spans = page.locator("#waterfall tbody tr")
    logistic_run = spans.filter(has_text="LogisticService invoke")
    expect(logistic_run).to_have_count(1)  # the page follows the trace live
    for name in SERVICES:
        expect(spans.filter(has_text=f"{name} invoke").first).to_be_visible()
    texts = spans.all_inner_texts()
    first = [next(i for i, text in enumerate(texts) if f"{name} invoke" in text)
             for name in SERVICES]
    assert first[0] < first[2] < first[4]  # order, then fulfilment, then logistic
    depths = [int(d) for d in spans.evaluate_all("rows => rows.map(r => r.dataset.depth)")]
    assert depths[0] == 0 and depths[first[0]] == 1  # the API request, then its function
    assert any("fulfilment_completed put" in t for t in texts)
    assert page.evaluate("window.sameDocument") is True

    logistic_run.get_by_text("Log lines").click()
    expect(logistic_run.locator("pre")).to_contain_text("REPORT RequestId:")
    expect(logistic_run.locator("pre")).to_contain_text(order_id)
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#trace").screenshot(path=ARTIFACTS / "trace.png")

    page.get_by_role("tab", name="Resources").click()
    page.locator("#resource-list button[data-type=table]").first.click()
    expect(page.locator("#resource-rows tbody tr", has_text=order_id)).to_have_count(1)

    page.get_by_label("Search by any value").fill(order_id)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#search-what")).to_contain_text("1 trace found")
    expect(page.locator("#traces tbody tr")).to_have_count(1)
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
        expect(message).to_contain_text("3 attempts")
    headings = page.locator(".queue", has=messages).locator("h3").all_inner_texts()
    for service in ("InvoiceService", "FulfilmentService", "ForecastingService"):
        assert any(f"{service}OnFailureQueue" in heading for heading in headings), headings


@pytest.mark.slow
def test_the_page_polls_a_cursor_that_answers_only_what_changed(
        sandbox: SandboxProcess) -> None:
    def api(path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{sandbox.url}/console/api/{path}", timeout=30) as answer:
            return json.load(answer)

    before = api("traces")["cursor"]
    with urllib.request.urlopen(f"{sandbox.url}/prod/order", timeout=60) as answer:
        order_id = json.load(answer)["ID"]
        trace_id = answer.headers["X-Amzn-Trace-Id"].removeprefix("Root=")

    changed = api(f"traces?since={before}")
    assert trace_id in [t["trace_id"] for t in changed["traces"]]
    assert [t["trace_id"] for t in api(f"search?q={order_id}")["traces"]] == [trace_id]

    def quiet() -> dict[str, Any] | None:
        cursor = api("traces")["cursor"]
        answer = api(f"traces?since={cursor}")
        return answer if not answer["traces"] else None

    answer = wait_for(quiet, 30, "a moment with nothing new in the sandbox")
    assert answer == {"cursor": answer["cursor"], "traces": []}
