"""The console: a page the sandbox serves under `/console/` that shows the tables' items (our
orders), each item's journey through the services, and the failure queues, live.

Served through `Sandbox.extra_routes`, on the sandbox's one port; the page is three static
files in `sandbox/console/` (no CDN, no build step) that poll one JSON endpoint with a `since`
cursor, the id of the last history record: while nothing new has happened the answer is a
few bytes. What is shown is built by `sandbox.journey` from the history, the table items and
the function logs; the pure parts here (routes, the API's buttons, the failure messages) are
apart from the `Console` that reads those.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sandbox.apigateway.rest_api import RestApi
from sandbox.core.history import InvocationRun
from sandbox.core.state import Message, State
from sandbox.core.wire import Response
from sandbox.dynamodb.local import client as local_client
from sandbox.dynamodb.tables import Table, describe, find, scan
from sandbox.journey import (
    HistoryIndex,
    build_journey,
    failure_reason,
    newest_first,
    step_names,
    summary,
    values_in_message,
)

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
LIST_LIMIT = 200  # items in the list, messages of a queue: the newest



# Pure parts


def api_calls(apis: Iterable[RestApi]) -> list[dict[str, str]]:
    """One button per REST API route a browser can open as it is (GET, no path parameter).
    An app with one such route is the shape this console is for, a GET that makes an item:
    `GET /prod/order` reads "Create order", and the items are called orders. With several,
    each button names its route."""
    calls = []
    for api in apis:
        for method in api.methods:
            if method.http_method not in ("GET", "ANY") or "{" in method.resource_path:
                continue
            noun = method.resource_path.rstrip("/").rsplit("/", 1)[-1]
            path = f"/{api.stage}{method.resource_path}"
            calls.append({"method": "GET", "path": path, "noun": noun,
                          "label": f"Call GET {path}"})
    if len(calls) == 1 and calls[0]["noun"]:
        calls[0]["label"] = f"Create {calls[0]['noun']}"
    return calls


def json_response(status: int, value: Any) -> Response:
    return (status, [("Content-Type", "application/json"), *SECURITY_HEADERS],
            json.dumps(value).encode())


def static_file(name: str) -> Response:
    """One of the page's own files; any other name is a 404, so no path leaves the folder."""
    if name == "":
        name = "index.html"
    if name not in STATIC_TYPES:
        return json_response(404, {"message": f"no such console file: {name}"})
    data = (STATIC_DIR / name).read_bytes()
    return 200, [("Content-Type", STATIC_TYPES[name]), *SECURITY_HEADERS], data


