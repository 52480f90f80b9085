"""What the sandbox must not forget, in one SQLite file in the state folder.

AWS keeps three things durably that a local copy must keep too, or a killed sandbox loses
orders: events EventBridge accepted but has not delivered yet, asynchronous invocations Lambda
accepted but has not run to the end, and messages in SQS queues, with their receive counts
and visibility (`sandbox.sqs.store` holds the statements of receiving and deleting). Lambda's
stream pollers keep their checkpoints here too, so a killed sandbox resumes each shard where it
was (a batch may run again, none is skipped). Function logs are kept here as CloudWatch Logs
keeps them (`sandbox.logs.store`). It also
keeps a history of what happened (events put, invocations), which is what the console and
`trace` show.

Write-ahead log with `synchronous=NORMAL`: each commit survives the process being killed
(not a power cut), at a few microseconds a commit.

The file says what it is: `PRAGMA application_id` marks a sandbox's state and `PRAGMA
user_version` its schema version, checked at every start. A file from an earlier sandbox is
upgraded in place (`UPGRADES`); one that is not a database, is damaged (a disk that filled, a
copy cut short: `PRAGMA quick_check`), belongs to another program or comes from a newer
sandbox is refused with `StateError`, one line naming the file and the way out. A full disk
while running fails the one transaction with `StorageFull`, leaving everything committed
before as it was; each API answers it with its AWS error, and jobs wait for space.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.core.history import Entry, Record
from sandbox.traces import context as trace_context
from sandbox.traces import store as traces

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,            -- 'delivery' (EventBridge -> target) or 'invoke' (Lambda async)
    target TEXT NOT NULL,          -- the target or function ARN
    payload TEXT NOT NULL,         -- JSON: what the job needs to run
    attempt INTEGER NOT NULL DEFAULT 0,
    due REAL NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (due);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,           -- the MessageId
    queue TEXT NOT NULL,           -- queue ARN
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,      -- JSON: message attributes, name -> {DataType, StringValue...}
    sent REAL NOT NULL,            -- SentTimestamp
    group_id TEXT,                 -- a FIFO queue's MessageGroupId
    dedup_id TEXT,                 -- a FIFO queue's MessageDeduplicationId
    sequence INTEGER,              -- a FIFO queue's SequenceNumber
    visible REAL NOT NULL DEFAULT 0,  -- not received before: its delay, or visibility timeout
    receives INTEGER NOT NULL DEFAULT 0,  -- ApproximateReceiveCount
    first_receive REAL,            -- ApproximateFirstReceiveTimestamp
    receipt TEXT,                  -- the token of its latest receipt handle
    system TEXT                    -- JSON: message system attributes (AWSTraceHeader)
);
CREATE INDEX IF NOT EXISTS messages_queue ON messages (queue, sent);
CREATE TABLE IF NOT EXISTS deduplication (  -- a FIFO queue remembers each id for 5 minutes
    queue TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    sent REAL NOT NULL,
    PRIMARY KEY (queue, dedup_id)
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,            -- a record's KIND (sandbox.core.history)
    record TEXT NOT NULL,          -- JSON
    trace_id TEXT,                 -- each row is a span of a trace (sandbox.traces.store)
    span_id TEXT,
    parent_id TEXT,
    start REAL,                    -- when its work started; `at`: when it was written
    resource TEXT                  -- the ARN it is about
);
CREATE INDEX IF NOT EXISTS history_kind ON history (kind, id);
CREATE TABLE IF NOT EXISTS stream_checkpoints (  -- how far a mapping has read a stream's shard
    mapping TEXT NOT NULL,         -- the event source mapping's UUID
    shard TEXT NOT NULL,           -- the ShardId
    sequence TEXT NOT NULL,        -- the SequenceNumber of the last record done ('': none)
    closed INTEGER NOT NULL DEFAULT 0,  -- a closed shard read to its end: its children may start
    PRIMARY KEY (mapping, shard)
);
CREATE TABLE IF NOT EXISTS log_groups (  -- CloudWatch Logs: the template's groups and functions'
    name TEXT PRIMARY KEY,
    created INTEGER NOT NULL,      -- creationTime, epoch milliseconds
    retention INTEGER              -- retentionInDays (NULL: kept forever)
);
CREATE TABLE IF NOT EXISTS log_events (  -- every line a function wrote (sandbox.logs.store)
    id INTEGER PRIMARY KEY,        -- ingestion order: GetLogEvents' tokens and the eventId
    log_group TEXT NOT NULL,
    stream TEXT NOT NULL,          -- one per worker, named as Lambda names them
    at INTEGER NOT NULL,           -- timestamp, epoch milliseconds
    message TEXT NOT NULL,
    request_id TEXT                -- the invocation it belongs to (NULL: a worker's init)
);
CREATE INDEX IF NOT EXISTS log_events_stream ON log_events (log_group, stream, id);
CREATE INDEX IF NOT EXISTS log_events_at ON log_events (log_group, at);
"""
# Columns added since the first state folders: added to an older file at start.
ADDED_COLUMNS = {"messages": {
    "group_id": "TEXT", "dedup_id": "TEXT", "sequence": "INTEGER",
    "visible": "REAL NOT NULL DEFAULT 0", "receives": "INTEGER NOT NULL DEFAULT 0",
    "first_receive": "REAL", "receipt": "TEXT", "system": "TEXT",
}}
DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")  # what a damaged file answers a read with
SANDBOX_STATE = 0x53424F58  # PRAGMA application_id of a sandbox's state: "SBOX"
WAY_OUT = ("start afresh with --reset (it empties the state folder), or move {folder} aside to "
           "keep it")


