"""What the console, `trace` and the OTLP export ask of the traces, each answered by indexed
queries (`sandbox.traces.store`), so each costs the same however long the history grows.

- `recent(state, limit)`: the newest traces, summarised (entry point, duration, status,
  services, errors);
- `one(state, trace_id)`: one trace as a tree;
- `find(state, text)`: the traces a trace ID, a request or message ID, or a value of an event,
  answer or message (an order ID) leads to, newest first;
- `of_resource(state, arn)`: the newest spans of a bus, function, queue...;
- `since(state, cursor)`: the spans written after a cursor, and the new cursor: a live view
  reads only what changed.
"""

from __future__ import annotations

from sandbox.core.history import Entry
from sandbox.core.state import State
from sandbox.traces import context, store
from sandbox.traces.model import Span, Trace, span_of

RECENT_SCAN = 4  # root spans read per trace listed: a trace may have a few (a retried entry)


def one(state: State, trace_id: str) -> Trace | None:
    with state.reading() as db:
        entries = store.trace_rows(db, trace_id)
    return Trace(trace_id, [span_of(e) for e in entries]) if entries else None


def entries_of(state: State, trace_ids: list[str]) -> list[Entry]:
    """The history rows of these traces, in history order (what `sandbox.journey` reads)."""
    with state.reading() as db:
        rows = [e for trace_id in trace_ids for e in store.trace_rows(db, trace_id)]
    return sorted(rows, key=lambda e: e.id)


def trace_ids(state: State, text: str, limit: int = 20) -> list[str]:
    """The traces `text` names: a trace ID (alone, or as a whole `X-Amzn-Trace-Id` header),
    or a value they carry."""
    text = text.strip()
    text = context.parse_header(text).get("Root", text) if text.startswith("Root=") else text
    with state.reading() as db:
        if store.trace_rows(db, text):
            return [text]
        return store.traces_with(db, text, limit)


def find(state: State, text: str, limit: int = 20) -> list[Trace]:
    return [t for t in (one(state, i) for i in trace_ids(state, text, limit)) if t]


def recent(state: State, limit: int = 50) -> list[dict]:
    """The newest traces' summaries, newest first."""
    with state.reading() as db:
        roots = store.roots(db, limit * RECENT_SCAN)
    ids = list(dict.fromkeys(r.record.stamp.trace_id for r in roots))[:limit]
    return [t.summary() for t in (one(state, i) for i in ids) if t]


def of_resource(state: State, resource: str, limit: int = 100) -> list[Span]:
    with state.reading() as db:
        return [span_of(e) for e in store.of_resource(db, resource, limit)]


def since(state: State, cursor: int, limit: int = 1000) -> tuple[list[Span], int]:
    """The spans written after `cursor`, oldest first, and the cursor to ask from next."""
    with state.reading() as db:
        entries = store.since(db, cursor, limit)
    return [span_of(e) for e in entries], entries[-1].id if entries else cursor


def cursor(state: State) -> int:
    with state.reading() as db:
        return store.cursor(db)
