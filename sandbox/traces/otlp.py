"""Spans in OpenTelemetry's own terms, for any collector (Jaeger, Grafana Tempo...) and for
`trace --otlp-json`.

- IDs: an X-Ray trace ID `1-5759e988-bd862e3fe1be46a994272793` is the OpenTelemetry trace ID
  `5759e988bd862e3fe1be46a994272793` (its 8 hex of time then its 24 hex, as AWS's X-Ray
  exporter and propagator convert them); span IDs are the same 16 hex.
- Each span's resource is its service (`service.name`: a function's name, "EventBridge", "API
  Gateway"...), on `cloud.provider` aws, so a collector draws one service per function.
- The encoding is OpenTelemetry's own (`opentelemetry-exporter-otlp-proto-*`): the SDK's
  `ReadableSpan` made from each span, `encode_spans` for the `ExportTraceServiceRequest`, and
  `OTLPSpanExporter` to send it over OTLP/HTTP protobuf. OTLP JSON is that message in protobuf's
  JSON mapping, except that trace and span IDs are hex, as the OTLP specification requires.
- `Exporter` follows the history from a cursor in a thread of its own (`query.since`): the
  hops that write spans pay nothing for it, and a collector that is down delays the export,
  never the work. What it could not send it sends again (from the same cursor) when the
  collector answers.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlparse

import requests
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from sandbox.core.state import State
from sandbox.traces import query
from sandbox.traces.model import Span

log = logging.getLogger(__name__)

SCOPE = InstrumentationScope("sandbox")
PERIOD_S = 1.0  # how often the exporter looks for new spans when there were none
BATCH = 512  # spans a request carries at most
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def trace_id(xray: str) -> int:
    """X-Ray's `1-<8 hex>-<24 hex>` as OpenTelemetry's 128-bit trace ID."""
    return int(xray.removeprefix("1-").replace("-", ""), 16)


def _context(xray: str, span_id: str) -> SpanContext:
    return SpanContext(trace_id(xray), int(span_id, 16), is_remote=False,
                       trace_flags=TraceFlags(TraceFlags.SAMPLED))


def _value(value: Any) -> Any:
    """An attribute as OpenTelemetry takes it: a primitive, or a list of strings."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return str(value)


def readable(span: Span, resources: dict[str, Resource]) -> ReadableSpan:
    resource = resources.setdefault(span.service, Resource(
        {"service.name": span.service, "cloud.provider": "aws"}))
    attributes = {k: _value(v) for k, v in span.attributes.items() if v is not None}
    if span.resource:
        attributes.setdefault("cloud.resource_id", span.resource)
    status = Status(StatusCode.OK) if span.ok else Status(StatusCode.ERROR, span.reason)
    return ReadableSpan(
        span.name, _context(span.trace_id, span.span_id),
        _context(span.trace_id, span.parent_id) if span.parent_id else None,
        resource, attributes, kind=SpanKind[span.span_kind], status=status,
        start_time=int(span.start * 1e9), end_time=int(span.end * 1e9),
        instrumentation_scope=SCOPE)


def readables(spans: Iterable[Span]) -> list[ReadableSpan]:
    resources: dict[str, Resource] = {}
    return [readable(s, resources) for s in spans]


def request(spans: Iterable[Span]) -> ExportTraceServiceRequest:
    return encode_spans(readables(spans))


def as_json(spans: Iterable[Span]) -> dict[str, Any]:
    """OTLP JSON (an `ExportTraceServiceRequest`): protobuf's JSON mapping with hex IDs."""
    message = MessageToDict(request(spans), use_integers_for_enums=True)
    for resource_spans in message.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
    return message


class Exporter:
    """Sends every span written from now on to `endpoint` (OTLP/HTTP protobuf)."""

    def __init__(self, state: State, endpoint: str) -> None:
        self.state = state
        self.endpoint = endpoint
        self.exporter = OTLPSpanExporter(endpoint=endpoint, session=_session(endpoint),
                                         timeout=10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="otlp-export", daemon=True)
        self._failing = False

    def start(self) -> None:
        self.cursor = query.cursor(self.state)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        if not self._failing:
            self.send_new()  # what the last moments wrote
        self.exporter.shutdown()

    def _loop(self) -> None:
        while not self._stop.is_set():
            sent = self.send_new()
            if not sent:
                self._stop.wait(PERIOD_S)

    def send_new(self) -> int:
        """Sends the spans written since the cursor; how many went."""
        try:
            spans, after = query.since(self.state, self.cursor, BATCH)
        except Exception:  # the state closed under a stopping sandbox
            return 0
        if not spans:
            return 0
        if not self._send(spans):
            return 0
        self.cursor = after
        return len(spans)

    def _send(self, spans: Sequence[Span]) -> bool:
        result = self.exporter.export(readables(spans))
        ok = result is SpanExportResult.SUCCESS
        if ok == self._failing:  # said once when it starts failing, once when it recovers
            log.warning("OTLP export to %s %s", self.endpoint,
                        "works again" if ok else "failed: spans wait until it answers")
        self._failing = not ok
        return ok


def _session(endpoint: str) -> requests.Session:
    """A collector on this machine is reached directly, never through a proxy the environment
    names; a remote one as the environment says."""
    session = requests.Session()
    session.trust_env = urlparse(endpoint).hostname not in LOOPBACK
    return session
