"""Keeping the history and the logs bounded: a sandbox left running for days of work and load
tests must not grow without end (issue 14).

Every `PERIOD_S` a background thread deletes, oldest first, the history (spans and the values
they are found by) and the function log lines older than `--retention` (default 7 days), then,
while the state file uses more than `--history-cap` megabytes, the oldest tenth of the history.
Each deletion is a short transaction of at most `store.TRIM_BATCH` rows, so the work waits
little. Undelivered work is never touched: jobs (accepted events, asynchronous invocations) and
queue messages are not history; queues keep their own retention period, as SQS does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sandbox.core.periodic import Periodic
from sandbox.core.state import State
from sandbox.traces import store

DEFAULT_RETENTION_S = 7 * 24 * 3600
DEFAULT_CAP_MB = 1024
PERIOD_S = 60.0
CAP_SHARE = 10  # over the cap, the oldest 1/CAP_SHARE of the history goes


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


@dataclass(frozen=True)
class Retention:
    max_age_s: float = DEFAULT_RETENTION_S
    max_bytes: int = DEFAULT_CAP_MB * 1024 * 1024


def parse_duration(text: str) -> float:
    """`--retention`: `7d`, `12h`, `30m`, `90s` or a number of seconds."""
    value = text.strip().lower()
    unit = DURATION_UNITS.get(value[-1:]) if value else None
    seconds = float(value[:-1] if unit else value) * (unit or 1)
    if seconds <= 0:
        raise ValueError(f"{text}: a retention must be longer than nothing")
    return seconds


def parse_size(text: str) -> int:
    """`--history-cap`: `1GB`, `500MB`, `64KB` (powers of 1024) or a number of bytes."""
    value = text.strip().upper().replace(" ", "")
    unit = next((u for u in sorted(SIZE_UNITS, key=len, reverse=True)
                 if value.endswith(u)), "")
    size = int(float(value[:len(value) - len(unit)]) * SIZE_UNITS.get(unit, 1))
    if size <= 0:
        raise ValueError(f"{text}: a size cap must be more than nothing")
    return size


def trim(state: State, retention: Retention, now: float | None = None) -> int:
    """One pass: what is too old, then what is over the cap. How many history rows went."""
    cutoff = (now or time.time()) - retention.max_age_s
    with state.reading() as db:
        last = store.last_before(db, cutoff)
    deleted = _delete_through(state, last)
    with state.transaction() as db:
        db.execute("DELETE FROM log_events WHERE at < ?", (int(cutoff * 1000),))
    while True:
        with state.reading() as db:
            used, rows = store.history_size(db)
            last = store.oldest_ids(db, max(rows // CAP_SHARE, 1))
        if used <= retention.max_bytes or not last:
            return deleted
        gone = _delete_through(state, last)
        if not gone:
            return deleted
        deleted += gone


def _delete_through(state: State, last_id: int) -> int:
    deleted = 0
    while last_id:
        with state.transaction() as db:
            gone = store.delete_through(db, last_id)
        if not gone:
            break
        deleted += gone
    return deleted


def trimmer(state: State, retention: Retention) -> Periodic:
    """The thread that runs `trim` every `PERIOD_S`."""
    return Periodic("retention", PERIOD_S, lambda: trim(state, retention),
                    "trimming the history")