class StateError(Exception):
    """The state database cannot be used; the message names the file and the way out."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}; {WAY_OUT.format(folder=path.parent)}")


class StorageFull(Exception):
    """The disk under the state is full: this transaction wrote nothing, the ones before stand.
    Each API answers it with its AWS error; the job runner keeps the job for later."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no space left on the disk of {path}")


def _add_message_columns(db: sqlite3.Connection) -> None:
    """Version 0 -> 1: a state from before versions lacks the SQS columns added since."""
    for table, columns in ADDED_COLUMNS.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def _add_log_request_ids(db: sqlite3.Connection) -> None:
    """Version 3 -> 4: each log line names its invocation, so an invocation's lines are found
    by an index however many lines its function wrote. Older lines get theirs from their
    stream: the lines from a START line to its REPORT line."""
    if "request_id" not in {row[1] for row in db.execute("PRAGMA table_info(log_events)")}:
        db.execute("ALTER TABLE log_events ADD COLUMN request_id TEXT")
    running: dict[tuple[str, str], str] = {}
    named = []
    for id_, group, stream, message in db.execute(
            "SELECT id, log_group, stream, message FROM log_events ORDER BY id").fetchall():
        if message.startswith("START RequestId: "):
            running[(group, stream)] = message.split()[2]
        if (group, stream) in running:
            named.append((running[(group, stream)], id_))
        if message.startswith("REPORT RequestId: "):
            running.pop((group, stream), None)
    db.executemany("UPDATE log_events SET request_id = ? WHERE id = ?", named)
    db.execute("CREATE INDEX IF NOT EXISTS log_events_request ON log_events (request_id, id) "
               "WHERE request_id IS NOT NULL")


# UPGRADES[n] brings a version-n state to version n + 1. A new table needs no step (SCHEMA
# creates what is missing); a changed one does: append a step, and the version follows.
UPGRADES: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _add_message_columns, traces.add_span_columns, traces.index_cursor_from_start,
    _add_log_request_ids)
SCHEMA_VERSION = len(UPGRADES)


def _sound(db: sqlite3.Connection, path: Path) -> None:
    problems = [row[0] for row in db.execute("PRAGMA quick_check(1)")]
    if problems != ["ok"]:
        raise StateError(path, f"the database is damaged ({' '.join(problems[0].split())})")


