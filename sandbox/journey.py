"""An item's journey: what happened, when and where, for one item of a table (one order).

Pure: the console hands it the item and the records of the traces its key value is found in
(`sandbox.traces.query`), with log lines, and renders what it builds. The sandbox knows
nothing of our stack, so everything is inferred from generic facts:

- an item's *steps* are its string attributes named `time_*` or holding an ISO 8601 time;
- its events, deliveries, invocations, dead letters and other hops are the records handed in;
- its *log lines* are those holding its key value, and those its invocations wrote. The
  values a record carries (`strings_in`, `values_in_message`) are what the trace store
  indexes an item's traces by.

A journey is a plain dict (JSON as it is): `entries` in time order, each with the `lane`
(service) it happened in and its `offset_ms` from the journey's first moment, and a `text`
that says what happened, so the page and the terminal word things the same way.
"""

from __future__ import annotations

import base64
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from sandbox.core.history import (
    AuthorizerRan,
    BatchRun,
    DeadLetter,
    DeliveryAttempt,
    DestinationTaken,
    Entry,
    EventPut,
    InvocationRun,
    MessageQueued,
    MessageRedriven,
    ScheduleFired,
)

T = TypeVar("T")


STEP_PREFIX = "time_"
WORKSHOP_TIME = "%m-%d-%Y %H:%M:%S"
# Date and time at least to the minute: "2026-11-24" alone or "12" is not a step.
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_TOKEN = re.compile(r"[\w.:@/+=-]+")
_REQUEST_LINE = re.compile(r"^(START|END|REPORT) RequestId: (\S+)")
# Entries that happen at the same moment are listed in causal order.
_KIND_ORDER = {"authorizer": 0, "queued": 1, "batch": 2, "invocation": 3, "schedule": 4,
               "event": 5, "delivery": 6, "destination": 7, "stamp": 8, "redriven": 9,
               "dead-letter": 10}
# Messages that a dead-letter or destination record already shows in a journey.
QUEUED_ELSEWHERE = ("dead-letter", "destination")
QUEUED_BY = {"api": "sent to", "bus": "EventBridge put it in", "topic": "SNS put it in",
             "schedule": "the schedule put it in"}
# A publish is logged by the sandbox a little after the publisher's clock says it ran.
_PUBLISH_SLACK_S = 0.005
INJECTED_FAULT = "Sandbox.InjectedFault"  # the sandbox's fault injection fails before a worker


# Items


