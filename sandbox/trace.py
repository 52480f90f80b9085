"""`trace` and `orders`: a request's trace, or a deployed item's journey, in the terminal.

Two sources:
- a sandbox's state folder (read-only, beside a running sandbox or after it): the traces its
  history holds, found by a trace ID, a request or message ID, or a value its events, answers
  or messages carry (an order ID), each printed as a tree of spans with their timings
  (`sandbox.traces`); `orders` asks a running sandbox's console for its items;
- a deployed stack: its table, found through the stack's CloudFormation outputs (or named),
  read with the user's AWS credentials. AWS keeps no such history where we could read it
  cheaply, so a deployed item's journey is its steps (the `time_*` stamps).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sandbox.core.state import State
from sandbox.dynamodb.tables import Table, describe, find, scan
from sandbox.journey import build_journey, newest_first, summary
from sandbox.logs.store import LogStore
from sandbox.traces import query
from sandbox.traces.model import Span, Trace

# The sandbox is on this machine: never through a proxy the environment names.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# What DynamoDB accepts as a table name: other output values (URLs, ARNs) are not tried.
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


class TraceError(Exception):
    """What the user must know to get an answer: no sandbox, no stack, no item."""


# A sandbox's state


def open_state(state_dir: Path) -> State:
    path = state_dir / "sandbox.db"
    if not path.exists():
        raise TraceError(f"no sandbox state at {state_dir} (say where with --state)")
    return State(path, read_only=True)


def state_traces(state: State, text: str) -> list[Trace]:
    """The traces `text` leads to, newest first."""
    found = query.find(state, text)
    if not found:
        raise TraceError(f"no trace holds {text} in {state.path.parent}")
    return sorted(found, key=lambda t: t.start, reverse=True)


def ms_text(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def text_trace(trace: Trace, logs: Callable[[Span], list[str]] | None = None) -> str:
    """A trace as `trace` prints it: a line of summary, then each span under its parent, with
    its offset from the trace's start, its duration, its service and resource, and the reason
    of a failure (marked `!`); each invocation's log lines when `logs` reads them."""
    summary = trace.summary()
    status = "ok" if summary["ok"] else f"{len(summary['errors'])} failed"
    lines = [f"trace {trace.trace_id}  {summary['entry']}  {ms_text(summary['duration_ms'])}  "
             f"{status}  ({summary['spans']} spans: {', '.join(summary['services'])})"]
    for depth, span in trace.walk():
        mark = " " if span.ok else "!"
        offset = "+" + ms_text((span.start - trace.start) * 1000)
        where = span.service + (f" {short(span.resource)}" if span.resource else "")
        line = (f"{mark} {offset:>10} {ms_text(span.duration_ms):>10}  {'  ' * depth}"
                f"{span.name}  [{where}]")
        lines.append(line + (f"  {span.reason}" if span.reason and not span.ok else ""))
        pad = " " * (25 + 2 * depth)
        lines += [f"{pad}| {text}" for text in (logs(span) if logs else [])]
    return "\n".join(lines)


def short(resource: str) -> str:
    """An ARN's last part (a function's, a queue's name), as the services name it."""
    return resource.split(":")[6] if resource.startswith("arn:") and \
        resource.count(":") >= 6 else resource


def invocation_logs(state: State) -> Callable[[Span], list[str]]:
    """An invocation's lines, whichever log group its function writes to (each line names its
    invocation)."""
    store = LogStore(state)

    def lines(span: Span) -> list[str]:
        request_id = getattr(span.record, "request_id", None)
        return store.invocation(request_id) if span.kind == "invocation" and request_id else []

    return lines


# A running sandbox


def sandbox_get(url: str, path: str, **query: str) -> dict[str, Any]:
    address = f"{url}/console/api/{path}" + (f"?{urlencode(query)}" if query else "")
    try:
        with _LOCAL.open(address, timeout=30) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as error:
        try:
            message = json.load(error).get("message", str(error))
        except ValueError:
            message = str(error)
        raise TraceError(message) from None
    except (urllib.error.URLError, OSError) as error:
        raise TraceError(f"no sandbox answering at {url} ({error}): start it with `make run`, "
                         "or say its --port") from None


def sandbox_items(url: str) -> tuple[list[dict[str, Any]], int]:
    """The newest items (the console lists a few hundred at most) and how many there are."""
    overview = sandbox_get(url, "overview")
    return overview["items"], overview["total"]


# A deployed stack


def aws_session(profile: str | None, region: str | None) -> boto3.Session:
    """The user's own credentials and region, found as the AWS CLI finds them."""
    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except BotoCoreError as error:
        raise TraceError(f"AWS: {error}") from None


def stack_table(cloudformation: Any, dynamodb: Any, stack_name: str) -> Table:
    """The table a stack names in its outputs: outputs whose key says `Table` first, then any
    output whose value is the name of a table that exists."""
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise TraceError(f"stack {stack_name}: {error.response['Error']['Message']}") from None
    outputs = stack.get("Outputs", [])
    ranked = sorted(outputs, key=lambda o: "table" not in o["OutputKey"].lower())
    for output in ranked:
        value = str(output.get("OutputValue", ""))
        if not _TABLE_NAME.match(value):
            continue
        try:
            return describe(dynamodb, value)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("ResourceNotFoundException",
                                                       "ValidationException"):
                raise
    keys = ", ".join(o["OutputKey"] for o in outputs) or "none"
    raise TraceError(f"stack {stack_name} has no output naming a DynamoDB table that exists "
                     f"(outputs: {keys}): name the table with --table")


def deployed_table(session: Any, stack_name: str | None, table_name: str | None) -> Table:
    dynamodb = session.client("dynamodb")
    try:
        if table_name:
            return describe(dynamodb, table_name)
        if stack_name:
            return stack_table(session.client("cloudformation"), dynamodb, stack_name)
    except ClientError as error:
        raise TraceError(error.response["Error"]["Message"]) from None
    except BotoCoreError as error:
        raise TraceError(f"AWS: {error}") from None
    raise TraceError("say which deployed table: --stack NAME or --table NAME")


def deployed_journey(session: Any, stack_name: str | None, table_name: str | None,
                     key: str) -> dict[str, Any]:
    table = deployed_table(session, stack_name, table_name)
    try:
        item = find(session.client("dynamodb"), table, key)
    except (ClientError, BotoCoreError) as error:
        raise TraceError(f"AWS: {error}") from None
    if item is None:
        raise TraceError(f"no item with {table.key_name} {key} in table {table.name}")
    return build_journey(item, table.key_name, table.name)


def deployed_items(session: Any, stack_name: str | None,
                   table_name: str | None) -> tuple[list[dict[str, Any]], int]:
    """Every item of the table, newest first, and how many."""
    table = deployed_table(session, stack_name, table_name)
    try:
        items = scan(session.client("dynamodb"), table)
    except (ClientError, BotoCoreError) as error:
        raise TraceError(f"AWS: {error}") from None
    summaries = [summary(build_journey(item, table.key_name, table.name)) for item in items]
    return newest_first(summaries), len(summaries)
