"""The console: a page the sandbox serves under `/console/` that shows any app's traces, live,
and what each of its resources did (buses, functions, queues, tables), whatever the app is.

Served through `Sandbox.extra_routes`, on the sandbox's one port; the page is three static
files in `sandbox/console/` (no CDN, no build step). Every answer is read through the trace
store's indexed queries (`sandbox.traces.query`), never a scan of the history, so a refresh
costs what changed, not what happened since the start:
- `api/traces?since=<cursor>`: the traces that got a span after the cursor (all the page
  polls; nothing new is a few bytes), or the newest traces without one;
- `api/trace?id=`: one trace as a waterfall, each invocation with its log lines;
- `api/search?q=`: the traces a trace ID, request or message ID, or value (an order ID) leads to;
- `api/resource?type=&name=`: a bus's events and the rules they matched, a function's
  invocations, a queue's messages, a table's items under their full key;
- `api/failures`: what each dead-letter queue and on-failure destination holds, and why;
- `api/overview`: each table item's steps, what `orders` lists (a command, not a refresh).
The pure parts here (routes, failure messages, waterfall rows) are apart from the `Console`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sandbox.apigateway.rest_api import RestApi
from sandbox.core.history import EventPut, InvocationRun, MessageQueued
from sandbox.core.state import Message, State
from sandbox.core.wire import Response
from sandbox.dynamodb.local import client as local_client
from sandbox.dynamodb.tables import Table, describe, scan
from sandbox.journey import (
    build_journey,
    failure_reason,
    newest_first,
    plain_item,
    summary,
)
from sandbox.traces import query
from sandbox.traces.model import Span, Trace

if TYPE_CHECKING:
    from sandbox.sandbox import Sandbox

PREFIX = "/console"
STATIC_DIR = Path(__file__).resolve().parent
STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Nothing from outside the machine, not even by mistake: the browser enforces it.
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
]
LIST_LIMIT = 100  # traces listed, spans of a resource, items of a table: the newest
SINCE_LIMIT = 2_000  # spans one refresh reads; past it the page starts over from the newest
_PARAMETER = re.compile(r"\{([^}]+)\}")
RESOURCE_TYPES = ("bus", "function", "queue", "table")


# Pure parts


def api_routes(apis: Iterable[RestApi]) -> list[dict[str, Any]]:
    """Every route of every REST API stage, as the page's "call this route" form offers it:
    the methods it answers (ANY: each of them), the path under its stage and its parameters."""
    routes = []
    for api in apis:
        for method in api.methods:
            verbs = (["GET", "POST", "PUT", "PATCH", "DELETE"] if method.http_method == "ANY"
                     else [method.http_method])
            path = f"/{api.stage}{method.resource_path}"
            routes.append({"api": api.name, "methods": verbs, "path": path,
                           "parameters": _PARAMETER.findall(method.resource_path)})
    return routes


def json_response(status: int, value: Any) -> Response:
    return (status, [("Content-Type", "application/json"), *SECURITY_HEADERS],
            json.dumps(value, default=str).encode())


def static_file(name: str) -> Response:
    """One of the page's own files; any other name is a 404, so no path leaves the folder."""
    if name == "":
        name = "index.html"
    if name not in STATIC_TYPES:
        return json_response(404, {"message": f"no such console file: {name}"})
    data = (STATIC_DIR / name).read_bytes()
    return 200, [("Content-Type", STATIC_TYPES[name]), *SECURITY_HEADERS], data


def failure_message(message: Message, queue_name: str) -> dict[str, Any]:
    """A failure queue's message as the page shows it: why it is there, and the event it
    carried (its id finds the trace)."""
    try:
        body = json.loads(message.body)
    except ValueError:
        body = message.body
    lambda_record = isinstance(body, dict) and "requestContext" in body
    event = body.get("requestPayload") if lambda_record else body
    if lambda_record:
        attempts = body["requestContext"].get("approximateInvokeCount")
    else:
        attempts = int(message.strings().get("RETRY_ATTEMPTS", "0")) + 1
    return {
        "id": message.id,
        "queue": queue_name,
        "sent": message.sent,
        "sent_time": _iso(message.sent),
        "source": "lambda" if lambda_record else "eventbridge",
        "reason": failure_reason(message.strings(), body),
        "attempts": attempts,
        "event": ({"id": event.get("id"), "detail_type": event.get("detail-type"),
                   "source": event.get("source")} if isinstance(event, dict) else None),
        "attributes": message.strings(),
        "body": body,
    }


def marks(span: Span) -> list[str]:
    """What the waterfall flags on a span: a cold start, a retry, a failure."""
    out = []
    if span.attributes.get("faas.coldstart"):
        out.append("cold start")
    attempt = span.attributes.get("aws.retry.attempt") or span.attributes.get(
        "aws.lambda.attempt") or 1
    if attempt > 1:
        out.append(f"retry {attempt - 1}")
    if not span.ok:
        out.append("failed")
    return out


