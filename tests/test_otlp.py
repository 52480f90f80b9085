"""`up --otlp-endpoint`: the spans of one order, as an OpenTelemetry collector receives them over
OTLP/HTTP protobuf. The collector here is a tiny receiver on 127.0.0.1 that decodes each
`ExportTraceServiceRequest` with `opentelemetry-proto`, as Jaeger or any collector would."""

from __future__ import annotations

import gzip
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from sandbox_process import SandboxProcess, wait_for

from sandbox.core.history import EventPut, InvocationRun
from sandbox.core.state import State
from sandbox.traces import context, query
from sandbox.traces.otlp import Exporter


def value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value"))


class Receiver(ThreadingHTTPServer):
    """Every span received: (service.name of its resource, the span)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.spans: list[tuple[str, Any]] = []
        self.paths: set[str] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        exported = ExportTraceServiceRequest.FromString(body)
        self.server.paths.add(f"{self.path} {self.headers['Content-Type']}")
        for resource_spans in exported.resource_spans:
            service = {a.key: value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.server.spans += [(service["service.name"], s) for s in scope_spans.spans]
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def sandbox(assembly: Path, tmp_path_factory: pytest.TempPathFactory,
            receiver: Receiver) -> Iterator[SandboxProcess]:
    with SandboxProcess(assembly, tmp_path_factory.mktemp("state"),
                        extra_args=("--otlp-endpoint", receiver.endpoint)) as running:
        yield running


def attributes(span: Any) -> dict[str, Any]:
    return {a.key: value(a.value) for a in span.attributes}


def test_the_exporter_sends_the_spans_written_after_its_start_once(
        receiver: Receiver, tmp_path: Path) -> None:
    state = State(tmp_path / "sandbox.db")
    bus = "arn:aws:events:us-east-1:123456789012:event-bus/orders"
    state.record(EventPut(bus, {"id": "before", "detail": {}}, []))
    exporter = Exporter(state, receiver.endpoint)
    exporter.cursor = query.cursor(state)  # what `start` does, without its thread
    with context.span("event"):
        state.record(EventPut(bus, {"id": "after", "detail": {}}, ["r"]))
        with context.span("invocation"):
            state.record(InvocationRun("req-1", "arn:aws:lambda:us-east-1:1:function:f", "F",
                                       True, 1.0, 1.0, 3.0, None, 40, 128))
    receiver.spans.clear()
    assert exporter.send_new() == 2 and exporter.send_new() == 0
    [(bus_service, put), (function, run)] = receiver.spans
    assert (bus_service, function) == ("EventBridge", "F")
    assert attributes(put)["messaging.message.id"] == "after"
    assert run.parent_span_id == put.span_id and run.trace_id == put.trace_id
    exporter.exporter.shutdown()
    state.close()


@pytest.mark.slow
def test_an_orders_spans_reach_the_collector_with_their_parents_and_conventions(
        sandbox: SandboxProcess, receiver: Receiver) -> None:
    with urllib.request.urlopen(f"{sandbox.url}/prod/order", timeout=60) as answer:
        order_id = json.load(answer)["ID"]
    state = State(sandbox.state / "sandbox.db", read_only=True)
    [trace_id] = wait_for(lambda: query.trace_ids(state, order_id), 60, "the order's trace")
    otel_id = bytes.fromhex(trace_id.removeprefix("1-").replace("-", ""))

    def received() -> list[tuple[str, Any]] | None:
        spans = [(service, s) for service, s in receiver.spans if s.trace_id == otel_id]
        return spans if len(spans) == 12 else None

    spans = wait_for(received, 60, "the order's twelve spans at the collector")
    assert receiver.paths == {"/v1/traces application/x-protobuf"}
    by_id = {s.span_id: (service, s) for service, s in spans}
    [(_, api)] = [(service, s) for service, s in spans if not s.parent_span_id]
    assert (api.name, api.kind) == ("GET /order", api.SPAN_KIND_SERVER)
    assert attributes(api)["http.request.method"] == "GET"
    assert attributes(api)["http.response.status_code"] == 200
    for _, span in spans:  # each parent is a span of the same trace, sent too
        assert span is api or span.parent_span_id in by_id
        assert span.status.code != span.status.STATUS_CODE_ERROR
        assert span.end_time_unix_nano >= span.start_time_unix_nano > 0

    def parent_service(span: Any) -> str:
        return by_id[span.parent_span_id][0]

    invocations = {service: s for service, s in spans if s.name == f"{service} invoke"}
    assert sorted(invocations) == ["ForecastingService", "FulfilmentService", "InvoiceService",
                                   "LogisticService", "OrderService"]
    assert invocations["OrderService"].parent_span_id == api.span_id
    for service, invocation in invocations.items():
        faas = attributes(invocation)
        assert set(faas) >= {"faas.invocation_id", "faas.name", "faas.trigger",
                             "faas.coldstart", "cloud.resource_id"}
        assert faas["faas.name"] == service
        if service != "OrderService":
            assert parent_service(invocation) == "EventBridge"
            assert faas["faas.trigger"] == "pubsub"
            assert invocation.kind == invocation.SPAN_KIND_CONSUMER
    puts = [s for service, s in spans if service == "EventBridge" and s.name.endswith(" put")]
    assert sorted(parent_service(p) for p in puts) == ["FulfilmentService", "OrderService"]
    for put in puts:
        messaging = attributes(put)
        assert put.kind == put.SPAN_KIND_PRODUCER
        assert (messaging["messaging.system"], messaging["rpc.method"]) == ("aws.eventbridge",
                                                                            "PutEvents")
        assert messaging["messaging.message.id"]
