"""The console on an app unlike ours (tests/console_app: hotel stays, two buses, two tables with
partition and sort keys), in a real browser: the route form books two stays of one hotel, each
request's trace crosses both buses, and each item shows under its full key. The trace and the
table are saved as tests/artifacts/console_app_trace.png and console_app.png."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_process import SandboxProcess
from test_console_browser import ARTIFACTS, SETTLE_MS, browser  # noqa: F401

STAYS = (("2026-05-01", "ann"), ("2026-05-02", "bob"))
CHAIN = ["POST /stays/abc", "Booker invoke", "stay.booked put", "Auditor invoke",
         "stay.audited put", "Bookkeeper invoke"]


@pytest.fixture(scope="module")
def hotels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    import aws_cdk as cdk
    from console_app.app import build

    assembly: Path = tmp_path_factory.mktemp("hotels.out")
    app = cdk.App(context={"aws:cdk:enable-asset-metadata": True,
                           "aws:cdk:enable-path-metadata": True}, outdir=str(assembly))
    build(app)
    app.synth()
    with SandboxProcess(assembly, tmp_path_factory.mktemp("hotels-state")) as running:
        yield running


@pytest.mark.slow
def test_an_app_unlike_ours_shows_each_requests_trace_and_each_item_under_its_full_key(
        browser: Any, hotels: SandboxProcess) -> None:  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=SETTLE_MS)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(SETTLE_MS)
    page.goto(f"{hotels.url}/console/")

    expect(page.locator("#call-route option")).to_have_text(["POST /prod/stays/{hotel}"])
    answer = page.locator("#answer")
    for night, guest in STAYS:
        page.get_by_label("hotel", exact=True).fill("abc")
        page.locator("#call-body").fill(json.dumps({"night": night, "guest": guest}))
        page.locator("#call").get_by_role("button", name="Send").click()
        expect(answer).to_contain_text(f'"night": "{night}"')
        expect(answer.locator(".code")).to_have_text("201")

    rows = page.locator("#traces tbody tr", has_text="POST /stays/abc")
    expect(rows).to_have_count(len(STAYS))  # each request is its own trace
    answer.get_by_role("button", name="Show its trace").click()
    spans = page.locator("#waterfall tbody tr")
    expect(spans.filter(has_text="Bookkeeper invoke")).to_have_count(1)  # through both buses
    names = spans.locator(".span-name > span:first-child").all_text_contents()
    depths = [int(d) for d in spans.evaluate_all("rows => rows.map(r => r.dataset.depth)")]
    chain = [(names.index(name), depths[names.index(name)]) for name in CHAIN]
    assert chain == sorted(chain) and [d for _, d in chain] == sorted({d for _, d in chain})
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#trace").screenshot(path=ARTIFACTS / "console_app_trace.png")

    page.get_by_role("tab", name="Resources").click()
    page.locator("#resource-list").get_by_role("button", name="Stays").click()
    table = page.locator("#resource-rows")
    expect(table.locator("th")).to_have_text(["hotel", "night", "Attributes", ""])
    expect(table.locator("tbody tr")).to_have_count(len(STAYS))
    keys = [row[:2] for row in table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.innerText))")]
    assert sorted(keys) == [["abc", night] for night, _ in STAYS]
    page.screenshot(path=ARTIFACTS / "console_app.png")

    page.locator("#resource-list").get_by_role("button", name="Ledger", exact=True).click()
    expect(table.locator("th").first).to_have_text("guest")
    expect(table.locator("tbody tr", has_text="abc#2026-05-02")).to_contain_text("bob")

    page.locator("#resource-list").get_by_role("button", name="Audit", exact=True).click()
    expect(table.locator("tbody tr", has_text="stay.audited")).to_have_count(len(STAYS))
    context.close()
