"""What the traces cost an order, measured on the run's own history.

Every history row is a span: beside the record the history always held, each row carries its
trace, span, parent and resource, in three indexes. Those writes happen in the transactions that
hand work on, so they are on an order's path; the values a span is found by (an order ID, a
message ID) are indexed behind the work (`sandbox.traces.indexer`). To tell their cost apart,
the bench replays the run's rows twice into scratch databases set up as the sandbox's state is
(WAL, synchronous=NORMAL), each original transaction as one (rows written together share their
`at`): once as the history was before traces (the record alone), once as
`sandbox.traces.store.write` writes it today; then it indexes the values as the indexer does.
The difference over the orders replayed is what the traces add to an order's writes; as some of
them (the fan-out's) run beside each other, it bounds from above what they add to its end to
end. The headers that carry the trace cost string formatting only.
"""

from __future__ import annotations

import itertools
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.core.history import ApiRequest, Record, dumps, loads
from sandbox.core.state import State
from sandbox.traces import indexer, store
from sandbox.traces.context import Stamp

MAX_ROWS = 10_000  # enough for a steady figure; the replay takes seconds, not minutes
ROUNDS = 5  # each replay's figure is the median of its rounds
PLAIN_HISTORY = ("CREATE TABLE history (id INTEGER PRIMARY KEY, at REAL NOT NULL, "
                 "kind TEXT NOT NULL, record TEXT NOT NULL)")


def transactions(history_db: Path, limit: int = MAX_ROWS) -> list[tuple[float, list[Record]]]:
    """The run's first `limit` history rows as the sandbox committed them: grouped by `at`."""
    db = sqlite3.connect(f"file:{history_db}?mode=ro", uri=True)
    try:
        rows = db.execute(f"SELECT {store.ROW} FROM history ORDER BY id LIMIT ?",
                          (limit,)).fetchall()
    finally:
        db.close()
    records = [(at, loads(kind, text, Stamp(trace, span, parent, start)))
               for _, at, kind, text, trace, span, parent, start in rows]
    return [(at, [record for _, record in group])
            for at, group in itertools.groupby(records, key=lambda pair: pair[0])]


def _plain(db: sqlite3.Connection, records: list[Record], at: float) -> None:
    db.executemany("INSERT INTO history (at, kind, record) VALUES (?, ?, ?)",
                   [(at, r.KIND, dumps(r)) for r in records])


def _replay(path: Path, schema: Callable[[sqlite3.Connection], None],
            write: Callable[[sqlite3.Connection, list[Record], float], None],
            groups: list[tuple[float, list[Record]]]) -> float:
    """Seconds to write `groups`, each in its own transaction, into a new database."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        schema(db)
        began = time.perf_counter()
        for at, records in groups:
            db.execute("BEGIN IMMEDIATE")
            write(db, records, at)
            db.execute("COMMIT")
        return time.perf_counter() - began
    finally:
        db.close()


def cost(history_db: Path) -> dict[str, Any]:
    """Milliseconds the traces add to one order's history writes, and what that is made of."""
    groups = transactions(history_db)
    orders = sum(isinstance(r, ApiRequest) for _, records in groups for r in records)
    rows = sum(len(records) for _, records in groups)
    plain, traced, indexing = [], [], []
    for round_ in range(ROUNDS):  # taking turns, as the machine's load drifts
        with tempfile.TemporaryDirectory(prefix="bench-traces-") as folder:
            traced_db = Path(folder) / f"traced-{round_}.db"
            State(traced_db).close()  # the sandbox's own schema, its indexes included
            plain.append(_replay(Path(folder) / "plain.db",
                                 lambda db: db.execute(PLAIN_HISTORY), _plain, groups))
            traced.append(_replay(traced_db, lambda db: None, store.write, groups))
            state = State(traced_db)
            began = time.perf_counter()
            indexer.catch_up(state)
            indexing.append(time.perf_counter() - began)
            state.close()
    plain_s, traced_s, indexing_s = (statistics.median(x) for x in (plain, traced, indexing))

    def per_order(seconds: float) -> float | None:
        return round(seconds * 1000 / orders, 3) if orders else None

    return {"orders": orders, "rows": rows, "transactions": len(groups),
            "plain_ms_per_order": per_order(plain_s),
            "traced_ms_per_order": per_order(traced_s),
            "added_ms_per_order": per_order(traced_s - plain_s),
            "values_indexed_behind_ms_per_order": per_order(indexing_s)}
