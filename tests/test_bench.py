"""`make bench` on a tiny size, so it cannot rot: it runs end to end on the real synthesized app
and writes every figure the issue names. No timing is asserted: a test run on a shared machine
says nothing about speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sandbox_process import ROOT

from bench import analysis, trace_cost
from bench.analysis import percentile
from bench.assembly import TWIN_STAGE, twin_template
from bench.orders import Order
from sandbox.core.history import ApiRequest, EventPut, InvocationRun
from sandbox.core.state import State

REQUIRED = ("e2e_p50_ms", "e2e_p99_ms", "floor_ms", "throughput_orders_s", "ceiling_orders_s",
            "warm_ratio", "orders_lost")
TINY = ("--orders", "2", "--users", "2", "--seconds", "1", "--warm-up", "0.5",
        "--floor-clients", "2", "--floor-seconds", "0.5")


@pytest.mark.slow
def test_a_tiny_bench_writes_every_figure_and_loses_no_order(synthesized_app: Any,
                                                             tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--assembly", str(synthesized_app.assembly_dir),
         "--results", str(tmp_path), *TINY],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    (result,) = tmp_path.glob("*.json")
    figures = json.loads(result.read_text())
    for key in REQUIRED:
        assert isinstance(figures[key], int | float) and not isinstance(figures[key], bool), key
    assert figures["orders_lost"] == 0
    assert figures["orders"]["made"] >= 2 * 2  # at least the one-at-a-time orders of each stack
    assert figures["orders"]["not_accepted"] == 0
    assert "end to end, one at a time: p50" in run.stdout
    assert figures["traces"]["orders"] >= 4 and figures["traces"]["rows"] >= 4 * 12
    assert isinstance(figures["traces"]["added_ms_per_order"], float)
    assert figures["floor"]["update_item_through_endpoint_ms"]["p50"] > 0
    assert figures["floor"]["update_item_fan_out_ms"]["n"] == 3 * 2  # three a sample
    assert figures["floor"]["put_events_after_idle_ms"]["n"] == 2  # one a sample
    assert "after 30 ms idle" in run.stdout
    assert (tmp_path / result.name.replace(".json", ".svg")).read_text().startswith("<svg")


def test_the_trace_cost_replays_each_transaction_of_the_history_as_it_was(
        tmp_path: Path) -> None:
    state = State(tmp_path / "sandbox.db")
    for n in range(3):  # three orders: each an API request, then two events in one commit
        state.add(history=[ApiRequest(f"r-{n}", "OrderApi", "prod", "GET", "/order", 200, 0.0)])
        state.add(history=[EventPut("bus", {"id": f"e-{n}", "detail": {"ID": f"o-{n}"}}, []),
                           EventPut("bus", {"id": f"f-{n}", "detail": {"ID": f"o-{n}"}}, [])])
    state.close()
    figures = trace_cost.cost(tmp_path / "sandbox.db")
    assert (figures["orders"], figures["rows"], figures["transactions"]) == (3, 9, 6)
    assert all(isinstance(figures[k], float) for k in (
        "plain_ms_per_order", "traced_ms_per_order", "added_ms_per_order",
        "values_indexed_behind_ms_per_order"))


def test_a_missing_assembly_says_to_synthesize_first(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "bench", "--assembly", str(tmp_path / "nope")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "make synth" in run.stderr


# The figures' arithmetic, without a sandbox.


def run(function: str, service: str, delivered: float, duration_ms: float, event_id: str,
        ok: bool = True, attempt: int = 1) -> InvocationRun:
    return InvocationRun(request_id=f"{function}-{attempt}", function=function, service=service,
                         ok=ok, started=delivered, delivered=delivered, duration_ms=duration_ms,
                         init_duration_ms=None, max_memory_mb=0, memory_mb=128,
                         event_id=event_id, attempt=attempt)


def traced_order() -> Order:
    """One order: sent at 100.000, the order service STARTs at 100.001 and its event is
    accepted at 100.010; fulfilment runs 100.012-100.030 and its event is accepted at 100.025;
    logistic runs 100.027-100.037; invoice ends last of all at 100.040."""
    order = Order("prod", "single", sent=100.0, answered=100.02, status=200, order_id="o1",
                  api_request_id="r1")
    order.api = InvocationRun(request_id="r1", function="order", service="OrderService",
                              ok=True, started=100.0005, delivered=100.001, duration_ms=15.0,
                              init_duration_ms=None, max_memory_mb=0, memory_mb=128,
                              trigger="api", api_request_id="r1", received=100.0005)
    order.events = [{"id": "e1", "at": 100.010, "detail-type": "order_created"},
                    {"id": "e2", "at": 100.025, "detail-type": "fulfilment_completed"}]
    order.invocations = [
        run("fulfilment", "FulfilmentService", 100.012, 18.0, "e1"),
        run("forecasting", "ForecastingService", 100.013, 5.0, "e1"),
        run("invoice", "InvoiceService", 100.030, 10.0, "e1"),
        run("logistic", "LogisticService", 100.027, 10.0, "e2"),
        # A redelivery that ran later: the first stamp won, so it does not end the order.
        run("logistic", "LogisticService", 100.500, 10.0, "e2", attempt=2),
    ]
    return order


def test_the_critical_path_adds_up_to_the_end_to_end_time() -> None:
    order = traced_order()
    assert analysis.e2e_ms(order) == pytest.approx(40.0)
    path = analysis.critical_path(order)
    assert path is not None
    assert sum(path.values()) == pytest.approx(40.0)
    assert path["order_created accepted, to fulfilment START"] == pytest.approx(2.0)
    assert path["logistic end, to the last stamp stored"] == pytest.approx(3.0)
    parts = analysis.split([path], floor_ms=20.0)
    assert parts["sandbox_hops_ms"] == pytest.approx(1.0 + 2.0 + 2.0)
    assert parts["function_runs_ms"] == pytest.approx(35.0)
    assert parts["function_runs_over_floor_ms"] == pytest.approx(15.0)


def test_hops_count_first_attempts_only() -> None:
    hops = analysis.hops([traced_order()])
    assert hops["api_gateway"] == [pytest.approx(0.5)]
    assert sorted(hops["put_events_to_start"]) == pytest.approx([2.0, 2.0, 3.0, 20.0])


def test_an_order_missing_a_step_has_no_end_to_end_time() -> None:
    order = traced_order()
    order.invocations = [r for r in order.invocations if r.function != "invoice"]
    assert analysis.e2e_ms(order) is None


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile(range(101), 99) == 99
    assert percentile([], 50) is None


def test_what_a_way_of_calling_adds_is_its_median_over_the_floors_call() -> None:
    assert analysis.added_p50([5.0, 9.0, 6.0], 4.5) == 1.5
    assert analysis.added_p50([3.0], 4.125) == -1.12  # faster: a negative figure, rounded


def test_the_workshop_twin_lives_beside_the_original(synthesized_app: Any) -> None:
    template, assets = twin_template(synthesized_app.template, "OrderChoreographyWorkshop")
    resources = template["Resources"]
    original = synthesized_app.template["Resources"]
    assert sorted(assets.values()) == ["forecasting-service", "fulfilment-service",
                                       "invoice-service", "logistic-service", "order-service"]
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Events::EventBus":
            assert resource["Properties"]["Name"] != original[logical_id]["Properties"]["Name"]
        if resource["Type"] == "AWS::ApiGateway::Stage":
            assert resource["Properties"]["StageName"] == TWIN_STAGE
        if resource["Type"] == "AWS::Events::Rule":  # the same choreography
            assert resource == original[logical_id]
