"""CloudWatch Logs' API as the AWS CLI and boto3 speak it: AWS JSON 1.1, the operation named by
`X-Amz-Target: Logs_20140328.<Operation>`, over the function logs the sandbox keeps
(`sandbox.logs.store`).

Served: DescribeLogGroups, DescribeLogStreams, GetLogEvents and FilterLogEvents, which is what
`aws logs tail` (with `--follow` and `--filter-pattern`) calls. Shapes from the CloudWatch Logs
API reference:
- GetLogEvents answers the newest events unless `startFromHead`; `nextForwardToken` and
  `nextBackwardToken` (`f/...`, `b/...`) page forwards and backwards, and a forward token past
  the end comes back unchanged, which is how a reader knows it has everything for now;
- FilterLogEvents searches a group's streams (all, `logStreamNames` or
  `logStreamNamePrefix`) with a filter pattern (`sandbox.logs.patterns`), oldest first, each
  event with its `eventId`; `nextToken` only when there may be more;
- a group or stream that does not exist is `ResourceNotFoundException`, a bad argument
  `InvalidParameterException`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.core.wire import Response, aws_error, json_answer, json_request
from sandbox.logs.patterns import PatternError, matcher
from sandbox.logs.store import Event, LogStore

TARGET_PREFIX = "Logs_20140328."
MAX_EVENTS = 10_000
MAX_DESCRIBED = 50
SCAN_CHUNK = 1_000


class LogsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> LogsError:
    return LogsError("InvalidParameterException", message)


def _token(kind: str, event_id: int) -> str:
    return f"{kind}/{event_id:056d}/s"


def _token_id(token: str, kind: str) -> int:
    parts = token.split("/")
    if len(parts) != 3 or parts[0] != kind or not parts[1].isdigit():
        raise _invalid("The specified nextToken is invalid.")
    return int(parts[1])


def _limit(request: dict[str, Any], high: int) -> int:
    limit = request.get("limit", high)
    if not isinstance(limit, int) or not 1 <= limit <= high:
        raise _invalid(f"1 validation error detected: Value '{limit}' at 'limit' failed to "
                       f"satisfy constraint: Member must have value between 1 and {high}")
    return limit


def _offset(request: dict[str, Any]) -> int:
    token = request.get("nextToken") or "0"
    if not str(token).isdigit():
        raise _invalid("The specified nextToken is invalid.")
    return int(token)


def _page(items: list[dict[str, Any]], key: str, request: dict[str, Any]) -> dict[str, Any]:
    start, limit = _offset(request), _limit(request, MAX_DESCRIBED)
    answer: dict[str, Any] = {key: items[start:start + limit]}
    if start + limit < len(items):
        answer["nextToken"] = str(start + limit)
    return answer


class LogsWire:
    def __init__(self, store: LogStore, region: str, account: str) -> None:
        self.store = store
        self.arn_prefix = f"arn:aws:logs:{region}:{account}:log-group:"
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "DescribeLogGroups": self.describe_log_groups,
            "DescribeLogStreams": self.describe_log_streams,
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
        }

    def handle(self, operation: str, body: bytes) -> Response:
        if operation not in self.operations:
            return aws_error(400, "UnknownOperationException",
                             f"The sandbox does not emulate CloudWatch Logs {operation}")
        request = json_request(body)
        if request is None:
            return aws_error(400, "SerializationException", "Start of structure or map found")
        try:
            return json_answer(self.operations[operation](request))
        except LogsError as failure:
            return aws_error(400, failure.code, failure.message)

    def _group(self, request: dict[str, Any]) -> str:
        """The group a request names, by `logGroupName` or `logGroupIdentifier` (name or ARN)."""
        name = request.get("logGroupName") or request.get("logGroupIdentifier")
        if not isinstance(name, str) or not name:
            raise _invalid("Either logGroupName or logGroupIdentifier must be specified.")
        if name.startswith("arn:"):
            name = name.split(":log-group:", 1)[-1].removesuffix(":*")
        if not self.store.exists(name):
            raise LogsError("ResourceNotFoundException", "The specified log group does not exist.")
        return name

    def describe_log_groups(self, request: dict[str, Any]) -> dict[str, Any]:
        prefix = request.get("logGroupNamePrefix") or ""
        contains = request.get("logGroupNamePattern") or ""
        if prefix and contains:
            raise _invalid("LogGroup name prefix and LogGroup name pattern are mutually "
                           "exclusive parameters.")
        groups = []
        for group in self.store.groups(prefix):
            if contains.lower() not in group["name"].lower():
                continue
            described = {"logGroupName": group["name"], "creationTime": group["created"],
                         "metricFilterCount": 0,
                         "arn": f"{self.arn_prefix}{group['name']}:*",
                         "storedBytes": group["bytes"], "logGroupClass": "STANDARD",
                         "logGroupArn": f"{self.arn_prefix}{group['name']}"}
            if group["retention"]:
                described["retentionInDays"] = group["retention"]
            groups.append(described)
        return _page(groups, "logGroups", request)

    def describe_log_streams(self, request: dict[str, Any]) -> dict[str, Any]:
        group = self._group(request)
        prefix = request.get("logStreamNamePrefix") or ""
        by_time = request.get("orderBy") == "LastEventTime"
        if prefix and by_time:
            raise _invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
        streams = [s for s in self.store.streams(group) if s["name"].startswith(prefix)]
        if by_time:
            streams.sort(key=lambda s: s["last"])
        if request.get("descending"):
            streams.reverse()
        described = [{"logStreamName": s["name"], "creationTime": s["first"],
                      "firstEventTimestamp": s["first"], "lastEventTimestamp": s["last"],
                      "lastIngestionTime": s["last"], "uploadSequenceToken": str(s["last_id"]),
                      "arn": f"{self.arn_prefix}{group}:log-stream:{s['name']}",
                      "storedBytes": 0} for s in streams]
        return _page(described, "logStreams", request)

    def get_log_events(self, request: dict[str, Any]) -> dict[str, Any]:
        group = self._group(request)
        stream = request.get("logStreamName")
        if not any(s["name"] == stream for s in self.store.streams(group)):
            raise LogsError("ResourceNotFoundException",
                            "The specified log stream does not exist.")
        limit = _limit(request, MAX_EVENTS)
        window = {"start": request.get("startTime"), "end": request.get("endTime")}
        token = request.get("nextToken")
        if token and token.startswith("b/"):
            events = self.store.events(group, stream, before=_token_id(token, "b"),
                                       limit=limit, newest=True, **window)
        else:
            after = _token_id(token, "f") if token else 0
            newest = not token and not request.get("startFromHead")
            events = self.store.events(group, stream, after=after, limit=limit,
                                       newest=newest, **window)
        if events:
            forward, backward = _token("f", events[-1].id), _token("b", events[0].id)
        else:
            edge = _token_id(token, token[0]) if token else 0
            forward, backward = _token("f", edge), _token("b", edge)
        return {"events": [{"timestamp": e.at, "message": e.message, "ingestionTime": e.at}
                           for e in events],
                "nextForwardToken": forward, "nextBackwardToken": backward}

    def filter_log_events(self, request: dict[str, Any]) -> dict[str, Any]:
        group = self._group(request)
        names = request.get("logStreamNames")
        prefix = request.get("logStreamNamePrefix")
        if names and prefix:
            raise _invalid("logStreamNames and logStreamNamePrefix are mutually exclusive.")
        try:
            matches = matcher(request.get("filterPattern"))
        except PatternError as error:
            raise _invalid(str(error)) from None
        limit = _limit(request, MAX_EVENTS)

        def wanted(event: Event) -> bool:
            if names and event.stream not in names:
                return False
            if prefix and not event.stream.startswith(prefix):
                return False
            return matches(event.message)

        found, after, more = self._scan(group, _offset(request), limit, wanted,
                                        request.get("startTime"), request.get("endTime"))
        streams = sorted({e.stream for e in found})
        answer: dict[str, Any] = {
            "events": [{"logStreamName": e.stream, "timestamp": e.at, "message": e.message,
                        "ingestionTime": e.at, "eventId": str(e.id)} for e in found],
            "searchedLogStreams": [{"logStreamName": s, "searchedCompletely": not more}
                                   for s in streams]}
        if more:
            answer["nextToken"] = str(after)
        return answer

    def _scan(self, group: str, after: int, limit: int, wanted: Callable[[Event], bool],
              start: int | None, end: int | None) -> tuple[list[Event], int, bool]:
        """Up to `limit` wanted events after id `after`; the last id read, and whether more
        may follow."""
        found: list[Event] = []
        while True:
            chunk = self.store.events(group, after=after, start=start, end=end, limit=SCAN_CHUNK)
            for event in chunk:
                after = event.id
                if wanted(event):
                    found.append(event)
                    if len(found) == limit:
                        return found, after, True
            if len(chunk) < SCAN_CHUNK:
                return found, after, False