def waterfall(trace: Trace, logs: Callable[[str], list[str]]) -> dict[str, Any]:
    """A trace's spans, parents before children, each with its offset from the trace's start,
    its marks and, for an invocation, its log lines (`logs(request_id)`)."""
    spans = []
    for depth, span in trace.walk():
        row = {**span.as_dict(), "depth": depth, "marks": marks(span),
               "offset_ms": round((span.start - trace.start) * 1000, 2)}
        if isinstance(span.record, InvocationRun):
            row["logs"] = logs(span.record.request_id)
        spans.append(row)
    return {**trace.summary(), "spans": spans}


def query_of(path: str) -> tuple[str, dict[str, str]]:
    url = urlsplit(path)
    return url.path, {name: values[-1] for name, values in parse_qs(url.query).items()}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


# The console


class Console:
    def __init__(
        self,
        state: State,
        dynamodb: Any,
        logs: Callable[[str], list[str]],
        routes: list[dict[str, Any]],
        buses: Mapping[str, list[str]],
        functions: Mapping[str, str],
        queues: Mapping[str, str],
        failure_queues: Iterable[str],
        title: str,
    ) -> None:
        """`dynamodb` is a boto3 client for the tables; `logs(request_id)` the lines of one
        invocation; `buses` maps each bus to its rules, `functions` each function name to its
        display name, `queues` each queue ARN to its name; `failure_queues` are the ARNs of the
        dead-letter queues and on-failure destinations."""
        self.state = state
        self.dynamodb = dynamodb
        self.logs = logs
        self.routes_ = routes
        self.buses = dict(buses)
        self.functions = dict(functions)
        self.queues = dict(queues)
        self.failure_queues = [arn for arn in failure_queues if arn in self.queues]
        self.title = title

    @classmethod
    def of(cls, sandbox: Sandbox) -> Console:
        """The console of a sandbox whose parts have started (before its endpoint)."""
        rules = [rule for rules in sandbox.bus.rules.values() for rule in rules if rule.enabled]
        failures = {target.dead_letter_arn for rule in rules for target in rule.targets
                    if target.dead_letter_arn}
        failures |= {arn for c in sandbox.lambda_.async_configs.values()
                     for arn in (c.on_failure, c.dead_letter) if arn}
        queues = {arn: sandbox.queues.names.get(arn, arn.split(":")[-1])
                  for arn in sorted({*sandbox.queues.names, *failures})
                  if ":sqs:" in arn or arn in sandbox.queues.names}
        return cls(
            state=sandbox.state,
            dynamodb=local_client(sandbox.dynamodb.endpoint_url),
            logs=sandbox.log_store.invocation,
            routes=api_routes(sandbox.apis),
            buses={bus: [r.name for r in rules] for bus, rules in sandbox.bus.rules.items()},
            functions=dict(sandbox.lambda_.labels),
            queues=queues,
            failure_queues=sorted(failures),
            title=", ".join(stack.name for stack in sandbox.stacks),
        )

    def routes(self) -> dict[str, Callable[[str, str, bytes], Response]]:
        return {PREFIX: self.handle}

    def handle(self, method: str, path: str, body: bytes) -> Response:
        route, args = query_of(path)
        if method not in ("GET", "HEAD"):
            return json_response(405, {"message": f"{method} is not served here: use GET"})
        if route == PREFIX:
            return 302, [("Location", PREFIX + "/")], b""
        name = route.removeprefix(PREFIX + "/")
        if not name.startswith("api/"):
            return static_file(name)
        answer = self.api(name.removeprefix("api/"), args)
        return json_response(*answer)

    def api(self, name: str, args: Mapping[str, str]) -> tuple[int, Any]:
        if name == "app":
            return 200, self.app()
        if name == "overview":  # what `orders` reads of a running sandbox
            return 200, self.items()
        if name == "traces":
            since = args.get("since", "")
            if since and not since.isdigit():
                return 400, {"message": f"since must be a cursor (a number): {since}"}
            return 200, self.traces(int(since) if since else None)
        if name == "trace":
            found = self.trace(args.get("id", ""))
            return (200, found) if found else (404, {"message": f"no trace {args.get('id')}"})
        if name == "search":
            if not args.get("q", "").strip():
                return 400, {"message": "say what to search: ?q=<an ID or a value>"}
            return 200, self.search(args["q"])
        if name == "resource":
            kind, which = args.get("type", ""), args.get("name", "")
            if kind not in RESOURCE_TYPES or not which:
                return 400, {"message": f"say which resource: ?type=({'|'.join(RESOURCE_TYPES)})"
                                        "&name=<its name or ARN>"}
            return 200, self.resource(kind, which)
        if name == "failures":
            return 200, self.failures()
        return 404, {"message": f"no such console API: {name}"}

    # The API

    def app(self) -> dict[str, Any]:
        """What does not change while the sandbox runs: the app's routes and resources."""
        return {
            "title": self.title,
            "routes": self.routes_,
            "resources": {
                "bus": [{"name": b, "label": b, "rules": r} for b, r in self.buses.items()],
                "function": [{"name": f, "label": label}
                             for f, label in sorted(self.functions.items(), key=lambda x: x[1])],
                "queue": [{"name": arn, "label": name, "failure": arn in self.failure_queues}
                          for arn, name in self.queues.items()],
                "table": [{"name": t, "label": t}
                          for t in self.dynamodb.list_tables()["TableNames"]],
            },
        }

    def traces(self, since: int | None) -> dict[str, Any]:
        """The newest traces, or those that got a span after `since`; and the new cursor."""
        if since is not None:
            spans, cursor = query.since(self.state, since, SINCE_LIMIT)
            if len(spans) < SINCE_LIMIT:
                ids = list(dict.fromkeys(s.trace_id for s in reversed(spans)))[:LIST_LIMIT]
                found = (query.one(self.state, i) for i in ids)
                return {"cursor": cursor, "traces": [t.summary() for t in found if t]}
        cursor = query.cursor(self.state)
        return {"cursor": cursor, "reset": since is not None,
                "traces": query.recent(self.state, LIST_LIMIT)}

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        found = query.one(self.state, trace_id.strip().removeprefix("Root="))
        return waterfall(found, self.logs) if found else None

    def search(self, text: str) -> dict[str, Any]:
        return {"query": text, "traces": [t.summary() for t in query.find(self.state, text)]}

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        if kind == "table":
            return self.table(name)
        spans = query.of_resource(self.state, name, LIST_LIMIT)
        rows: list[dict[str, Any]] = []
        for span in spans:
            record = span.record
            row = {"trace_id": span.trace_id, "start": span.start, "name": span.name,
                   "duration_ms": span.duration_ms, "ok": span.ok, "reason": span.reason,
                   "marks": marks(span)}
            if kind == "bus" and isinstance(record, EventPut):
                rows.append({**row, "event_id": record.event.get("id"),
                             "detail_type": record.event.get("detail-type"),
                             "source": record.event.get("source"), "rules": record.rules,
                             "via": record.via, "event": record.event})
            elif kind == "function" and isinstance(record, InvocationRun):
                rows.append({**row, "request_id": record.request_id, "trigger": record.trigger,
                             "logs": self.logs(record.request_id)})
            elif kind == "queue" and isinstance(record, MessageQueued):
                rows.append({**row, "message_id": record.message_id, "via": record.via,
                             "body": record.body})
        held = len(self.state.messages(name)) if kind == "queue" else None
        return {"type": kind, "name": name, "rows": rows, "held": held}

    def table(self, name: str) -> dict[str, Any]:
        """The newest page of a table's items, each under its full key (partition and sort)."""
        schema = self.dynamodb.describe_table(TableName=name)["Table"]["KeySchema"]
        key = [k["AttributeName"] for k in sorted(schema, key=lambda k: k["KeyType"])]
        page = self.dynamodb.scan(TableName=name, Limit=LIST_LIMIT)
        items = [plain_item(item) for item in page["Items"]]
        return {"type": "table", "name": name, "key": key,  # HASH sorts before RANGE
                "rows": [{"key": {k: item.get(k) for k in key},
                          "item": {k: v for k, v in item.items() if k not in key}}
                         for item in items],
                "more": "LastEvaluatedKey" in page}

    def failures(self) -> list[dict[str, Any]]:
        """Each failure queue with its newest messages, oldest first, and how many it holds."""
        queues = []
        for arn in self.failure_queues:
            held = self.state.messages(arn)
            name = self.queues[arn]
            queues.append({"queue": name, "arn": arn, "count": len(held),
                           "messages": [failure_message(m, name) for m in held[-LIST_LIMIT:]]})
        return queues

    # The items, as `orders` lists them

    def items(self) -> dict[str, Any]:
        """Each table's items with their journeys (steps and status), newest first: the
        traces of an item are those that carry its key, found by the value index."""
        tables = [describe(self.dynamodb, t) for t in self.dynamodb.list_tables()["TableNames"]]
        summaries = [summary(self._journey(t, item)) for t in tables
                     for item in scan(self.dynamodb, t)]
        return {"items": newest_first(summaries), "total": len(summaries)}

    def _journey(self, table: Table, item: dict[str, Any]) -> dict[str, Any]:
        key = str(item.get(table.key_name, ""))
        records = query.entries_of(self.state, query.trace_ids(self.state, key))
        logs: dict[str, list[str]] = {}
        for entry in records:
            if isinstance(entry.record, InvocationRun):
                run = entry.record
                logs.setdefault(run.service, []).extend(self.logs(run.request_id))
        return build_journey(item, table.key_name, table.name, records, logs, None,
                             self.functions)