def plain(value: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value ({"S": "x"}, {"N": "1"}, ...) as plain JSON."""
    [(kind, inner)] = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        number = float(inner)
        return int(number) if number.is_integer() and "." not in inner else number
    if kind in ("BOOL", "NULL"):
        return inner if kind == "BOOL" else None
    if kind == "B":
        return base64.b64encode(inner).decode() if isinstance(inner, bytes) else inner
    if kind == "L":
        return [plain(v) for v in inner]
    if kind == "M":
        return {k: plain(v) for k, v in inner.items()}
    if kind == "NS":
        return [plain({"N": v}) for v in inner]
    if kind == "BS":
        return [plain({"B": v}) for v in inner]
    return list(inner)  # SS


def plain_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {name: plain(value) for name, value in item.items()}


def parse_time(text: str) -> float | None:
    """Epoch seconds of an ISO 8601 date and time (UTC when it names no zone), else None."""
    if not _ISO_TIME.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def steps_of(item: Mapping[str, Any]) -> dict[str, float]:
    """The item's steps: attribute name -> epoch seconds. A `time_*` attribute may also hold
    the original workshop's `%m-%d-%Y %H:%M:%S`, in the function's local time: UTC on Lambda."""
    steps = {}
    for name, value in item.items():
        if not isinstance(value, str):
            continue
        at = parse_time(value)
        if at is None and name.startswith(STEP_PREFIX):
            try:
                at = datetime.strptime(value, WORKSHOP_TIME).replace(tzinfo=UTC).timestamp()
            except ValueError:
                at = None
        if at is not None:
            steps[name] = at
    return steps


def step_lane(attribute: str, services: Iterable[str]) -> str:
    """The lane of a step: the service whose name it spells (`time_order_service` is
    OrderService's), else the attribute without its `time_` prefix."""
    base = attribute.removeprefix(STEP_PREFIX)
    for service in services:
        if _squash(service) == _squash(base):
            return service
    return base


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# Correlation


def strings_in(value: Any) -> Iterator[str]:
    """Every string in a JSON value, also inside strings that are JSON themselves (an API
    answer's body)."""
    if isinstance(value, dict):
        for inner in value.values():
            yield from strings_in(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from strings_in(inner)
    elif isinstance(value, str):
        yield value
        if value[:1] in ("{", "["):
            try:
                yield from strings_in(json.loads(value))
            except ValueError:
                yield from _TOKEN.findall(value)  # cut short: its words still count


def values_in_message(body: str) -> set[str]:
    """The values a queue message carries, to find the items it belongs to."""
    try:
        return set(strings_in(json.loads(body)))
    except ValueError:
        return set(_TOKEN.findall(body))


# Logs


def attribute_logs(lines: Iterable[str]) -> list[tuple[tuple[tuple[str, int], ...], str]]:
    """Each line of one function's log with the runs it may belong to, a run being (request
    id, index: retries reuse the request id).

    Lambda's `START` ... `REPORT` lines bracket a run; concurrent workers of one function
    share the log, so a line written while several runs are open may be any of theirs.
    """
    open_runs: dict[str, int] = {}
    runs: dict[str, int] = defaultdict(int)
    attributed = []
    for line in lines:
        marker = _REQUEST_LINE.match(line)
        if marker:
            what, request_id = marker.groups()
            if what == "START":
                open_runs[request_id] = runs[request_id]
                runs[request_id] += 1
            run = open_runs.get(request_id, max(runs[request_id] - 1, 0))
            attributed.append((((request_id, run),), line))
            if what == "REPORT":
                open_runs.pop(request_id, None)
        else:
            attributed.append((tuple(open_runs.items()), line))
    return attributed


# Failure reasons


# Where each sender of dead letters puts its reason: (code attribute, message attribute).
_REASON_ATTRIBUTES = (
    ("ERROR_CODE", "ERROR_MESSAGE"),  # EventBridge, a rule target's DLQ
    ("X-Amz-Scheduler-Error-Code", "X-Amz-Scheduler-Error-Message"),  # EventBridge Scheduler
    ("ErrorCode", "ErrorMessage"),  # Lambda, a function's DeadLetterConfig
)


def failure_reason(attributes: Mapping[str, str], body: Any) -> str:
    """Why a message is in a failure queue: EventBridge, Scheduler and a function's dead-letter
    queue say so in the message attributes, a Lambda destination in its invocation record."""
    for code, message in _REASON_ATTRIBUTES:
        if code in attributes:
            return f"{attributes[code]}: {attributes.get(message, '')}"
    if not isinstance(body, dict):
        return "unknown"
    response = body.get("responsePayload") or {}
    condition = body.get("requestContext", {}).get("condition", "")
    return f"{condition}: {response.get('errorType', '')}: {response.get('errorMessage', '')}"


# The journey


def function_name(arn: str) -> str:
    """A Lambda ARN's function name; any other ARN as it is."""
    parts = arn.split(":")
    return parts[6] if arn.startswith("arn:aws:lambda:") and len(parts) > 6 else arn


def build_journey(
    item: Mapping[str, Any],
    key_name: str,
    table: str,
    records: Iterable[Entry] = (),
    logs: Mapping[str, list[str]] | None = None,
    rule_targets: Mapping[tuple[str, str], int] | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The journey of `item` from its history `records` (those `HistoryIndex.records_of`
    gives) and its functions' `logs` (service -> lines).

    `rule_targets` ((bus, rule) -> number of targets) tells how many deliveries each event
    is owed, so an item whose deliveries have not all started is still "in progress";
    `labels` (function name -> service) names the lane of a delivery before its target ran.
    Without records (a deployed stack read from its table) the journey is the steps alone.
    """
    key = str(item.get(key_name, ""))
    records = sorted(records, key=lambda r: r.id)
    labels = dict(labels or {})
    for body in _of(records, InvocationRun):
        labels.setdefault(body.function, body.service)
    events = {body.event["id"]: body for body in _of(records, EventPut)}

    entries = _invocations(key, records, events, logs or {})
    entries += _events(records, entries)
    entries += _deliveries(records, events, labels)
    entries += _dead_letters(records, events, labels)
    entries += _new_hops(records, labels)
    services = [e["lane"] for e in entries]
    entries += [
        {"kind": "stamp", "lane": step_lane(name, services), "at": at, "attribute": name,
         "value": item[name], "text": f"stamped {name} = {item[name]}"}
        for name, at in steps_of(item).items()
    ]
    entries.sort(key=lambda e: (e["at"], _KIND_ORDER[e["kind"]]))

    origin = entries[0]["at"] if entries else None
    end = max((e.get("end", e["at"]) for e in entries), default=None)
    for entry in entries:
        entry["offset_ms"] = _ms(entry["at"] - origin)  # type: ignore[operator]
        if "end" in entry:
            entry["end_offset_ms"] = _ms(entry.pop("end") - origin)  # type: ignore[operator]
        entry.pop("recorded", None)
    lanes: dict[str, float] = {}
    for entry in entries:
        lanes.setdefault(entry["lane"], entry["offset_ms"])
    return {
        "table": table,
        "key_name": key_name,
        "key": key,
        "item": dict(item),
        "origin": origin,
        "origin_time": _iso(origin) if origin is not None else None,
        "duration_ms": _ms(end - origin) if origin is not None else None,  # type: ignore[operator]
        "status": _status(records, rule_targets),
        "lanes": [{"name": name, "first_offset_ms": at} for name, at in lanes.items()],
        "steps": [
            {"attribute": e["attribute"], "lane": e["lane"], "offset_ms": e["offset_ms"],
             "value": e["value"]}
            for e in entries if e["kind"] == "stamp"
        ],
        "entries": entries,
        "other_logs": _other_logs(key, entries, logs or {}),
    }


def _of(records: Iterable[Entry], kind: type[T]) -> list[T]:
    return [r.record for r in records if isinstance(r.record, kind)]


def _invocations(key: str, records: list[Entry], events: Mapping[str, EventPut],
                 logs: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    ours = {body.request_id for body in _of(records, InvocationRun)}
    runs_by_service = {service: _runs(lines, ours, key) for service, lines in logs.items()}
    run_count: dict[str, int] = defaultdict(int)
    entries = []
    runs = [r for r in records if isinstance(r.record, InvocationRun)]
    for record in sorted(runs, key=lambda r: r.record.started):
        body: InvocationRun = record.record
        request_id = body.request_id
        lines = []
        if body.error_type != INJECTED_FAULT:  # one the worker never saw: no log
            run = run_count[request_id]
            run_count[request_id] += 1
            lines = runs_by_service.get(body.service, {}).get((request_id, run), [])
        init_ms = body.init_duration_ms or 0.0
        end = body.started + (init_ms + body.duration_ms) / 1000
        entry = {
            "kind": "invocation", "lane": body.service, "at": body.started, "end": end,
            "recorded": record.at,
            "function": body.function, "request_id": request_id, "ok": body.ok,
            "trigger": body.trigger,
            "attempt": body.attempt, "retry": (body.attempt or 1) > 1,
            "event_id": body.event_id, "rule": body.rule,
            "duration_ms": body.duration_ms, "init_duration_ms": body.init_duration_ms,
            "max_memory_mb": body.max_memory_mb, "memory_mb": body.memory_mb,
            "error": (f"{body.error_type}: {body.error_message}" if not body.ok else None),
            "logs": lines,
            "report": next((line for line in lines if line.startswith("REPORT ")), None),
        }
        entry["text"] = _invocation_text(entry, events)
        entries.append(entry)
    return entries


def _runs(lines: list[str], ours: set[str], key: str) -> dict[tuple[str, int], list[str]]:
    """Log lines by run. A line written while several runs were open goes to the one of ours
    among them when it names the item's key."""
    runs: dict[tuple[str, int], list[str]] = defaultdict(list)
    for candidates, line in attribute_logs(lines):
        if len(candidates) > 1:
            mine = [run for run in candidates if run[0] in ours]
            candidates = tuple(mine) if len(mine) == 1 and key and key in line else ()
        if len(candidates) == 1:
            runs[candidates[0]].append(line)
    return runs


def _detail_type(events: Mapping[str, EventPut], event_id: str | None) -> str:
    put = events.get(event_id or "")
    return str(put.event.get("detail-type", "?")) if put else "?"


def _invocation_text(entry: dict[str, Any], events: Mapping[str, EventPut]) -> str:
    if entry["trigger"] == "api":
        cause = "invoked by the API"
    elif entry["trigger"] != "event" or not entry["event_id"]:
        cause = f"invoked ({entry['trigger']})"
    else:
        cause = f"invoked for {_detail_type(events, entry['event_id'])} by rule {entry['rule']}"
        if entry["attempt"]:
            cause += f", attempt {entry['attempt']}"
            if entry["retry"]:
                cause += " (retry)"
    outcome = "ok" if entry["ok"] else "failed"
    figures = f"{entry['duration_ms']:g} ms"
    if entry["init_duration_ms"]:
        figures += f", cold start {entry['init_duration_ms']:.1f} ms"
    if entry["max_memory_mb"] is not None and entry["memory_mb"]:
        figures += f", {entry['max_memory_mb']} of {entry['memory_mb']} MB"
    text = f"{cause}: {outcome} ({figures})"
    return text + f": {entry['error']}" if entry["error"] else text


def _events(records: list[Entry], invocations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries = []
    for record in records:
        body, at = record.record, record.at
        if not isinstance(body, EventPut):
            continue
        event = body.event
        publisher = _publisher(at, event.get("source", ""), invocations)
        rules = body.rules
        matched = (f"rule {', '.join(rules)} matched" if len(rules) == 1
                   else f"rules {', '.join(rules)} matched" if rules else "matched no rule")
        entries.append({
            "kind": "event", "at": at,
            "lane": publisher["lane"] if publisher else event.get("source", "?"),
            "publisher": publisher["request_id"] if publisher else None,
            "event_id": event["id"], "detail_type": event.get("detail-type"),
            "source": event.get("source"), "bus": body.bus, "rules": rules,
            "text": f"published {event.get('detail-type')} (source {event.get('source')}) "
                    f"on bus {body.bus}: {matched}",
        })
    return entries


def _publisher(at: float, source: str,
               invocations: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The invocation that put the event: one whose handler was running then, preferably of
    the service the event's source names (`fulfilment_service`: FulfilmentService), else the
    latest started.

    Running: from its start after the cold start to when its end was recorded. The figures
    Lambda reports (init, duration) leave out the moments the sandbox takes to start a
    worker, so the reported end can come before the publish; the record cannot.
    """
    running = [i for i in invocations
               if i["at"] + (i["init_duration_ms"] or 0) / 1000 - _PUBLISH_SLACK_S
               <= at <= max(i["end"], i["recorded"]) + _PUBLISH_SLACK_S]
    named = [i for i in running if _squash(i["lane"]) == _squash(source)]
    return max(named or running, key=lambda i: i["at"], default=None)


def _deliveries(records: list[Entry], events: Mapping[str, EventPut],
                labels: Mapping[str, str]) -> list[dict[str, Any]]:
    entries = []
    for record in records:
        body, at = record.record, record.at
        if not isinstance(body, DeliveryAttempt):
            continue
        target = function_name(body.target)
        detail_type = _detail_type(events, body.event_id)
        lane = labels.get(target, target)
        if body.ok:
            text = f"EventBridge delivered {detail_type} (rule {body.rule})"
            if body.input is not None:
                text += ", input transformed"
        else:
            text = (f"EventBridge could not deliver {detail_type} (rule {body.rule}), "
                    f"attempt {body.attempt}: {body.error_code}: {body.error_message}")
        entries.append({
            "kind": "delivery", "lane": lane, "at": at, "event_id": body.event_id,
            "rule": body.rule, "target": body.target, "attempt": body.attempt,
            "ok": body.ok, "retry": body.attempt > 1, "input": body.input,
            "error": None if body.ok else f"{body.error_code}: {body.error_message}",
            "text": text,
        })
    return entries


def _dead_letters(records: list[Entry], events: Mapping[str, EventPut],
                  labels: Mapping[str, str]) -> list[dict[str, Any]]:
    entries = []
    for record in records:
        body, at = record.record, record.at
        if not isinstance(body, DeadLetter):
            continue
        if body.source == "lambda":
            lane = body.function or "?"
            reason = failure_reason({}, body.record)
        else:
            target = function_name(body.attributes.get("TARGET_ARN", "?"))
            lane = labels.get(target, target)
            reason = failure_reason(body.attributes, None)
        queue = (body.queue or "").split(":")[-1] or None
        where = f"failure queue {queue}" if queue else "no failure queue: dropped"
        entries.append({
            "kind": "dead-letter", "lane": lane, "at": at, "queue": queue,
            "source": body.source, "event_id": body.event_id, "reason": reason,
            "text": f"sent to {where}: {reason}",
        })
    return entries


def _new_hops(records: list[Entry], labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """A schedule firing, an authorizer asked, a destination taken: one line each."""
    entries = []
    for record in records:
        body, at = record.record, record.at
        if isinstance(body, ScheduleFired):
            how = "fired by hand" if body.manual else "fired"
            entries.append({"kind": "schedule", "lane": "EventBridge", "at": at,
                            "event_id": body.event_id, "schedule": body.schedule,
                            "text": f"schedule {body.schedule} ({body.expression}) {how}, "
                                    f"due {body.scheduled_time}"})
        elif isinstance(body, AuthorizerRan):
            lane = labels.get(body.function, body.function)
            cached = " (cached answer)" if body.cached else ""
            entries.append({"kind": "authorizer", "lane": lane, "at": at, "ok":
                            body.effect == "Allow", "authorizer": body.authorizer,
                            "text": f"authorizer {body.authorizer} ran: {body.effect}{cached}"})
        elif isinstance(body, MessageQueued) and body.via not in QUEUED_ELSEWHERE:
            queue = body.queue.split(":")[-1]
            how = QUEUED_BY.get(body.via, "put in")
            entries.append({"kind": "queued", "lane": queue, "at": at,
                            "message_id": body.message_id, "text": f"{how} queue {queue}"})
        elif isinstance(body, BatchRun):
            source = _source_name(body.source)
            lane = labels.get(body.function, body.function)
            outcome = ("all handled" if not body.failed_ids else
                       f"{len(body.failed_ids)} kept for another try" if body.ok else
                       "the run failed: every message comes back")
            entries.append({"kind": "batch", "lane": lane, "at": at, "ok": not body.failed_ids,
                            "request_id": body.request_id,
                            "text": f"took a batch of {len(body.message_ids)} from {source}: "
                                    f"{outcome}"})
        elif isinstance(body, MessageRedriven):
            queue = body.queue.split(":")[-1]
            entries.append({"kind": "redriven", "lane": queue, "at": at, "ok": False,
                            "message_id": body.message_id,
                            "text": f"moved to {body.dead_letter_queue.split(':')[-1]} after "
                                    f"{body.receives} receives"})
        elif isinstance(body, DestinationTaken):
            where = body.destination.split(":")[-1].split("/")[-1]
            outcome = "" if body.ok else f", which refused it: {body.error_message}"
            entries.append({"kind": "destination", "lane": body.function, "at": at,
                            "ok": body.ok, "event_id": body.event_id, "route": body.route,
                            "text": f"Lambda sent the {body.condition} record to {where} "
                                    f"({body.route}){outcome}"})
    return entries


def _source_name(arn: str) -> str:
    """What a batch came from: a queue's name, or a table's for its stream."""
    if ":dynamodb:" in arn:
        return arn.split(":table/", 1)[-1].split("/")[0] + " stream"
    return arn.split(":")[-1]


def _other_logs(key: str, entries: list[dict[str, Any]],
                logs: Mapping[str, list[str]]) -> list[dict[str, str]]:
    """Log lines naming the item that none of its invocations claims."""
    shown = {line for e in entries for line in e.get("logs", ())}
    return [{"lane": service, "line": line}
            for service, lines in logs.items() for line in lines
            if key and key in line and line not in shown]


def _status(records: list[Entry],
            rule_targets: Mapping[tuple[str, str], int] | None) -> str | None:
    """"complete", "in progress" (some delivery or invocation it is owed has not ended) or
    "failed" (something of it ended in a failure queue, or its API call failed); None with
    no history to tell."""
    if not records:
        return None
    owed: dict[str, int] = {}  # event id -> deliveries it is owed
    started: set[tuple[str, str, str]] = set()  # (event id, rule, target): legs under way
    ended: set[tuple[str, str, str]] = set()
    failed = False
    for record in records:
        body = record.record
        if isinstance(body, EventPut):
            event_id = body.event["id"]
            if rule_targets is not None:
                owed[event_id] = sum(rule_targets.get((body.bus, rule), 0)
                                     for rule in body.rules)
        elif isinstance(body, DeliveryAttempt):
            leg = (body.event_id, body.rule, function_name(body.target))
            started.add(leg)
            if body.ok and not body.target.startswith("arn:aws:lambda:"):
                ended.add(leg)
        elif isinstance(body, InvocationRun):
            if body.trigger == "api":
                failed |= not body.ok
            elif body.ok and body.event_id:
                ended.add((body.event_id, body.rule or "", body.function))
        elif isinstance(body, DeadLetter):
            failed = True
            if body.source == "lambda":
                arn = (body.record or {}).get("requestContext", {}).get("functionArn", "")
                ended.add((body.event_id or "", body.rule or "", function_name(arn)))
            else:
                rule = body.attributes.get("RULE_ARN", "").split("/")[-1]
                ended.add((body.event_id or "", rule,
                           function_name(body.attributes.get("TARGET_ARN", ""))))
    if failed:
        return "failed"
    legs_started: dict[str, int] = defaultdict(int)
    for event_id, _, _ in started:
        legs_started[event_id] += 1
    under_way = started - ended
    not_begun = any(legs_started[event_id] < n for event_id, n in owed.items())
    return "in progress" if under_way or not_begun else "complete"


# Lists of items


def summary(journey: Mapping[str, Any]) -> dict[str, Any]:
    """What a list of items shows of one: its steps' offsets, status and duration."""
    return {
        "table": journey["table"],
        "key_name": journey["key_name"],
        "key": journey["key"],
        "origin": journey["origin"],
        "origin_time": journey["origin_time"],
        "steps": {s["attribute"]: s["offset_ms"] for s in journey["steps"]},
        "status": journey["status"],
        "duration_ms": journey["duration_ms"],
    }


def step_names(summaries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every step any item has, earliest on average first: the columns of a list."""
    offsets: dict[str, list[float]] = defaultdict(list)
    for item in summaries:
        for name, offset in item["steps"].items():
            offsets[name].append(offset)
    return sorted(offsets, key=lambda name: (sum(offsets[name]) / len(offsets[name]), name))


def newest_first(summaries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(summaries, key=lambda s: s["origin"] or 0.0, reverse=True)


# Text


def duration_text(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(ms / 1000, 60)
    return f"{minutes:.0f} min {seconds:.0f} s"


def text_timeline(journey: Mapping[str, Any], with_logs: bool = False) -> str:
    """The journey as `trace` prints it: the services in the order they first acted, then
    every entry at its offset (failures marked `!`), with each invocation's log lines if
    asked."""
    status = journey["status"] or f"{len(journey['steps'])} steps"
    lines = [
        f"{journey['key_name']} {journey['key']} in table {journey['table']}",
        f"started {journey['origin_time'] or '-'}, {status}, "
        f"took {duration_text(journey['duration_ms'])}",
        "",
        "services, in the order they first acted:",
    ]
    width = max((len(lane["name"]) for lane in journey["lanes"]), default=0)
    for lane in journey["lanes"]:
        offset = "+" + duration_text(lane["first_offset_ms"])
        lines.append(f"  {lane['name']:<{width}}  {offset:>9}")
    lines += ["", "timeline:"]
    for entry in journey["entries"]:
        mark = "!" if entry.get("ok") is False or entry["kind"] == "dead-letter" else " "
        offset = "+" + duration_text(entry["offset_ms"])
        lines.append(f"{mark} {offset:>9}  {entry['lane']:<{width}}  {entry['text']}")
        if with_logs:
            lines += [f"  {'':>9}  {'':<{width}}    | {line}" for line in entry.get("logs", ())]
    if journey["other_logs"]:
        lines += ["", "other log lines naming it:"]
        lines += [f"  [{log['lane']}] {log['line']}" for log in journey["other_logs"]]
    return "\n".join(lines)


def text_list(summaries: list[Mapping[str, Any]]) -> str:
    """Items as `orders` prints them, newest first."""
    if not summaries:
        return "no items"
    names = step_names(summaries)
    width = max(len(str(s["key"])) for s in summaries)
    key_name = " / ".join(sorted({str(s["key_name"]) for s in summaries}))
    width = max(width, len(key_name))
    lines = [f"{key_name:<{width}}  {'started':<24}  {'steps':>5}  {'status':<11}  took"]
    for item in summaries:
        steps = f"{len(item['steps'])}/{len(names)}"
        lines.append(f"{item['key']!s:<{width}}  {item['origin_time'] or '-':<24}  {steps:>5}  "
                     f"{item['status'] or '-':<11}  {duration_text(item['duration_ms'])}")
    return "\n".join(lines)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