def failure_message(message: Message, queue_name: str,
                    keys: Mapping[str, str]) -> dict[str, Any]:
    """A failure queue's message as the page shows it: why it is there, which items it
    belongs to (`keys`: key value -> table) and what event it carried."""
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
    found = sorted(values_in_message(message.body) & keys.keys())
    return {
        "id": message.id,
        "queue": queue_name,
        "sent": message.sent,
        "sent_time": datetime.fromtimestamp(message.sent, UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z"),
        "source": "lambda" if lambda_record else "eventbridge",
        "reason": failure_reason(message.strings(), body),
        "attempts": attempts,
        "items": [{"table": keys[key], "key": key} for key in found],
        "event": ({"id": event.get("id"), "detail_type": event.get("detail-type"),
                   "source": event.get("source")} if isinstance(event, dict) else None),
        "attributes": message.strings(),
        "body": body,
    }


def query_of(path: str) -> tuple[str, dict[str, str]]:
    url = urlsplit(path)
    return url.path, {name: values[-1] for name, values in parse_qs(url.query).items()}


# The console


class Console:
    def __init__(
        self,
        state: State,
        dynamodb: Any,
        log_lines: Callable[[str], list[str]],
        calls: list[dict[str, str]],
        rule_targets: Mapping[tuple[str, str], int],
        labels: Mapping[str, str],
        failure_queues: Mapping[str, str],
        title: str,
    ) -> None:
        """`dynamodb` is a boto3 client for the tables; `failure_queues` maps the ARN of
        each dead-letter queue and on-failure destination to its name."""
        self.state = state
        self.dynamodb = dynamodb
        self.log_lines = log_lines
        self.calls = calls
        self.rule_targets = dict(rule_targets)
        self.labels = dict(labels)
        self.failure_queues = dict(failure_queues)
        self.title = title
        self.index = HistoryIndex()
        self._lock = threading.Lock()
        self._tables: dict[str, Table] = {}

    @classmethod
    def of(cls, sandbox: Sandbox) -> Console:
        """The console of a sandbox whose parts have started (before its endpoint)."""
        rules = [rule for rules in sandbox.bus.rules.values() for rule in rules if rule.enabled]
        queues = {target.dead_letter_arn for rule in rules for target in rule.targets
                  if target.dead_letter_arn}
        queues |= {arn for c in sandbox.lambda_.async_configs.values()
                   for arn in (c.on_failure, c.dead_letter) if arn and arn in sandbox.queues.names}
        return cls(
            state=sandbox.state,
            dynamodb=local_client(sandbox.dynamodb.endpoint_url),
            log_lines=sandbox.logs.lines,
            calls=api_calls(sandbox.apis),
            rule_targets={(rule.bus, rule.name): len(rule.targets) for rule in rules},
            labels=sandbox.lambda_.labels,
            failure_queues={arn: sandbox.queues.names.get(arn, arn.split(":")[-1])
                            for arn in sorted(queues)},
            title=", ".join(stack.name for stack in sandbox.stacks),
        )

    def routes(self) -> dict[str, Callable[[str, str, bytes], Response]]:
        return {PREFIX: self.handle}

    def handle(self, method: str, path: str, body: bytes) -> Response:
        route, query = query_of(path)
        if method not in ("GET", "HEAD"):
            return json_response(405, {"message": f"{method} is not served here: use GET"})
        if route == PREFIX:
            return 302, [("Location", PREFIX + "/")], b""
        name = route.removeprefix(PREFIX + "/")
        if name == "api/overview":
            since = query.get("since")
            if since is not None and not since.isdigit():
                return json_response(400, {"message": f"since must be a history id: {since}"})
            return json_response(200, self.overview(int(since) if since else None))
        if name == "api/journey":
            if not query.get("key"):
                return json_response(400, {"message": "say which item: ?key=<its key value>"})
            journey = self.journey(query["key"], query.get("table"))
            if journey is None:
                return json_response(404, {"message": f"no item with key {query['key']} in "
                                                      f"{query.get('table') or 'any table'}"})
            return json_response(200, journey)
        return static_file(name)

    # The API

    def overview(self, since: int | None = None) -> dict[str, Any]:
        """Everything the page lists, or only the cursor when nothing happened since."""
        cursor = self._catch_up()
        if since is not None and since == cursor:
            return {"cursor": cursor, "unchanged": True}
        summaries = []
        keys: dict[str, str] = {}
        tables = self.tables()
        for table in tables:
            for item in scan(self.dynamodb, table):
                key = str(item.get(table.key_name, ""))
                keys[key] = table.name
                summaries.append(summary(self._journey(table, item, with_logs=False)))
        nouns = {call["noun"] for call in self.calls if call["label"].startswith("Create ")}
        return {
            "cursor": cursor,
            "title": self.title,
            "noun": nouns.pop() if len(nouns) == 1 else "item",
            "calls": self.calls,
            "tables": [table.name for table in tables],
            "keys": {table.name: table.key_name for table in tables},
            "steps": step_names(summaries),
            "total": len(summaries),
            "items": newest_first(summaries)[:LIST_LIMIT],
            "failures": self.failures(keys),
        }

    def journey(self, key: str, table_name: str | None = None) -> dict[str, Any] | None:
        self._catch_up()
        for table in self.tables():
            if table_name in (None, table.name):
                item = find(self.dynamodb, table, key)
                if item is not None:
                    return self._journey(table, item, with_logs=True)
        return None

    def failures(self, keys: Mapping[str, str]) -> list[dict[str, Any]]:
        """Each failure queue with its newest messages, oldest first, and how many it holds."""
        messages = self.state.messages()
        queues = []
        for arn, name in self.failure_queues.items():
            held = [m for m in messages if m.queue == arn]
            queues.append({"queue": name, "arn": arn, "count": len(held),
                           "messages": [failure_message(m, name, keys)
                                        for m in held[-LIST_LIMIT:]]})
        return queues

    # Reading

    def tables(self) -> list[Table]:
        names = self.dynamodb.list_tables()["TableNames"]
        for name in names:
            if name not in self._tables:
                self._tables[name] = describe(self.dynamodb, name)
        return [self._tables[name] for name in names]

    def _catch_up(self) -> int:
        """Index the history written since the last call; the cursor is the last record's id."""
        with self._lock:
            while True:
                records = self.state.history(self.index.last_id)
                if not records:
                    return self.index.last_id
                self.index.add(records)

    def _journey(self, table: Table, item: dict[str, Any], with_logs: bool) -> dict[str, Any]:
        key = str(item.get(table.key_name, ""))
        with self._lock:
            records = self.index.records_of(key)
        services = {r.record.service for r in records if isinstance(r.record, InvocationRun)}
        logs = {service: self._log(service) for service in sorted(services)} if with_logs else {}
        return build_journey(item, table.key_name, table.name, records, logs,
                             self.rule_targets, self.labels)

    def _log(self, service: str) -> list[str]:
        """The lines of one function (its lane's label), from its log group in the state."""
        return self.log_lines(service)