def check_database(path: Path) -> None:
    """`StateError` unless `path`, where it exists, is a sound SQLite database: DynamoDB Local
    keeps its data in one, and a damaged one fails its every call instead of saying so.

    Opened for writing (never created): after DynamoDB Local was killed mid-write, its file
    has a hot journal, which only a writer may roll back, as DynamoDB Local's own open would;
    a read-only open would call that sound file unreadable."""
    if not path.exists():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw",
                                                uri=True)) as db:
            _sound(db, path)
    except sqlite3.DatabaseError as error:
        raise StateError(path, f"the database cannot be read ({error})") from None


def _version(db: sqlite3.Connection, path: Path, check: bool = True) -> int:
    """The schema version of a sound sandbox state; `StateError` for anything else. `check`
    reads every page (quick_check: 1.5 s for 600 MB of history), which `up` does before it
    writes; a reader meets the damage where it reads, if anywhere (`State.reading`)."""
    if check:
        _sound(db, path)
    owner = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if owner not in (0, SANDBOX_STATE) or (owner == 0 and tables and "jobs" not in tables):
        raise StateError(path, "this database is not a sandbox's state")
    if version > SCHEMA_VERSION:
        raise StateError(path, f"this state comes from a newer sandbox (schema version "
                               f"{version}; this one reads up to {SCHEMA_VERSION})")
    return version


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    target: str
    payload: dict[str, Any]
    attempt: int
    due: float
    created: float


@dataclass(frozen=True)
class NewJob:
    kind: str
    target: str
    payload: dict[str, Any]
    due: float = 0.0
    created: float = 0.0
    attempt: int = 0
    # The trace the job continues: its span when created (stored in the payload as "trace").
    trace: list[str] | None = field(default_factory=trace_context.carried)


@dataclass(frozen=True)
class Message:
    """A message in a queue, as SQS keeps it."""

    id: str
    queue: str
    body: str
    # Message attributes as SQS's API shapes them: name -> {"DataType": "String",
    # "StringValue": ...} (or "BinaryValue", base64). Older state folders hold name -> text.
    attributes: dict[str, Any]
    sent: float
    group_id: str | None = None
    dedup_id: str | None = None
    sequence: int | None = None
    visible: float = 0.0
    receives: int = 0
    first_receive: float | None = None
    receipt: str | None = None
    system: dict[str, str] = field(default_factory=dict)

    def strings(self) -> dict[str, str]:
        """The attributes as name -> text: what EventBridge and Lambda write as reasons."""
        return {name: value if isinstance(value, str) else
                str(value.get("StringValue", value.get("BinaryValue", "")))
                for name, value in self.attributes.items()}


MESSAGE_COLUMNS = ("id, queue, body, attributes, sent, group_id, dedup_id, sequence, visible, "
                   "receives, first_receive, receipt, system")


def message_row(m: Message) -> tuple[Any, ...]:
    return (m.id, m.queue, m.body, json.dumps(m.attributes), m.sent, m.group_id, m.dedup_id,
            m.sequence, m.visible, m.receives, m.first_receive, m.receipt,
            json.dumps(m.system) if m.system else None)


def message_of(row: tuple[Any, ...]) -> Message:
    return Message(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6], row[7],
                   row[8], row[9], row[10], row[11], json.loads(row[12]) if row[12] else {})


@dataclass(frozen=True)
class Checkpoint:
    """Where a stream's event source mapping stands in one shard: every record up to
    `sequence` is done (handled, or sent to the on-failure destination)."""

    mapping: str
    shard: str
    sequence: str
    closed: bool = False


@dataclass
class Writes:
    """What one step of work leaves behind, committed together with the end of the job that did
    it (`State.add(..., done=job.id)`): follow-up jobs, queue messages and history."""

    jobs: list[NewJob] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    history: list[Record] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)

    def __iadd__(self, other: Writes) -> Writes:
        self.jobs += other.jobs
        self.messages += other.messages
        self.history += other.history
        self.checkpoints += other.checkpoints
        return self


