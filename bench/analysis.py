"""From traced orders to figures: pure functions, no I/O, so they are checked without a sandbox.

Every time here is `time.time()` on the one machine: the client's, the sandbox's and the
functions' clocks are the same clock.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from bench.orders import DOWNSTREAM_FUNCTIONS, Order
from sandbox.core.history import InvocationRun

# The critical path of one order, as consecutive segments: their sum is the end-to-end time.
SEGMENTS = (
    "request in, to order-service START",
    "order-service START, to order_created accepted",
    "order_created accepted, to fulfilment START",
    "fulfilment START, to fulfilment_completed accepted",
    "fulfilment_completed accepted, to logistic START",
    "logistic run",
    "logistic end, to the last stamp stored",
)

# Of those, the sandbox's own: API Gateway, and EventBridge with Lambda's asynchronous invoke.
HOPS = (SEGMENTS[0], SEGMENTS[2], SEGMENTS[4])


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100), interpolated between the two nearest ranks."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Iterable[float]) -> dict[str, float | int | None]:
    values = list(values)
    return {"n": len(values), "p50": rounded(percentile(values, 50)),
            "p99": rounded(percentile(values, 99)),
            "max": rounded(max(values)) if values else None}


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def added_p50(samples: Iterable[float], base_ms: float) -> float | None:
    """How much longer the median of `samples` is than `base_ms`, rounded: what a call made
    another way (through the endpoint, in the fan-out, after a pause) adds to the floor's."""
    return rounded((percentile(samples, 50) or 0.0) - base_ms)


def end_of(record: InvocationRun) -> float:
    """When a function's run ended (its answer reached the runtime API)."""
    assert record.delivered is not None
    return record.delivered + record.duration_ms / 1000


def first_runs(order: Order) -> dict[str, InvocationRun]:
    """Each downstream function's first successful run for the order: the first stamp wins, so
    a redelivery stores nothing new."""
    firsts: dict[str, InvocationRun] = {}
    for record in order.invocations:
        if record.ok and record.delivered is not None:
            known = firsts.get(record.function)
            if known is None or end_of(record) < end_of(known):
                firsts[record.function] = record
    return firsts


def completed_at(order: Order) -> float | None:
    """When the last of the order's stamps was stored, or None if it never was."""
    runs = first_runs(order)
    if len(runs) < DOWNSTREAM_FUNCTIONS:
        return None
    return max(end_of(record) for record in runs.values())


def e2e_ms(order: Order) -> float | None:
    done = completed_at(order)
    return None if done is None else (done - order.sent) * 1000


def critical_path(order: Order) -> dict[str, float] | None:
    """The order's end-to-end time cut into SEGMENTS (milliseconds), or None when a piece of
    its trace is missing."""
    done = completed_at(order)
    api = order.api
    if done is None or api is None or api.delivered is None:
        return None
    accepted = {}
    for event in order.events:
        accepted.setdefault(event["detail-type"], event["at"])
    runs = {record.service.removeprefix("Workshop"): record
            for record in first_runs(order).values()}
    fulfilment, logistic = runs.get("FulfilmentService"), runs.get("LogisticService")
    if fulfilment is None or logistic is None or len(accepted) < 2:
        return None
    times = [order.sent, api.delivered, accepted["order_created"], fulfilment.delivered,
             accepted["fulfilment_completed"], logistic.delivered, end_of(logistic), done]
    return {name: (end - start) * 1000
            for name, start, end in zip(SEGMENTS, times[:-1], times[1:], strict=True)}


def hops(orders: list[Order]) -> dict[str, list[float]]:
    """The sandbox's own hops, in milliseconds: API Gateway (request in to the handler's START)
    and EventBridge plus Lambda's asynchronous invoke (PutEvents accepted to the target's
    START), the latter on first attempts only (a retry waits on purpose)."""
    found: dict[str, list[float]] = {"api_gateway": [], "put_events_to_start": []}
    for order in orders:
        api = order.api
        if api is not None and api.delivered and api.received:
            found["api_gateway"].append((api.delivered - api.received) * 1000)
        accepted = {event["id"]: event["at"] for event in order.events}
        for record in order.invocations:
            if record.attempt == 1 and record.delivered and \
                    (record.event_id or "") in accepted:
                found["put_events_to_start"].append(
                    (record.delivered - accepted[record.event_id or ""]) * 1000)
    return found


def functions(orders: list[Order]) -> dict[str, dict[str, list[float]]]:
    """Per function (by its label): warm durations and cold init durations, in milliseconds,
    as its REPORT lines give them."""
    found: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"warm": [], "init": []})
    for order in orders:
        records = [order.api] if order.api is not None else []
        for record in records + order.invocations:
            if not record.ok:
                continue
            figures = found[record.service]
            if record.init_duration_ms is None:
                figures["warm"].append(record.duration_ms)
            else:
                figures["init"].append(record.init_duration_ms)
    return dict(found)


def throughput(orders: list[Order], start: float, end: float) -> float:
    """Orders completed per second within [start, end]."""
    done = [completed_at(order) for order in orders]
    return sum(1 for at in done if at is not None and start <= at <= end) / (end - start)


def warm_comparison(ours: dict[str, dict[str, list[float]]],
                    theirs: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """Warm duration p50 per service, ours beside the workshop style's (labelled
    'Workshop<Service>'), and the ratio of their sums: one order's handler time in all."""
    services = {}
    for label, figures in sorted(ours.items()):
        twin = theirs.get("Workshop" + label)
        mine = percentile(figures["warm"], 50)
        other = percentile(twin["warm"], 50) if twin else None
        services[label] = {"ours_ms": rounded(mine), "workshop_ms": rounded(other),
                           "ratio": rounded(mine / other, 3) if mine and other else None}
    complete = [s for s in services.values() if s["ratio"] is not None]
    total_ours = sum(s["ours_ms"] for s in complete)
    total_theirs = sum(s["workshop_ms"] for s in complete)
    return {"services": services, "ours_ms": rounded(total_ours),
            "workshop_ms": rounded(total_theirs),
            "ratio": rounded(total_ours / total_theirs, 3) if complete else None}


def split(paths: list[dict[str, float]], floor_ms: float) -> dict[str, float | None]:
    """Where one order's time goes, in medians over the orders: the sandbox's hops, and the
    functions' runs (the database writes and PutEvents calls the floor counts, plus whatever
    the floor does not: writes queueing behind each other in DynamoDB Local, the runtime)."""
    hops = percentile([sum(path[name] for name in HOPS) for path in paths], 50)
    runs = percentile([sum(ms for name, ms in path.items() if name not in HOPS)
                       for path in paths], 50)
    return {"sandbox_hops_ms": rounded(hops), "function_runs_ms": rounded(runs),
            "function_runs_over_floor_ms": rounded(None if runs is None else runs - floor_ms)}
