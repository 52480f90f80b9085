"""The history table as spans: the SQL that writes, finds and trims them.

Each history row is one span: its typed record (`sandbox.core.history`) says what happened, and
its columns say where it sits (trace, span, parent, start; `at` is when it ended) and what it
touched (`resource`). There is no second copy: the console, `trace`, the OTLP export and the
bench read the same rows.

Every read is by an index, so it costs the same at 30,000 orders as at 300 (`EXPLAIN QUERY
PLAN` shows no scan of the history, tests/test_traces.py):
- one trace: `history_trace (trace_id)`;
- a trace by a value people search for (an order ID, a message ID, a request ID):
  `trace_values`, value -> the rows that carry it, plus the few rows not indexed yet;
- recent traces: `history_roots`, a partial index of the spans with no parent;
- a resource's spans: `history_resource (resource, id)`;
- what changed since a cursor: the row id, which only grows.

The values are indexed behind the writes (`index_values`, from `sandbox.traces.indexer`), not
in the transactions that hand work on: a commit on an order's path waits for every page it
touches. Replaying 60 orders' rows (`bench/trace_cost.py`), the spans with their values added
1.0-1.3 ms to an order's writes, the spans alone 0.4-0.7 ms. `trace_values_cursor` says how far they
are indexed; a search reads the index, then the rows after the cursor (tens, by their ids).

Retention deletes whole id ranges from the oldest: rows are written in time order, so the
cut is found by a binary search on the primary key, with no index on time to keep up.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from sandbox.core.history import Entry, Record, dumps, loads
from sandbox.traces.context import Stamp
from sandbox.traces.model import resource_of, values_of

# Columns the history table has had since spans (a step of `State`'s UPGRADES adds them).
SPAN_COLUMNS = {"trace_id": "TEXT", "span_id": "TEXT", "parent_id": "TEXT", "start": "REAL",
                "resource": "TEXT"}
CURSOR_TABLE = """
CREATE TABLE IF NOT EXISTS trace_values_cursor (  -- one row: the values are indexed through id
    one INTEGER PRIMARY KEY CHECK (one = 1),
    id INTEGER NOT NULL
)"""
# Created after the upgrades: the columns exist by then.
SCHEMA = """
CREATE INDEX IF NOT EXISTS history_trace ON history (trace_id);
CREATE INDEX IF NOT EXISTS history_roots ON history (id) WHERE parent_id IS NULL;
CREATE INDEX IF NOT EXISTS history_resource ON history (resource, id);
CREATE TABLE IF NOT EXISTS trace_values (  -- the values a row carries, to find its trace
    value TEXT NOT NULL,
    history_id INTEGER NOT NULL,
    PRIMARY KEY (value, history_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trace_values_history ON trace_values (history_id);
""" + CURSOR_TABLE + ";"
INDEX_BATCH = 2_000  # rows one indexing transaction reads
TAIL_LIMIT = 10_000  # rows after the cursor a search reads (a running sandbox lags by tens)
ROW = "id, at, kind, record, trace_id, span_id, parent_id, start"
TRIM_BATCH = 5_000  # rows a trimming transaction deletes: short, so writers hardly wait


def add_span_columns(db: sqlite3.Connection) -> None:
    """State version 1 -> 2: the history's rows become spans. Older rows get a trace each."""
    have = {row[1] for row in db.execute("PRAGMA table_info(history)")}
    for name, kind in SPAN_COLUMNS.items():
        if name not in have:
            db.execute(f"ALTER TABLE history ADD COLUMN {name} {kind}")
    db.execute("UPDATE history SET trace_id = printf('1-%08x-%024x', CAST(at AS INTEGER), id), "
               "span_id = printf('%016x', id), start = at WHERE trace_id IS NULL")


def index_cursor_from_start(db: sqlite3.Connection) -> None:
    """State version 2 -> 3: values are indexed behind the writes. A state whose rows have their
    values already starts indexing after them; an older one from its first row."""
    indexed = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'trace_values'").fetchone()
    db.execute(CURSOR_TABLE)
    db.execute("INSERT OR REPLACE INTO trace_values_cursor (one, id) SELECT 1, "
               + ("COALESCE(MAX(id), 0) FROM history" if indexed else "0"))


def write(db: sqlite3.Connection, records: Iterable[Record], at: float) -> None:
    """History rows, inside the caller's transaction (their values are indexed later)."""
    rows = []
    for record in records:
        stamp = record.stamp
        ended = at if stamp.end is None else stamp.end
        rows.append((ended, record.KIND, dumps(record), stamp.trace_id, stamp.span_id,
                     stamp.parent_id, min(stamp.start, ended), _storable(resource_of(record))))
    db.executemany(
        "INSERT INTO history (at, kind, record, trace_id, span_id, parent_id, start, resource) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def values_cursor(db: sqlite3.Connection) -> int:
    """The row through which the values are indexed."""
    row = db.execute("SELECT id FROM trace_values_cursor WHERE one = 1").fetchone()
    return row[0] if row else 0


def index_values(db: sqlite3.Connection, limit: int = INDEX_BATCH) -> int:
    """Index the values of up to `limit` rows after the cursor, inside the caller's
    transaction; how many rows it read."""
    entries = since(db, values_cursor(db), limit)
    db.executemany("INSERT OR IGNORE INTO trace_values (value, history_id) VALUES (?, ?)",
                   [(value, entry.id) for entry in entries for value in _values(entry.record)])
    if entries:
        db.execute("INSERT OR REPLACE INTO trace_values_cursor (one, id) VALUES (1, ?)",
                   (entries[-1].id,))
    return len(entries)


def _values(record: Record) -> set[str]:
    # SQLite stores text as UTF-8: a lone surrogate (valid in a JSON string, so in an event
    # PutEvents accepted) cannot be stored nor typed into a search, so it is not a value.
    return {value for value in values_of(record) if _storable(value) == value}


def _storable(text: str | None) -> str | None:
    """`text` as SQLite can store it (UTF-8): a lone surrogate becomes U+FFFD."""
    if text is None:
        return None
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def entry_of(row: tuple[Any, ...]) -> Entry:
    stamp = Stamp(row[4], row[5], row[6], row[7] if row[7] is not None else row[1])
    return Entry(row[0], row[1], loads(row[2], row[3], stamp))


# Reading: each function is one indexed query.

def trace_rows(db: sqlite3.Connection, trace_id: str) -> list[Entry]:
    rows = db.execute(f"SELECT {ROW} FROM history WHERE trace_id = ? ORDER BY id",
                      (trace_id,)).fetchall()
    return [entry_of(r) for r in rows]


def traces_with(db: sqlite3.Connection, value: str, limit: int = 20) -> list[str]:
    """The traces whose rows carry `value`, newest first: the rows not indexed yet, then the
    index."""
    fresh = [e.record.stamp.trace_id for e in reversed(since(db, values_cursor(db), TAIL_LIMIT))
             if value in _values(e.record)]
    rows = db.execute(
        "SELECT h.trace_id FROM trace_values v JOIN history h ON h.id = v.history_id "
        "WHERE v.value = ? ORDER BY v.history_id DESC LIMIT ?", (value, limit * 8)).fetchall()
    return list(dict.fromkeys([*fresh, *(r[0] for r in rows)]))[:limit]


def roots(db: sqlite3.Connection, limit: int, before: int | None = None) -> list[Entry]:
    """The spans that start a trace, newest first (before row `before` when given)."""
    rows = db.execute(
        f"SELECT {ROW} FROM history WHERE parent_id IS NULL AND id < ? ORDER BY id DESC "
        "LIMIT ?", (before if before is not None else 2**62, limit)).fetchall()
    return [entry_of(r) for r in rows]


def of_resource(db: sqlite3.Connection, resource: str, limit: int) -> list[Entry]:
    """The newest spans that touched `resource` (an ARN), newest first."""
    rows = db.execute(f"SELECT {ROW} FROM history WHERE resource = ? ORDER BY id DESC LIMIT ?",
                      (resource, limit)).fetchall()
    return [entry_of(r) for r in rows]


def since(db: sqlite3.Connection, cursor: int, limit: int) -> list[Entry]:
    """The rows written after `cursor` (a row id), oldest first."""
    rows = db.execute(f"SELECT {ROW} FROM history WHERE id > ? ORDER BY id LIMIT ?",
                      (cursor, limit)).fetchall()
    return [entry_of(r) for r in rows]


def cursor(db: sqlite3.Connection) -> int:
    return db.execute("SELECT COALESCE(MAX(id), 0) FROM history").fetchone()[0]


# Retention

def last_before(db: sqlite3.Connection, cutoff: float) -> int:
    """The id of the newest row written before `cutoff` (0: none), by a binary search."""
    low, high = db.execute("SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) "
                           "FROM history").fetchone()
    found = 0
    while low and low <= high:
        middle = (low + high) // 2
        row = db.execute("SELECT id, at FROM history WHERE id >= ? ORDER BY id LIMIT 1",
                         (middle,)).fetchone()
        if row is None or row[1] >= cutoff:
            high = middle - 1
        else:
            found, low = row[0], row[0] + 1
    return found


def oldest_ids(db: sqlite3.Connection, count: int) -> int:
    """The id under which the `count` oldest rows are (0: none)."""
    row = db.execute("SELECT id FROM history ORDER BY id LIMIT 1 OFFSET ?",
                     (max(count - 1, 0),)).fetchone()
    return row[0] if row else 0


def delete_through(db: sqlite3.Connection, last_id: int) -> int:
    """One batch of the rows up to `last_id` and their values; how many rows went."""
    first = db.execute("SELECT MIN(id) FROM history").fetchone()[0]
    if first is None or first > last_id:
        return 0
    upto = min(last_id, first + TRIM_BATCH - 1)
    db.execute("DELETE FROM trace_values WHERE history_id <= ?", (upto,))
    return db.execute("DELETE FROM history WHERE id <= ?", (upto,)).rowcount


def history_size(db: sqlite3.Connection) -> tuple[int, int]:
    """Bytes the state file uses (free pages not counted) and the rows of history."""
    page = db.execute("PRAGMA page_size").fetchone()[0]
    used = db.execute("PRAGMA page_count").fetchone()[0] - \
        db.execute("PRAGMA freelist_count").fetchone()[0]
    rows = db.execute("SELECT COALESCE(MAX(id), 0) - COALESCE(MIN(id), 0) + 1 "
                      "FROM history").fetchone()[0]
    return used * page, rows