def write_history(db: sqlite3.Connection, records: Iterable[Record], at: float) -> None:
    """History rows (spans), inside the caller's transaction."""
    traces.write(db, records, at)


class State:
    """One connection shared by every thread behind a lock: SQLite serialises writers anyway,
    and one connection keeps each commit cheap."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        """Open the state, checked and upgraded (`StateError` when it cannot be used); with
        `read_only` (`sandbox dlq` beside a running sandbox) nothing is created or upgraded."""
        self.path = path
        try:
            self._db = self._read_only(path) if read_only else self._open(path)
        except sqlite3.DatabaseError as error:  # "file is not a database", "disk I/O error"...
            raise StateError(path, f"the database cannot be read ({error})") from None
        self._lock = threading.Lock()
        # Called with the queue ARNs after a commit stored messages in them (long polls wait).
        self.on_messages: list[Callable[[set[str]], None]] = []
        # Called after a commit that added jobs or put one off: with the ids of those due now
        # (the job runner starts them) and the earliest time one of the others falls due.
        self.on_jobs: list[Callable[[list[int], float | None], None]] = []

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        version = _version(db, path)
        db.executescript(SCHEMA)
        for upgrade in UPGRADES[version:]:
            upgrade(db)
        db.executescript(traces.SCHEMA)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute(f"PRAGMA application_id = {SANDBOX_STATE}")
        return db

    @staticmethod
    def _read_only(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                             isolation_level=None, check_same_thread=False)
        if _version(db, path, check=False) < SCHEMA_VERSION:
            raise StateError(path, "this state comes from an earlier sandbox; `sandbox up` "
                                   "upgrades it, reading it does not")
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock, self.path)

    # Jobs: the asynchronous work both EventBridge and Lambda have accepted.

    def add(
        self,
        jobs: Iterable[NewJob] = (),
        messages: Iterable[Message] = (),
        history: Iterable[Record] = (),
        done: int | None = None,
        checkpoints: Iterable[Checkpoint] = (),
    ) -> None:
        """Record new work, queue messages and history and finish job `done`, all or nothing:
        a job is never both finished and lost, nor its follow-up written twice."""
        now = time.time()
        messages = list(messages)
        added: list[tuple[int, float]] = []  # each new job's id and when it is due
        with self._transaction() as db:
            if done is not None:
                db.execute("DELETE FROM jobs WHERE id = ?", (done,))
            for j in jobs:
                payload = json.dumps({**j.payload, "trace": j.trace} if j.trace else j.payload)
                inserted = db.execute(
                    "INSERT INTO jobs (kind, target, payload, attempt, due, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (j.kind, j.target, payload, j.attempt, j.due or now, j.created or now))
                added.append((inserted.lastrowid, j.due or now))
            db.executemany(
                f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({', '.join('?' * 13)})",
                [message_row(m) for m in messages],
            )
            write_history(db, history, now)
            db.executemany(
                "INSERT OR REPLACE INTO stream_checkpoints (mapping, shard, sequence, closed) "
                "VALUES (?, ?, ?, ?)",
                [(c.mapping, c.shard, c.sequence, int(c.closed)) for c in checkpoints],
            )
        queues = {m.queue for m in messages}
        for listener in self.on_messages if queues else ():
            listener(queues)
        self._added(added, now)

    def commit(self, writes: Writes, done: int | None = None) -> None:
        self.add(writes.jobs, writes.messages, writes.history, done, writes.checkpoints)

    def retry(self, job: Job, due: float, history: Iterable[Record] = ()) -> None:
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET attempt = attempt + 1, due = ? WHERE id = ?", (due, job.id)
            )
            write_history(db, history, now)
        self._added([(job.id, due)], now)

    def _added(self, jobs: list[tuple[int, float]], now: float) -> None:
        """Tell `on_jobs` of jobs just written (id, due), once committed."""
        if not jobs:
            return
        due = [id_ for id_, due_at in jobs if due_at <= now]
        later = min((due_at for _, due_at in jobs if due_at > now), default=None)
        for listener in self.on_jobs:
            listener(due, later)

    def due_jobs(self, now: float, exclude: set[int], limit: int) -> list[Job]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, target, payload, attempt, due, created FROM jobs "
                "WHERE due <= ? ORDER BY due LIMIT ?",
                (now, limit + len(exclude)),
            ).fetchall()
        # Decode only what is handed out: the jobs in flight come back in every query, and
        # decoding them again on each wake-up took 7% of the sandbox's CPU under load.
        rows = [r for r in rows if r[0] not in exclude][:limit]
        return [Job(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6]) for r in rows]

    def next_due(self, exclude: set[int]) -> float | None:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, due FROM jobs ORDER BY due LIMIT ?", (len(exclude) + 1,)
            ).fetchall()
        return next((due for id_, due in rows if id_ not in exclude), None)

    def jobs(self, ids: list[int], now: float) -> list[Job]:
        """The jobs with these ids still waiting in the table and due by `now`, as they are
        now (a job's id is taken again once it is done: only the table says what it is)."""
        marks = ", ".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, target, payload, attempt, due, created FROM jobs "
                f"WHERE id IN ({marks}) AND due <= ?", (*ids, now)).fetchall()
        return [Job(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6]) for r in rows]

    def pending_jobs(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]

    # Queue messages

    def transaction(self) -> _Transaction:
        """One write transaction, for a service's own statements (`sandbox.sqs.store`)."""
        return self._transaction()

    def messages(self, queue: str | None = None) -> list[Message]:
        query = f"SELECT {MESSAGE_COLUMNS} FROM messages"
        args: tuple[str, ...] = ()
        if queue is not None:
            query += " WHERE queue = ?"
            args = (queue,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY sent", args).fetchall()
        return [message_of(r) for r in rows]

    # Stream checkpoints

    def checkpoints(self, mapping: str) -> dict[str, Checkpoint]:
        """The shards `mapping` has checkpointed, by ShardId."""
        with self._lock:
            rows = self._db.execute(
                "SELECT shard, sequence, closed FROM stream_checkpoints WHERE mapping = ?",
                (mapping,)).fetchall()
        return {r[0]: Checkpoint(mapping, r[0], r[1], bool(r[2])) for r in rows}

    # History

    def record(self, record: Record) -> None:
        self.add(history=[record])

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, for the queries of `sandbox.traces.query` (no transaction). A
        damaged page met on the way is a `StateError`, naming the file and the way out."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.DatabaseError as error:
                if error.sqlite_errorname not in DAMAGED:
                    raise
                raise StateError(self.path, f"the database is damaged ({error})") from None

    def history(self, since_id: int = 0, limit: int = 10_000,
                kind: str | None = None) -> list[Entry]:
        """The records after `since_id`, oldest first; only those of `kind` when given."""
        query = f"SELECT {traces.ROW} FROM history WHERE id > ?"
        args: tuple[Any, ...] = (since_id,)
        if kind is not None:
            query += " AND kind = ?"
            args += (kind,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id LIMIT ?", (*args, limit)).fetchall()
        return [traces.entry_of(r) for r in rows]


class _Transaction:
    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, path: Path) -> None:
        self._db = db
        self._lock = lock
        self._path = path

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()  # or every later caller waits forever
            raise
        return self._db

    def __exit__(self, exc_type: object, error: BaseException | None, _: object) -> None:
        try:
            if error is None:
                self._db.execute("COMMIT")
        except sqlite3.OperationalError as failed:
            error = failed
        finally:
            try:
                if self._db.in_transaction:  # SQLite rolls back by itself on a full disk
                    self._db.execute("ROLLBACK")
            finally:
                self._lock.release()
        if isinstance(error, sqlite3.OperationalError) and \
                error.sqlite_errorcode == sqlite3.SQLITE_FULL:
            raise StorageFull(self._path) from error
        if exc_type is None and error is not None:
            raise error
