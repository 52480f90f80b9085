"""`make bench ARGS="--history N"` on a tiny size, so it cannot rot: the scenario runs end to
end on the real synthesized app, fills the history up to N orders and writes every figure. No
timing is asserted: a test run on a shared machine says nothing about speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sandbox_process import ROOT

from bench import history
from bench.history import FRESH, Template, copy_of

FIGURES = ("trace_read_ms", "refresh_ms", "first_load_ms", "cli_trace_ms", "rss_mb", "state_mb")


@pytest.mark.slow
def test_a_tiny_history_bench_fills_to_n_orders_and_writes_every_figure(
        synthesized_app: Any, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--assembly", str(synthesized_app.assembly_dir),
         "--results", str(tmp_path), "--history", "400", "--users", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    (result,) = tmp_path.glob("history-*.json")
    figures = json.loads(result.read_text())["history"]
    for name in FIGURES:
        assert figures[name]["at_300"] > 0 and figures[name]["at_n"] > 0, name
    for name in history.GOALS:
        assert isinstance(figures[name]["met"], bool), name
    assert figures["orders"]["at_300"] >= history.TEMPLATE_ORDERS
    assert figures["orders"]["at_n"] == 400  # one root span per order, real or copied
    assert figures["fill"]["copied_orders"] > 0
    assert figures["fill"]["copy_search_hits"] == 1
    assert "one order's trace: api/search + api/trace, p50" in run.stdout


def test_an_n_not_above_the_real_orders_is_refused(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "bench", "--history", "300"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "--history" in run.stderr


# A copy, without a sandbox

ORDER = "619e6162-02ee-4dea-b55b-71fbba7c18cf"
EVENT = "18a81bdc-bf56-4013-847d-5fd820a5a79e"
TRACE = "1-6b0b9e9b-ad61aea26ee962b98365473d"


def template() -> Template:
    event = {"bus": "OrderBus", "event": {"id": EVENT, "detail": {"data": {"ID": ORDER}}},
             "rules": ["order_created"]}
    run = {"request_id": "30965689-ffb5-43ad-a5db-4dddcb6d8481", "function": "OrderService",
           "started": 1000.01, "duration_ms": 5.0, "memory_mb": 256}
    rows = [(1000.05, "api", json.dumps({"request_id": "343eae5f-c9c4-470a-a00e-b7440068d205"}),
             TRACE, "3e0f3b1168c61a0d", None, 1000.0, "OrderApi"),
            (1000.03, "invocation", json.dumps(run), TRACE, "a36942be0b279f3f",
             "3e0f3b1168c61a0d", 1000.01, "OrderService"),
            (1000.02, "event", json.dumps(event), TRACE, "91d2ca9ff9a18979", "a36942be0b279f3f",
             1000.02, "OrderBus")]
    lines = [("Logs", "2026/11/29/[$LATEST]18d9eade", 1000010,
              "START RequestId: 30965689-ffb5-43ad-a5db-4dddcb6d8481 Version: $LATEST",
              "30965689-ffb5-43ad-a5db-4dddcb6d8481")]
    return Template(ORDER, rows, lines)


def test_a_copy_has_fresh_ids_kept_consistent_and_its_times_shifted() -> None:
    copy = copy_of(template(), 60.0)
    api, invocation, event = copy.rows
    assert copy.order_id != ORDER
    assert api[3] == invocation[3] == event[3] != TRACE  # one trace, a new one
    assert api[5] is None and invocation[5] == api[4] and event[5] == invocation[4]
    assert {api[4], invocation[4], event[4]}.isdisjoint(
        {"3e0f3b1168c61a0d", "a36942be0b279f3f", "91d2ca9ff9a18979"})
    put = json.loads(event[2])["event"]
    assert put["detail"]["data"]["ID"] == copy.order_id and put["id"] != EVENT
    assert (api[0], api[6]) == (pytest.approx(1060.05), pytest.approx(1060.0))
    assert json.loads(invocation[2])["started"] == pytest.approx(1060.01)
    assert json.loads(invocation[2])["memory_mb"] == 256  # not a time
    request_id = json.loads(invocation[2])["request_id"]
    assert copy.lines == [("Logs", "2026/11/29/[$LATEST]18d9eade", 1060010,
                           f"START RequestId: {request_id} Version: $LATEST", request_id)]


def test_two_copies_share_no_id() -> None:
    first, second = copy_of(template(), 1.0), copy_of(template(), 2.0)
    assert first.order_id != second.order_id
    assert first.rows[0][3] != second.rows[0][3]
    ids = [set(FRESH.findall(json.dumps(copy.rows))) for copy in (first, second)]
    assert ids[0] and not ids[0] & ids[1]
