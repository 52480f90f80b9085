"""CloudWatch Logs, kept in the sandbox's state: the one store of function logs that Logs' API,
the console, `trace` and `sandbox invoke` all read.

As Lambda does, each function writes to its log group: the template's `LoggingConfig.LogGroup`
(the CDK's `logGroup` prop) when it names one, else `/aws/lambda/<function name>`; one log
stream per worker (execution environment), named `YYYY/MM/DD/[$LATEST]<id>`. Every
`AWS::Logs::LogGroup` of the template exists, with its `RetentionInDays`: events older than
that are deleted when the sandbox starts (CloudWatch deletes them within days; nobody counts on
the exact moment). A group Lambda creates itself keeps its events forever, as on AWS.

Lines are written a batch at a time, every `FLUSH_S`, as Lambda's own log agent ships them: a
commit per line put three or four commits on every invocation's path (START before the
runtime gets its event, END and REPORT before its answer goes on), about 20 an order. Every
read writes what is pending first, so a reader never misses a line already put; a sandbox
killed outright loses at most the last `FLUSH_S` of lines, never work. A full disk keeps no
line (the terminal still shows it).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.assembly import Stack
from sandbox.core.periodic import Periodic
from sandbox.core.state import State, StorageFull

LOG_GROUP = "AWS::Logs::LogGroup"
FUNCTION = "AWS::Lambda::Function"
DAY_MS = 86_400_000
FLUSH_S = 0.05
INSERT = ("INSERT INTO log_events (log_group, stream, at, message, request_id) "
          "VALUES (?, ?, ?, ?, ?)")


@dataclass(frozen=True)
class Event:
    id: int
    group: str
    stream: str
    at: int  # epoch milliseconds
    message: str


def template_groups(stacks: list[Stack]) -> tuple[dict[str, int | None], dict[str, str]]:
    """The log groups of the assembly with their retention in days, and each function's group
    by function name."""
    groups: dict[str, int | None] = {}
    of_function: dict[str, str] = {}
    for stack in stacks:
        for resource in stack.of_type(LOG_GROUP):
            props = stack.properties(resource.logical_id)
            groups[stack.ref(resource.logical_id)] = props.get("RetentionInDays")
        for resource in stack.of_type(FUNCTION):
            name = stack.ref(resource.logical_id)
            logging = stack.properties(resource.logical_id).get("LoggingConfig") or {}
            of_function[name] = logging.get("LogGroup") or f"/aws/lambda/{name}"
    for group in of_function.values():
        groups.setdefault(group, None)
    return groups, of_function


class LogStore:
    def __init__(self, state: State) -> None:
        self.state = state
        self._pending: list[tuple[str, str, int, str, str | None]] = []
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # batches are written in the order they were put
        self._writer: Periodic | None = None
        self._then: Callable[[], object] = lambda: None

    def start(self, then: Callable[[], object] = lambda: None) -> None:
        """Write lines in batches from now on (until then, and after `stop`, each at once);
        `then` runs after each batch (the terminal's copy of the lines is flushed with it)."""
        self._then = then
        self._writer = Periodic("logs", FLUSH_S, self._batch, "writing the functions' log lines")
        self._writer.start()

    def stop(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            self._writer = None
        self._batch()

    def _batch(self) -> None:
        self.flush()
        self._then()

    def declare(self, groups: dict[str, int | None], now_ms: int | None = None) -> None:
        """The groups that exist, with their retention; events past it are deleted."""
        now_ms = now_ms or int(time.time() * 1000)
        with self.state.transaction() as db:
            for name, retention in groups.items():
                db.execute("INSERT INTO log_groups (name, created, retention) VALUES (?, ?, ?) "
                           "ON CONFLICT (name) DO UPDATE SET retention = excluded.retention",
                           (name, now_ms, retention))
                if retention:
                    db.execute("DELETE FROM log_events WHERE log_group = ? AND at < ?",
                               (name, now_ms - retention * DAY_MS))

    def put(self, group: str, stream: str, message: str, at_ms: int | None = None,
            request_id: str | None = None) -> None:
        """One line, of the invocation `request_id` (None: a worker's init)."""
        row = (group, stream, at_ms or int(time.time() * 1000), message, request_id)
        with self._pending_lock:
            self._pending.append(row)
            batched = self._writer is not None
        if not batched:
            self.flush()

    def flush(self) -> None:
        """Write the lines put so far, in one transaction."""
        with self._flush_lock:
            with self._pending_lock:
                rows, self._pending = self._pending, []
            if rows:
                # A full disk keeps no line.
                with contextlib.suppress(StorageFull), self.state.transaction() as db:
                    db.executemany(INSERT, rows)

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self.flush()
        with self.state.transaction() as db:
            return db.execute(sql, args).fetchall()

    def groups(self, prefix: str = "") -> list[dict[str, Any]]:
        """name, created, retention and stored bytes of each group, by name."""
        rows = self._rows(
            "SELECT g.name, g.created, g.retention, "
            "(SELECT COALESCE(SUM(LENGTH(message)), 0) FROM log_events WHERE log_group = g.name)"
            " FROM log_groups g WHERE substr(g.name, 1, ?) = ? ORDER BY g.name",
            (len(prefix), prefix))
        return [{"name": r[0], "created": r[1], "retention": r[2], "bytes": r[3]} for r in rows]

    def exists(self, group: str) -> bool:
        return bool(self._rows("SELECT 1 FROM log_groups WHERE name = ?", (group,)))

    def streams(self, group: str) -> list[dict[str, Any]]:
        """Each stream of `group` with its first and last event, in name order."""
        rows = self._rows("SELECT stream, MIN(at), MAX(at), MIN(id), MAX(id), "
                          "SUM(LENGTH(message)) FROM log_events WHERE log_group = ? "
                          "GROUP BY stream ORDER BY stream", (group,))
        return [{"name": r[0], "first": r[1], "last": r[2], "first_id": r[3], "last_id": r[4],
                 "bytes": r[5]} for r in rows]

    def events(self, group: str, stream: str | None = None, after: int = 0,
               before: int | None = None, start: int | None = None, end: int | None = None,
               limit: int = 10_000, newest: bool = False) -> list[Event]:
        """Events in ingestion order: ids after `after` (and before `before`), timestamps in
        [start, end); the newest `limit` of them when `newest`, else the oldest."""
        sql = "SELECT id, log_group, stream, at, message FROM log_events WHERE log_group = ? " \
              "AND id > ?"
        args: list[Any] = [group, after]
        for clause, value in (("stream = ?", stream), ("id < ?", before), ("at >= ?", start),
                              ("at < ?", end)):
            if value is not None:
                sql += f" AND {clause}"
                args.append(value)
        sql += f" ORDER BY id {'DESC' if newest else 'ASC'} LIMIT ?"
        rows = self._rows(sql, (*args, limit))
        return [Event(*row) for row in (reversed(rows) if newest else rows)]

    def lines(self, group: str) -> list[str]:
        """Every message of a group, oldest first: what the console shows of a function."""
        return [row[0] for row in self._rows(
            "SELECT message FROM log_events WHERE log_group = ? ORDER BY id", (group,))]

    def invocation(self, request_id: str) -> list[str]:
        """The lines of one invocation, from its START line to its REPORT line (what Lambda's
        `LogType: Tail` answers the end of), by the index of the invocation each line names:
        the same cost however many lines its function ever wrote."""
        return [row[0] for row in self._rows(
            "SELECT message FROM log_events WHERE request_id = ? ORDER BY id", (request_id,))]
