"""Which trace and span the work in progress belongs to, carried as AWS carries it.

AWS passes causality in one header, `X-Amzn-Trace-Id: Root=1-<8 hex time>-<24 hex>;Parent=<16
hex>;Sampled=1` (X-Ray's format). Lambda hands it to each invocation (`Lambda-Runtime-Trace-Id`,
which the runtime client puts in `_X_AMZN_TRACE_ID`); botocore's `add_recursion_detection_header`
then sends it with every AWS call the function makes; SQS keeps it as a message's
`AWSTraceHeader` system attribute. The sandbox does the same, and between its own hops the
context travels in the job's payload (`trace`), so it survives a restart.

A span's id is chosen when its work starts, before its history record exists: children (a
delivery job, the invocation a function's own calls come from) must name it as their parent.
`span(kind)` opens one; the first history record of that kind created inside it *is* that
span (`claim`); any other record created inside becomes a child span of it. Work that arrives
with a context (a header, a job) `resume`s it: what it records are children of that parent.

Only the standard library: `sandbox.core.history` stamps each record with this at creation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sandbox.core import ids


@dataclass(frozen=True)
class Stamp:
    """Where one history record sits in its trace: it is the span `span_id`."""

    trace_id: str  # X-Ray form: 1-<8 hex>-<24 hex>
    span_id: str  # 16 hex
    parent_id: str | None
    start: float  # epoch seconds; the record's row says when it ended
    # When the work ended, if before the commit that stores the record (a rule's delivery,
    # committed with the invocation it handed on: `sandbox.core.delivery`); None: at the commit.
    end: float | None = None


@dataclass
class Open:
    """A span whose work is under way (or a remote parent, `kind` None: nothing claims it)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    start: float
    kind: str | None
    claimed: bool = False


_current: ContextVar[Open | None] = ContextVar("trace", default=None)


def new_trace_id(now: float | None = None) -> str:
    return f"1-{int(now or time.time()):08x}-{ids.hex_id(96)}"


def new_span_id() -> str:
    return ids.hex_id(64)


def current() -> Open | None:
    return _current.get()


@contextmanager
def _entered(span: Open | None) -> Iterator[Open | None]:
    token = _current.set(span)
    try:
        yield span
    finally:
        _current.reset(token)


def span(kind: str) -> Iterator[Open | None]:
    """A new span under the current one (a new trace when there is none), for the first record
    of `kind` to claim. An unclaimed span of the same kind is kept, not nested: an asynchronous
    invocation's job and the invocation it runs are one span."""
    parent = current()
    if parent is not None and parent.kind == kind and not parent.claimed:
        return _entered(parent)
    now = time.time()
    if parent is None:
        return _entered(Open(new_trace_id(now), new_span_id(), None, now, kind))
    return _entered(Open(parent.trace_id, new_span_id(), parent.span_id, now, kind))


def resume(carried: list[str] | tuple[str, ...] | None) -> Iterator[Open | None]:
    """Continue a context carried by a job (`[trace_id, parent span id]`), or, without one,
    leave the work to start its own trace."""
    if not carried:
        return _entered(None)
    trace_id, parent_id = carried[0], carried[1] if len(carried) > 1 else None
    return _entered(Open(trace_id, parent_id or new_span_id(), None, time.time(), None))


def resume_header(header: str | None) -> Iterator[Open | None]:
    """Continue an incoming `X-Amzn-Trace-Id` (or `AWSTraceHeader`); a missing or malformed
    one starts nothing: the work starts its own trace, as X-Ray does."""
    fields = parse_header(header)
    root = fields.get("Root")
    if not root or not _is_root(root):
        return _entered(None)
    return resume([root, fields.get("Parent") or ""])


def carried() -> list[str] | None:
    """The context for work that continues later (a job's payload): trace and parent span."""
    span_now = current()
    return None if span_now is None else [span_now.trace_id, span_now.span_id]


def header() -> str:
    """The header of the current span, as Lambda hands it to an invocation (sampled: the
    sandbox records every span). Outside any span, a fresh trace."""
    span_now = current()
    if span_now is None:
        return f"Root={new_trace_id()};Parent={new_span_id()};Sampled=1"
    return f"Root={span_now.trace_id};Parent={span_now.span_id};Sampled=1"


def claim(kind: str) -> Stamp:
    """The stamp of a record of `kind` created now: the current span when it is of that kind
    and not taken yet, else a child of it (or the root of a new trace)."""
    now = time.time()
    span_now = current()
    if span_now is None:
        return Stamp(new_trace_id(now), new_span_id(), None, now)
    if span_now.kind == kind and not span_now.claimed:
        span_now.claimed = True
        return Stamp(span_now.trace_id, span_now.span_id, span_now.parent_id, span_now.start)
    return Stamp(span_now.trace_id, new_span_id(), span_now.span_id, now)


def parse_header(header: str | None) -> dict[str, str]:
    """`Root=...;Parent=...;Sampled=1` as a dict (X-Ray's header format)."""
    fields = {}
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name and value:
            fields[name] = value
    return fields


def _is_root(root: str) -> bool:
    parts = root.split("-")
    return (len(parts) == 3 and parts[0] == "1" and len(parts[1]) == 8 and len(parts[2]) == 24
            and all(c in "0123456789abcdef" for c in parts[1] + parts[2]))
