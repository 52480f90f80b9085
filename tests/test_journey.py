"""An item's journey built from the sandbox's history: pure, no server.

The history here is the typed records `State.history()` gives (sandbox/core/history.py), for
orders flowing as the choreography spec says.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.core.history import KINDS, Entry
from sandbox.journey import (
    attribute_logs,
    build_journey,
    failure_reason,
    newest_first,
    plain_item,
    step_names,
    steps_of,
    summary,
    text_timeline,
    values_in_message,
)

T0 = 1_795_532_992.0
BUS = "OrderBus"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
FUNCTIONS = {"OrderService": "Shop-Order1", "InvoiceService": "Shop-Invoice2",
             "FulfilmentService": "Shop-Fulfilment3", "ForecastingService": "Shop-Forecasting4",
             "LogisticService": "Shop-Logistic5"}
RULE_TARGETS = {(BUS, "order_created"): 3, (BUS, "fulfilment_completed"): 1}


def iso(at: float) -> str:
    """A stamp as the services write it."""
    moment = datetime.fromtimestamp(at, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class History:
    """Records as the sandbox writes them, with ids in the order they are written."""

    def __init__(self) -> None:
        self.records: list[Entry] = []

    def add(self, at: float, kind: str, record: dict[str, Any]) -> None:
        self.records.append(Entry(len(self.records) + 1, at, KINDS[kind](**record)))

    def event(self, at: float, detail_type: str, source: str, order_id: str | None,
              rules: list[str]) -> str:
        event_id = str(uuid.uuid4())
        data = {"ID": order_id} if order_id else {}
        self.add(at, "event", {"bus": BUS, "rules": rules, "event": {
            "version": "0", "id": event_id, "detail-type": detail_type, "source": source,
            "account": "000000000000", "time": iso(at)[:19] + "Z", "region": "us-east-1",
            "resources": [], "detail": {"metadata": {"service": "demo"}, "data": data}}})
        return event_id

    def delivery(self, at: float, event_id: str, rule: str, service: str, attempt: int = 1,
                 error: tuple[str, str] | None = None) -> None:
        record = {"event_id": event_id, "rule": rule, "target": ARN + FUNCTIONS[service],
                  "target_id": "Target0", "attempt": attempt, "ok": error is None}
        if error:
            record.update(error_code=error[0], error_message=error[1])
        self.add(at, "delivery", record)

    def invocation(self, started: float, service: str, duration_ms: float = 20.0,
                   init_ms: float | None = None, error: tuple[str, str] | None = None,
                   request_id: str | None = None, recorded: float | None = None,
                   **context: Any) -> str:
        request_id = request_id or str(uuid.uuid4())
        record = {"request_id": request_id, "function": FUNCTIONS[service], "service": service,
                  "ok": error is None, "started": started, "delivered": started,
                  "duration_ms": duration_ms,
                  "init_duration_ms": init_ms, "max_memory_mb": 50, "memory_mb": 256, **context}
        if error:
            record.update(error_type=error[0], error_message=error[1])
        end = started + ((init_ms or 0) + duration_ms) / 1000
        self.add(recorded or end, "invocation", record)
        return request_id

    def lambda_dead_letter(self, at: float, service: str, request_id: str, event_id: str,
                           rule: str, error: tuple[str, str], attempts: int = 3) -> None:
        self.add(at, "dead-letter", {
            "queue": f"arn:aws:sqs:us-east-1:000000000000:{service}OnFailure",
            "source": "lambda", "function": service, "event_id": event_id, "rule": rule,
            "target_id": "Target0",
            "record": {"requestContext": {"requestId": request_id, "condition": "RetriesExhausted",
                                          "functionArn": ARN + FUNCTIONS[service] + ":$LATEST",
                                          "approximateInvokeCount": attempts},
                       "responsePayload": {"errorType": error[0], "errorMessage": error[1]}}})


def one_order(history: History, order_id: str, t0: float = T0) -> dict[str, str]:
    """The happy path of one order, with cold starts; returns its item."""
    api_response = json.dumps({"statusCode": 200, "body": json.dumps(
        {"status": "order_created", "ID": order_id})})
    order_run = t0 + 0.300  # after a 300 ms cold start
    created = history.event(order_run + 0.050, "order_created", "order_service", order_id,
                            ["order_created"])
    history.invocation(t0, "OrderService", duration_ms=80, init_ms=300, trigger="api",
                       api_request_id=str(uuid.uuid4()), response=api_response)
    for i, service in enumerate(("InvoiceService", "FulfilmentService", "ForecastingService")):
        history.delivery(order_run + 0.060 + i / 1000, created, "order_created", service)
    # Fulfilment publishes while forecasting is still running, with the later start.
    completed = history.event(order_run + 0.100, "fulfilment_completed", "fulfilment_service",
                              order_id, ["fulfilment_completed"])
    history.delivery(order_run + 0.101, completed, "fulfilment_completed", "LogisticService")
    history.invocation(order_run + 0.061, "InvoiceService", duration_ms=10, event_id=created,
                       rule="order_created", attempt=1)
    history.invocation(order_run + 0.062, "FulfilmentService", duration_ms=45,
                       event_id=created, rule="order_created", attempt=1)
    history.invocation(order_run + 0.064, "ForecastingService", duration_ms=60,
                       event_id=created, rule="order_created", attempt=1)
    history.invocation(order_run + 0.102, "LogisticService", duration_ms=10,
                       event_id=completed, rule="fulfilment_completed", attempt=1)
    return {"ID": order_id,
            "time_order_service": iso(order_run + 0.010),
            "time_invoice_service": iso(order_run + 0.065),
            "time_fulfilment_service": iso(order_run + 0.070),
            "time_forecasting_service": iso(order_run + 0.090),
            "time_logistic_service": iso(order_run + 0.108)}


def journey_of(history: History, item: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """The journey of `item` from a history of its own (the trace store finds an item's
    records by its key: tests/test_traces.py)."""
    return build_journey(item, "ID", "orders", history.records,
                         rule_targets=kwargs.pop("rule_targets", RULE_TARGETS), **kwargs)


def lane_order(journey: dict[str, Any]) -> list[str]:
    return [lane["name"] for lane in journey["lanes"]]


def entries(journey: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in journey["entries"] if e["kind"] == kind]


def test_each_service_has_a_lane_in_the_order_it_first_acted() -> None:
    history = History()
    item = one_order(history, "order-1")
    journey = journey_of(history, item)

    lanes = lane_order(journey)
    assert sorted(lanes) == sorted(FUNCTIONS)
    assert lanes[0] == "OrderService"
    assert lanes.index("FulfilmentService") < lanes.index("LogisticService")
    firsts = [lane["first_offset_ms"] for lane in journey["lanes"]]
    assert firsts == sorted(firsts)
    assert journey["status"] == "complete"


def test_each_stamp_is_a_step_in_its_services_lane_at_its_offset() -> None:
    history = History()
    item = one_order(history, "order-1")
    journey = journey_of(history, item)

    stamps = {step["attribute"]: step for step in journey["steps"]}
    assert stamps.keys() == {name for name in item if name.startswith("time_")}
    for name, step in stamps.items():
        service = name.removeprefix("time_").replace("_service", "").capitalize() + "Service"
        assert step["lane"] == service
        expected_ms = (steps_of(item)[name] - T0) * 1000  # the API call started the journey
        assert step["offset_ms"] == pytest.approx(expected_ms, abs=0.1)
    assert journey["origin"] == T0
    assert journey["duration_ms"] == pytest.approx(
        max(e.get("end_offset_ms", e["offset_ms"]) for e in journey["entries"]))


def test_events_go_from_their_publisher_through_rules_to_their_targets() -> None:
    history = History()
    item = one_order(history, "order-1")
    journey = journey_of(history, item)

    created, completed = entries(journey, "event")
    assert (created["detail_type"], created["lane"]) == ("order_created", "OrderService")
    assert created["rules"] == ["order_created"]
    # ForecastingService was running too, and started later: the source names the publisher.
    assert (completed["detail_type"], completed["lane"]) == ("fulfilment_completed",
                                                             "FulfilmentService")
    delivered = {(d["event_id"], d["lane"]) for d in entries(journey, "delivery")}
    assert delivered == {(created["event_id"], "InvoiceService"),
                         (created["event_id"], "FulfilmentService"),
                         (created["event_id"], "ForecastingService"),
                         (completed["event_id"], "LogisticService")}
    for delivery in entries(journey, "delivery"):
        [run] = [i for i in entries(journey, "invocation")
                 if i["event_id"] == delivery["event_id"] and i["lane"] == delivery["lane"]]
        assert created["offset_ms"] <= delivery["offset_ms"] <= run["offset_ms"]
    assert "rule order_created matched" in created["text"]


def test_a_publisher_is_found_even_when_its_reported_figures_end_before_the_publish() -> None:
    history = History()
    created = history.event(T0, "order_created", "order_service", "order-1", ["order_created"])
    # The worker took 20 ms to spawn, which neither Init Duration nor Duration counts.
    completed = history.event(T0 + 0.125, "fulfilment_completed", "fulfilment_service",
                              "order-1", ["fulfilment_completed"])
    history.invocation(T0, "FulfilmentService", duration_ms=10, init_ms=100, event_id=created,
                       rule="order_created", attempt=1, recorded=T0 + 0.131)
    journey = journey_of(history, {"ID": "order-1"})
    [event] = [e for e in entries(journey, "event") if e["event_id"] == completed]
    assert event["lane"] == "FulfilmentService"


def test_an_event_nobody_in_the_sandbox_published_is_in_its_sources_lane() -> None:
    history = History()
    history.event(T0, "order_created", "my_script", "order-9", ["order_created"])
    journey = journey_of(history, {"ID": "order-9"})
    assert lane_order(journey) == ["my_script"]


@pytest.mark.parametrize("cut", ["last invocation", "a delivery not begun"])
def test_an_item_is_in_progress_until_every_delivery_it_is_owed_has_ended(cut: str) -> None:
    history = History()
    item = one_order(history, "order-1")
    rule_targets = dict(RULE_TARGETS)
    if cut == "last invocation":
        history.records = [r for r in history.records
                           if getattr(r.record, "service", None) != "LogisticService"]
    else:
        rule_targets[(BUS, "order_created")] = 4  # a fourth target has not been delivered to
    assert journey_of(history, item, rule_targets=rule_targets)["status"] == "in progress"


def test_a_function_that_keeps_failing_is_retried_then_ends_in_its_failure_queue() -> None:
    history = History()
    created = history.event(T0, "order_created", "order_service", "order-1", ["order_created"])
    history.delivery(T0 + 0.001, created, "order_created", "InvoiceService")
    error = ("BadEvent", "event's detail.data.ID must be a non-empty string")
    request_id = None
    for attempt in (1, 2, 3):
        request_id = history.invocation(T0 + attempt, "InvoiceService", error=error,
                                        request_id=request_id, event_id=created,
                                        rule="order_created", attempt=attempt)
    history.lambda_dead_letter(T0 + 3.1, "InvoiceService", request_id, created, "order_created",
                               error)

    journey = journey_of(history, {"ID": "order-1"},
                         rule_targets={(BUS, "order_created"): 1})
    runs = entries(journey, "invocation")
    assert [(r["attempt"], r["retry"], r["ok"]) for r in runs] == [
        (1, False, False), (2, True, False), (3, True, False)]
    assert all("BadEvent: event's detail.data.ID" in r["text"] for r in runs)
    [dead] = entries(journey, "dead-letter")
    assert dead["lane"] == "InvoiceService"
    assert dead["queue"] == "InvoiceServiceOnFailure"
    assert dead["reason"] == f"RetriesExhausted: {error[0]}: {error[1]}"
    assert journey["status"] == "failed"


def test_a_function_that_succeeds_on_a_retry_completes_the_item() -> None:
    history = History()
    created = history.event(T0, "order_created", "order_service", "order-1", ["order_created"])
    history.delivery(T0 + 0.001, created, "order_created", "InvoiceService")
    request_id = history.invocation(T0 + 0.002, "InvoiceService", error=("Boom", "once"),
                                    event_id=created, rule="order_created", attempt=1)
    history.invocation(T0 + 1, "InvoiceService", request_id=request_id, event_id=created,
                       rule="order_created", attempt=2)
    journey = journey_of(history, {"ID": "order-1"}, rule_targets={(BUS, "order_created"): 1})
    assert [r["retry"] for r in entries(journey, "invocation")] == [False, True]
    assert journey["status"] == "complete"


def test_a_delivery_eventbridge_gives_up_on_ends_in_the_dead_letter_queue() -> None:
    history = History()
    created = history.event(T0, "order_created", "order_service", "order-1", ["order_created"])
    throttled = ("ThrottlingException", "Rate exceeded")
    history.delivery(T0 + 0.1, created, "order_created", "LogisticService", 1, throttled)
    assert journey_of(history, {"ID": "order-1"},
                      rule_targets={(BUS, "order_created"): 1})["status"] == "in progress"
    history.delivery(T0 + 0.3, created, "order_created", "LogisticService", 2, throttled)
    attributes = {"RULE_ARN": f"arn:aws:events:us-east-1:0:rule/{BUS}/order_created",
                  "TARGET_ARN": ARN + FUNCTIONS["LogisticService"],
                  "ERROR_CODE": throttled[0], "ERROR_MESSAGE": throttled[1]}
    history.add(T0 + 0.3, "dead-letter", {"queue": "arn:aws:sqs:us-east-1:0:LogisticDLQ",
                                          "source": "eventbridge", "event_id": created,
                                          "attributes": attributes})

    # The target never ran: the sandbox's labels name its lane.
    labels = {function: service for service, function in FUNCTIONS.items()}
    journey = journey_of(history, {"ID": "order-1"}, rule_targets={(BUS, "order_created"): 1},
                         labels=labels)
    failed = entries(journey, "delivery")
    assert [(d["attempt"], d["ok"], d["lane"]) for d in failed] == [
        (1, False, "LogisticService"), (2, False, "LogisticService")]
    [dead] = entries(journey, "dead-letter")
    assert (dead["lane"], dead["reason"]) == ("LogisticService",
                                              "ThrottlingException: Rate exceeded")
    assert journey["status"] == "failed"


def test_an_api_call_that_failed_fails_the_item() -> None:
    history = History()
    answer = json.dumps({"statusCode": 500, "body": json.dumps({"ID": "order-1"})})
    history.invocation(T0, "OrderService", error=("Boom", "no"), trigger="api", response=answer)
    assert journey_of(history, {"ID": "order-1"})["status"] == "failed"


def test_steps_are_time_attributes_and_iso_8601_values() -> None:
    item = {"ID": "2026-11-24", "time_order_service": "2026-11-24T14:27:32.123Z",
            "shipped": "2026-11-24T14:27:33+01:00", "time_note": "soon", "count": 12,
            "noted": "2026-11-24 14:27:34", "time_workshop": "11-24-2026 14:27:35",
            "other": "11-24-2026 14:27:35"}
    steps = steps_of(item)
    assert steps.keys() == {"time_order_service", "shipped", "noted", "time_workshop"}
    # The original workshop's stamps (Lambda's local time is UTC) still place a step.
    assert steps["time_workshop"] - steps["time_order_service"] == pytest.approx(2.877)
    assert steps["shipped"] - steps["time_order_service"] == pytest.approx(0.877 - 3600)
    assert steps["noted"] - steps["time_order_service"] == pytest.approx(1.877)  # UTC if no zone


def test_a_deployed_items_journey_is_its_steps_in_time_order() -> None:
    item = {"ID": "order-1", "time_order_service": "2026-11-24T14:27:32.100Z",
            "time_logistic_service": "2026-11-24T14:27:32.900Z",
            "time_invoice_service": "2026-11-24T14:27:32.400Z"}
    journey = build_journey(item, "ID", "orders")
    assert journey["status"] is None
    assert [(s["lane"], s["offset_ms"]) for s in journey["steps"]] == [
        ("order_service", 0.0), ("invoice_service", 300.0), ("logistic_service", 800.0)]
    assert lane_order(journey) == ["order_service", "invoice_service", "logistic_service"]
    assert journey["duration_ms"] == 800.0


def test_log_lines_go_to_the_run_that_wrote_them() -> None:
    lines = [
        "START RequestId: a Version: $LATEST",
        "a's own line",
        "START RequestId: b Version: $LATEST",
        "written while a and b both ran",
        "END RequestId: a",
        "REPORT RequestId: a\tDuration: 1.00 ms",
        "b's own line",
        "END RequestId: b",
        "REPORT RequestId: b\tDuration: 2.00 ms",
        "START RequestId: a Version: $LATEST",
        "a's retry",
        "END RequestId: a",
        "REPORT RequestId: a\tDuration: 3.00 ms",
    ]
    attributed = attribute_logs(lines)
    runs_of = dict(zip(lines, (runs for runs, _ in attributed), strict=True))
    assert runs_of["a's own line"] == (("a", 0),)
    assert set(runs_of["written while a and b both ran"]) == {("a", 0), ("b", 0)}
    assert runs_of["b's own line"] == (("b", 0),)
    assert runs_of["a's retry"] == (("a", 1),)
    assert runs_of["REPORT RequestId: a\tDuration: 3.00 ms"] == (("a", 1),)


def test_an_invocation_shows_its_log_lines_and_report() -> None:
    history = History()
    item = one_order(history, "order-1")
    [(invoice_id, other_id)] = [(r.record.request_id, "someone-else") for r in history.records
                                if getattr(r.record, "service", None) == "InvoiceService"]
    logs = {"InvoiceService": [
        f"START RequestId: {other_id} Version: $LATEST",
        f"START RequestId: {invoice_id} Version: $LATEST",
        '{"message": "order invoiced", "ID": "order-1"}',  # two runs open: it names our order
        '{"message": "order invoiced", "ID": "order-7"}',  # two runs open: not ours
        f"END RequestId: {invoice_id}",
        f"REPORT RequestId: {invoice_id}\tDuration: 10.00 ms",
        f"END RequestId: {other_id}",
        f"REPORT RequestId: {other_id}\tDuration: 9.00 ms",
        "order-1 mentioned outside any run",
    ]}
    journey = journey_of(history, item, logs=logs)
    [invoice] = [e for e in entries(journey, "invocation") if e["lane"] == "InvoiceService"]
    assert invoice["logs"] == [logs["InvoiceService"][i] for i in (1, 2, 4, 5)]
    assert invoice["report"] == logs["InvoiceService"][5]
    assert journey["other_logs"] == [{"lane": "InvoiceService",
                                      "line": "order-1 mentioned outside any run"}]


def test_the_text_timeline_lists_the_services_in_causal_order_with_offsets() -> None:
    history = History()
    item = one_order(history, "order-1")
    text = text_timeline(journey_of(history, item))

    lines = text.splitlines()
    start = lines.index("services, in the order they first acted:") + 1
    listed = [line.split() for line in lines[start:start + 5]]
    assert [name for name, _, _ in listed] == lane_order(journey_of(history, item))
    assert listed[0][1:] == ["+0", "ms"]
    assert all(offset.startswith("+") for _, offset, _ in listed)
    assert "stamped time_logistic_service = " in text
    assert "ID order-1 in table orders" in lines[0]
    assert "complete" in lines[1]


def test_failures_are_marked_in_the_text_timeline() -> None:
    history = History()
    created = history.event(T0, "order_created", "order_service", "order-1", ["order_created"])
    history.invocation(T0 + 0.1, "InvoiceService", error=("BadEvent", "no ID"),
                       event_id=created, rule="order_created", attempt=1)
    text = text_timeline(journey_of(history, {"ID": "order-1"}))
    [failed] = [line for line in text.splitlines() if "failed" in line and "BadEvent" in line]
    assert failed.startswith("!")


def test_a_list_shows_steps_as_columns_earliest_first_and_items_newest_first() -> None:
    first_history, second_history = History(), History()
    first = summary(journey_of(first_history, one_order(first_history, "order-1")))
    second = summary(journey_of(second_history, one_order(second_history, "order-2", T0 + 60)))
    assert [s["key"] for s in newest_first([first, second])] == ["order-2", "order-1"]
    assert step_names([first, second]) == ["time_order_service", "time_invoice_service",
                                           "time_fulfilment_service", "time_forecasting_service",
                                           "time_logistic_service"]


def test_dynamodb_values_become_plain_json() -> None:
    item = {"ID": {"S": "o-1"}, "n": {"N": "12"}, "f": {"N": "1.5"}, "ok": {"BOOL": True},
            "none": {"NULL": True}, "tags": {"SS": ["a"]}, "nums": {"NS": ["1"]},
            "m": {"M": {"x": {"L": [{"S": "y"}]}}}, "b": {"B": b"\x00\x01"}}
    assert plain_item(item) == {"ID": "o-1", "n": 12, "f": 1.5, "ok": True, "none": None,
                                "tags": ["a"], "nums": [1], "m": {"x": ["y"]}, "b": "AAE="}


def test_a_failure_message_says_why_it_is_there() -> None:
    assert failure_reason({"ERROR_CODE": "ThrottlingException", "ERROR_MESSAGE": "Rate"},
                          None) == "ThrottlingException: Rate"
    record = {"requestContext": {"condition": "RetriesExhausted"},
              "responsePayload": {"errorType": "BadEvent", "errorMessage": "no ID"}}
    assert failure_reason({}, record) == "RetriesExhausted: BadEvent: no ID"
    body = json.dumps({"requestPayload": {"detail": {"data": {"ID": "order-1"}}}})
    assert "order-1" in values_in_message(body)
    assert "order-1" in values_in_message(body[:-5])  # cut short, still found


def test_an_authorizer_that_let_the_api_call_in_is_in_the_items_journey() -> None:
    history = History()
    item = one_order(history, "order-1")
    api_request_id = next(r.record.api_request_id for r in history.records
                          if getattr(r.record, "trigger", None) == "api")
    history.add(T0 - 0.010, "authorizer", {
        "api_request_id": api_request_id, "authorizer": "TokenCheck",
        "function": "Shop-Authorizer9", "effect": "Allow", "cached": False,
        "principal_id": "user-1"})

    (ran,) = entries(journey_of(history, item), "authorizer")
    assert (ran["authorizer"], ran["ok"]) == ("TokenCheck", True)
    assert ran["text"] == "authorizer TokenCheck ran: Allow"
    assert ran["offset_ms"] == 0  # it came first


def test_a_destination_taken_after_a_run_is_in_the_items_journey() -> None:
    history = History()
    item = one_order(history, "order-1")
    created = next(r.record.event["id"] for r in history.records if r.kind == "event")
    history.add(T0 + 1, "destination", {
        "function": "InvoiceService", "request_id": "r-9", "condition": "Success",
        "destination": "arn:aws:events:us-east-1:000000000000:event-bus/Audit",
        "route": "OnSuccess", "ok": True, "event_id": created})

    (taken,) = entries(journey_of(history, item), "destination")
    assert taken["lane"] == "InvoiceService"
    assert taken["text"] == "Lambda sent the Success record to Audit (OnSuccess)"
    assert "Audit (OnSuccess)" in text_timeline(journey_of(history, item))


def test_a_scheduled_event_shows_the_schedule_that_fired_it() -> None:
    history = History()
    event_id = history.event(T0, "order_created", "order_service", "order-7", ["order_created"])
    history.add(T0 - 0.001, "schedule", {
        "schedule": "nightly", "expression": "cron(0 2 * * ? *)",
        "scheduled_time": "2026-11-29T02:00:00Z", "event_id": event_id, "manual": True})

    (fired,) = entries(journey_of(history, {"ID": "order-7"}), "schedule")
    assert fired["text"] == ("schedule nightly (cron(0 2 * * ? *)) fired by hand, "
                             "due 2026-11-29T02:00:00Z")


def test_every_sender_of_dead_letters_gives_its_reason() -> None:
    scheduler = {"X-Amz-Scheduler-Error-Code": "ResourceNotFoundException",
                 "X-Amz-Scheduler-Error-Message": "no such function"}
    assert failure_reason(scheduler, None) == "ResourceNotFoundException: no such function"
    lambda_dlq = {"RequestID": "r-1", "ErrorCode": "200", "ErrorMessage": "boom"}
    assert failure_reason(lambda_dlq, {"id": "e-1"}) == "200: boom"


def test_a_message_is_followed_through_its_queue_batch_run_and_redrive() -> None:
    history = History()
    body = json.dumps({"order": "order-5", "fail": True})
    history.add(T0, "queued", {"queue": "arn:aws:sqs:us-east-1:000000000000:work",
                               "message_id": "m-1", "body": body, "via": "api"})
    run = history.invocation(T0 + 0.1, "InvoiceService", trigger="sqs", request_id="r-7")
    history.add(T0 + 0.2, "batch", {
        "source": "arn:aws:sqs:us-east-1:000000000000:work", "function": FUNCTIONS[
            "InvoiceService"], "request_id": run, "message_ids": ["m-1", "m-2"],
        "failed_ids": ["m-1"], "ok": True})
    history.add(T0 + 5, "redriven", {"queue": "arn:aws:sqs:us-east-1:000000000000:work",
                                     "dead_letter_queue": "arn:aws:sqs:us-east-1:0:work-dlq",
                                     "message_id": "m-1", "receives": 2})

    journey = journey_of(history, {"ID": "order-5"})
    assert [e["text"] for e in journey["entries"]] == [
        "sent to queue work",
        "invoked (sqs): ok (20 ms, 50 of 256 MB)",
        "took a batch of 2 from work: 1 kept for another try",
        "moved to work-dlq after 2 receives",
    ]
    assert [e["lane"] for e in journey["entries"]][:3] == ["work", "InvoiceService",
                                                          "InvoiceService"]


def test_a_stream_batch_names_its_table() -> None:
    history = History()
    history.add(T0, "batch", {
        "source": "arn:aws:dynamodb:us-east-1:0:table/Outbox/stream/1970-01-01T00:00:00.000",
        "function": "f", "request_id": "r-1", "message_ids": ["1", "2"], "failed_ids": ["2"],
        "ok": True})
    (batch,) = entries(build_journey({"ID": "x"}, "ID", "t", history.records), "batch")
    assert batch["text"] == "took a batch of 2 from Outbox stream: 1 kept for another try"
