"""EventBridge PutEvents semantics: request limits, per-entry errors, and the delivered envelope.

Pure: the bus and its rules are elsewhere. The checks answer as AWS does, codes and messages
included, because publishers branch on them (`FailedEntryCount`, `ErrorCode`), and the envelope
is what every target receives.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

MAX_ENTRIES = 10
# AWS raised the PutEvents limit from 256 KB to 1 MB on 2026-01-29 (AWS Compute Blog, "More room
# to build: serverless services now support payloads up to 1 MB"); measured: 1,048,576 bytes are
# accepted, one more is refused.
MAX_REQUEST_BYTES = 1024 * 1024
# AWS processes a Detail nested up to 1,100 levels deep. The sandbox refuses one nested deeper than
# this, as malformed: past it, Python's recursion limit stops writing the event down or
# delivering it, and an event accepted must never be one the sandbox cannot keep.
MAX_DETAIL_DEPTH = 500
_STRING_FIELDS = ("Source", "DetailType", "Detail", "EventBusName", "TraceHeader")


class PutEventsRequestError(Exception):
    """The whole request is refused: AWS answers HTTP 400 with this code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _entry_time(value: Any) -> datetime | None:
    """An entry's Time: epoch seconds as the SDKs send it, or an ISO 8601 string."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (ValueError, OverflowError, OSError):  # NaN, infinity, beyond year 1..9999
            return None
    if isinstance(value, str):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (ValueError, OverflowError, OSError):
            pass
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def _java(value: Any) -> str:
    """How the service's Java model prints a field inside a validation message."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(_java(item) for item in value) + "]"
    return str(value)


def _describe(entry: dict) -> str:
    time = _entry_time(entry.get("Time"))
    fields = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ") if time else None,
        "source": entry.get("Source"),
        "resources": entry.get("Resources"),
        "detailType": entry.get("DetailType"),
        "detail": entry.get("Detail"),
        "eventBusName": entry.get("EventBusName"),
        "traceHeader": entry.get("TraceHeader"),
        "kmsKeyIdentifier": None,
        "internalMetadata": None,
    }
    return "PutEventsRequestEntry(" + ", ".join(f"{k}={_java(v)}" for k, v in fields.items()) + ")"


def _check_types(entries: list) -> None:
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise PutEventsRequestError("SerializationException", f"Entries[{i}] is not an object")
        for field in _STRING_FIELDS:
            if field in entry and entry[field] is not None and not isinstance(entry[field], str):
                raise PutEventsRequestError(
                    "SerializationException", f"Entries[{i}].{field} must be a string"
                )
        resources = entry.get("Resources")
        if resources is not None and not (
            isinstance(resources, list) and all(isinstance(r, str) for r in resources)
        ):
            raise PutEventsRequestError(
                "SerializationException", f"Entries[{i}].Resources must be a list of strings"
            )
        if entry.get("Time") is not None and _entry_time(entry["Time"]) is None:
            raise PutEventsRequestError(
                "SerializationException",
                f"Entries[{i}].Time must be a timestamp (epoch seconds), got {entry['Time']!r}",
            )


def check_request(body: dict) -> list[dict]:
    """The request's entries, or PutEventsRequestError for what fails the whole request."""
    entries = body.get("Entries")
    if entries is None:
        raise PutEventsRequestError(
            "ValidationException",
            "1 validation error detected: Value null at 'entries' failed to satisfy constraint: "
            "Member must not be null",
        )
    if not isinstance(entries, list):
        raise PutEventsRequestError("SerializationException", "Entries must be a list")
    _check_types(entries)
    if not entries:
        raise PutEventsRequestError(
            "ValidationException",
            "1 validation error detected: Value '[]' at 'entries' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1",
        )
    if len(entries) > MAX_ENTRIES:
        listed = ", ".join(_describe(entry) for entry in entries)
        raise PutEventsRequestError(
            "ValidationException",
            f"1 validation error detected: Value '[{listed}]' at 'entries' failed to satisfy "
            f"constraint: Member must have length less than or equal to {MAX_ENTRIES}",
        )
    if sum(entry_size(entry) for entry in entries) > MAX_REQUEST_BYTES:
        raise PutEventsRequestError(
            "ValidationException", "Total size of the entries in the request is over the limit."
        )
    return entries


def entry_size(entry: dict) -> int:
    """AWS's documented size of an entry ("Calculating PutEvents event entry size")."""
    size = 14 if entry.get("Time") is not None else 0
    # surrogatepass: JSON may carry a lone surrogate (\\ud800), which strict UTF-8 refuses.
    for field in ("Source", "DetailType", "Detail"):
        size += len((entry.get(field) or "").encode(errors="surrogatepass"))
    size += sum(len(resource.encode(errors="surrogatepass"))
                for resource in entry.get("Resources") or [] if resource)
    return size


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def check_entry(entry: dict) -> tuple[str, str] | None:
    """(ErrorCode, ErrorMessage) as AWS reports a failed entry, or None for an entry it accepts."""
    for field in ("Source", "DetailType", "Detail"):
        if not entry.get(field):
            return (
                "InvalidArgument",
                f"Parameter {field} is not valid. Reason: {field} is a required argument.",
            )
    if entry["Source"].startswith("aws."):  # reserved for events from AWS services
        return "NotAuthorizedForSourceException", "Not authorized for the source."
    try:
        detail = json.loads(entry["Detail"], parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
        detail = None
    if not isinstance(detail, dict) or _depth(detail) > MAX_DETAIL_DEPTH:
        return "MalformedDetail", "Detail is malformed."
    return None


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest in `value`, counted without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, depth)
            todo += [(item, depth + 1) for item in value]
    return deepest


def envelope(entry: dict, account: str, region: str, now: datetime, event_id: str) -> dict:
    """The event as every target receives it, for an entry check_entry accepted."""
    time = _entry_time(entry.get("Time")) or (
        now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    )
    return {
        "version": "0",
        "id": event_id,
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": list(entry.get("Resources") or []),
        "detail": json.loads(entry["Detail"]),
    }


def bus_name(entry: dict) -> str:
    """The bus an entry goes to: EventBusName is a name or an ARN; absent means "default"."""
    name = entry.get("EventBusName") or "default"
    _, found, after = name.partition(":event-bus/")
    return after if name.startswith("arn:") and found else name
