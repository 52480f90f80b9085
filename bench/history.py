"""`python -m bench --history N`: does reading the history cost the same at N orders as at 300?

Issue 14's goals, each measured on one sandbox at 300 orders and again at N:
- reading one order's trace as the console page does (`api/search?q=<order ID>`, then
  `api/trace?id=`), the median over `READS` orders picked at random among those in the
  history: within 1.5x;
- a live refresh (`api/traces?since=<cursor>` after `REFRESH_ORDERS` new orders): within 2x;
  the first load (`api/traces`, no cursor) and one `python -m sandbox trace <order ID> --logs`
  (a process of its own: its wall time is mostly Python starting) are printed beside;
- the sandbox's resident memory (VmRSS, after the reads): within 1.5x; the state file's size
  (sandbox.db and its -wal) is printed beside.

The fill. 30,000 real orders take about 25 minutes on two cores, so between the two
measurements the bench writes the history of the missing orders straight into the sandbox's
state file, beside the running sandbox (SQLite's write-ahead log lets a second writer take
turns; each transaction holds `FILL_BATCH` orders, so the sandbox's own writes wait little).
What it writes is what the sandbox wrote for the first real orders, copied: each order's
history rows (its spans) and its functions' log lines, every ID in them fresh (trace and span
IDs, the order ID, event and request IDs: a search for a copied order's ID finds its copy
alone), and times moved so that rows stay in id order as retention expects
(`sandbox.traces.store`): each batch's orders start between the newest row and now, spread
evenly, each order's own timing kept. The values the copies are found by are indexed by the
sandbox itself, behind the work as always (`sandbox.traces.indexer`): the bench waits until it
has caught up before it measures. DynamoDB items are not copied: the tables are not history.

Measured on this machine (2 CPUs, load average about 2.7, `--history 30000`): the fill writes
29,621 orders (12 rows and 20 log lines each) in 44 s, and the sandbox indexes their values in
6.5 s. One trace read goes from 2.1 to 2.5 ms (1.17x), a live refresh from 14 to 8.5 ms, the
sandbox's memory from 70 to 79 MB (1.12x); `trace --logs` as a process of its own stays about
0.4-0.5 s. The state file grows to 817 MB, about 27 KB an order with its log lines and the
write-ahead log: the history's records (a third), log lines with their indexes (two fifths),
the values index. Two fixes made the trace read flat: an invocation's log lines found by the
request ID each line carries (they were found by a scan of the function's log group), and a
reader no longer checking every page of the state at open.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import report
from bench.orders import History, Order, closed_loop, one_at_a_time, wait_all
from bench.sandbox_process import ROOT, SandboxProcess, proc_status_kb
from sandbox.traces import store
from sandbox.traces.context import new_span_id, new_trace_id

TEMPLATE_ORDERS = 300  # real orders first: the "at 300" figures, and what the fill copies
READS = 50  # orders whose trace is read, at each size
REFRESH_ROUNDS = 3
REFRESH_ORDERS = 16  # new orders between a cursor and the refresh that reads from it
NEWEST_REAL = 16  # real orders after the fill, so the newest traces are real ones
FILL_BATCH = 200  # copied orders per transaction
BUSY_MS = 30_000
LOOP_S = 0.5  # the closed loop runs in short windows until enough orders are made
DRAIN_S = 60.0
GOALS = {"trace_read_ms": 1.5, "refresh_ms": 2.0, "rss_mb": 1.5}  # at N / at 300, at most
# What is fresh in each copy: UUIDs (order, event, request, message IDs) and X-Ray trace IDs.
FRESH = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                   r"|1-[0-9a-f]{8}-[0-9a-f]{24}")
HISTORY_ROW = "at, kind, record, trace_id, span_id, parent_id, start, resource"
Line = tuple[str, str, int, str, str]  # a log line: group, stream, at ms, message, request ID


# The history of one real order, and its copies


@dataclass
class Template:
    """One real order as the sandbox wrote it: its history rows (HISTORY_ROW, in id order) and
    its functions' log lines (group, stream, at ms, message, request ID)."""

    order_id: str
    rows: list[tuple[Any, ...]]
    lines: list[Line]
    start: float = 0.0
    end: float = 0.0

    def __post_init__(self) -> None:
        self.start = min(row[6] for row in self.rows)
        self.end = max(row[0] for row in self.rows)


@dataclass
class Copy:
    """A template's rows and lines with fresh IDs, `shift` seconds later."""

    order_id: str
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)


def copy_of(template: Template, shift: float) -> Copy:
    fresh: dict[str, str] = {}

    def renamed(match: re.Match[str]) -> str:
        old = match.group()
        if old not in fresh:
            fresh[old] = new_trace_id(template.start + shift) if old.startswith("1-") \
                else str(uuid.uuid4())
        return fresh[old]

    def text(value: str) -> str:
        return FRESH.sub(renamed, value)

    def moved(value: Any) -> Any:
        """A record's JSON with fresh IDs, and its times (those within the order) shifted."""
        if isinstance(value, str):
            return text(value)
        if isinstance(value, float) and template.start - 60 <= value <= template.end + 60:
            return value + shift
        if isinstance(value, dict):
            return {k: moved(v) for k, v in value.items()}
        if isinstance(value, list):
            return [moved(v) for v in value]
        return value

    def span(old: str | None) -> str | None:
        if old is not None and old not in fresh:
            fresh[old] = new_span_id()
        return fresh.get(old) if old is not None else None

    copy = Copy(text(template.order_id))
    for at, kind, record, trace_id, span_id, parent_id, start, resource in template.rows:
        copy.rows.append((at + shift, kind, json.dumps(moved(json.loads(record))), text(trace_id),
                          span(span_id), span(parent_id), start + shift, resource))
    copy.lines = [(group, stream, at + round(shift * 1000), text(message), text(request_id))
                  for group, stream, at, message, request_id in template.lines]
    return copy


def templates(db: sqlite3.Connection, order_ids: list[str]) -> list[Template]:
    """The history of each of these orders, as the sandbox wrote it."""
    lines = invocation_lines(db)
    found = []
    for order_id in order_ids:
        rows, logs = [], []
        for trace_id in store.traces_with(db, order_id):
            for row in db.execute(f"SELECT {HISTORY_ROW} FROM history WHERE trace_id = ? "
                                  "ORDER BY id", (trace_id,)):
                rows.append(tuple(row))
                logs += lines.get(json.loads(row[2]).get("request_id") or "", [])
        if rows:
            found.append(Template(order_id, rows, sorted(logs, key=lambda x: x[2])))
    return found


def invocation_lines(db: sqlite3.Connection) -> dict[str, list[Line]]:
    """Each invocation's log lines (its START line to its REPORT line), by request ID."""
    found: dict[str, list[Line]] = {}
    for line in db.execute("SELECT log_group, stream, at, message, request_id FROM log_events "
                           "WHERE request_id IS NOT NULL ORDER BY id"):
        found.setdefault(line[4], []).append(line)
    return found


# The fill


def fill(db_path: Path, sources: list[Template], count: int) -> list[str]:
    """`count` copies of the sources' orders written into the state; their order IDs."""
    db = sqlite3.connect(db_path, isolation_level=None, timeout=BUSY_MS / 1000)
    made: list[str] = []
    try:
        longest = max(t.end - t.start for t in sources)
        while len(made) < count:
            batch = min(FILL_BATCH, count - len(made))
            picked = [sources[(len(made) + i) % len(sources)] for i in range(batch)]
            made += write_batch(db, picked, longest)
    finally:
        db.close()
    return made


def write_batch(db: sqlite3.Connection, picked: list[Template], longest: float) -> list[str]:
    """One transaction: the picked orders start between the newest row and now, evenly."""
    db.execute("BEGIN IMMEDIATE")
    try:
        newest = db.execute("SELECT COALESCE(MAX(at), 0) FROM history").fetchone()[0]
        last = max(newest, time.time() - longest)
        step = (last - newest) / len(picked)
        copies = [copy_of(t, newest + i * step - t.start) for i, t in enumerate(picked)]
        insert_rows(db, copies)
        # Each copy's lines together: a stream is one worker's, which runs one at a time.
        db.executemany("INSERT INTO log_events (log_group, stream, at, message, request_id) "
                       "VALUES (?, ?, ?, ?, ?)", [line for c in copies for line in c.lines])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return [c.order_id for c in copies]


def insert_rows(db: sqlite3.Connection, copies: list[Copy]) -> None:
    """Every copy's rows in the order of when they were written."""
    rows = sorted((row for c in copies for row in c.rows), key=lambda row: row[0])
    db.executemany(f"INSERT INTO history ({HISTORY_ROW}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def wait_indexed(db_path: Path, timeout_s: float = 900.0) -> float:
    """Seconds until the sandbox has indexed the values of every row (its indexer's cursor at
    the newest row)."""
    began = time.monotonic()
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=BUSY_MS / 1000) as db:
        while store.values_cursor(db) < store.cursor(db):
            if time.monotonic() - began > timeout_s:
                raise RuntimeError(f"the sandbox did not index the copies within {timeout_s} s")
            time.sleep(0.5)
    return round(time.monotonic() - began, 1)


# Measuring


class Console:
    """The console's API over one kept-alive connection, as the page polls it."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=120)

    def get(self, path: str) -> tuple[Any, float]:
        """The answer and how long it took, in milliseconds."""
        began = time.perf_counter()
        self.connection.request("GET", f"/console/api/{path}")
        answer = self.connection.getresponse()
        body = answer.read()
        took = (time.perf_counter() - began) * 1000
        if answer.status != 200:
            raise RuntimeError(f"console api/{path}: {answer.status} {body[:200]!r}")
        return json.loads(body), took

    def trace_read_ms(self, order_id: str) -> float:
        """An order's trace as the page finds it: search by the ID, then open the trace."""
        found, searched = self.get(f"search?q={quote(order_id)}")
        (trace,) = found["traces"][:1]
        _, opened = self.get(f"trace?id={quote(trace['trace_id'])}")
        return searched + opened

    def close(self) -> None:
        self.connection.close()


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def cli_trace_ms(state: Path, order_id: str) -> float:
    """One `trace` run's wall time, for a real order (it reads the order's item too, and a
    copied order has none)."""
    began = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "sandbox", "trace", order_id, "--logs",
                          "--state", str(state)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    if run.returncode != 0:
        raise RuntimeError(f"sandbox trace {order_id}: {run.stderr.strip()}")
    return round((time.perf_counter() - began) * 1000, 1)


def refreshes(console: Console, make_orders: Callable[[int], list[Order]]) -> dict[str, float]:
    """The first load, then live refreshes each after `REFRESH_ORDERS` new orders."""
    first_ms, refresh_ms = [], []
    for _ in range(REFRESH_ROUNDS):
        listed, took = console.get("traces")
        first_ms.append(took)
        make_orders(REFRESH_ORDERS)
        changed, took = console.get(f"traces?since={listed['cursor']}")
        if changed.get("reset") or len(changed["traces"]) < REFRESH_ORDERS:
            raise RuntimeError(f"a refresh missed the new orders: {changed}")
        refresh_ms.append(took)
    return {"first_load_ms": median(first_ms), "refresh_ms": median(refresh_ms)}


def figures(sandbox: SandboxProcess, make_orders: Callable[[int], list[Order]],
            order_ids: list[str], real_ids: list[str]) -> dict[str, Any]:
    """Every figure at the history's present size."""
    console = Console(sandbox.url)
    try:
        traces = root_spans(sandbox.history_db)
        reads = [console.trace_read_ms(i) for i in random.sample(order_ids, READS)]
        listing = refreshes(console, make_orders)
    finally:
        console.close()
    rss_kb = proc_status_kb(sandbox.processes()[0].pid, "VmRSS") or 0
    on_disk = sum(p.stat().st_size for p in sandbox.state.glob("sandbox.db*")
                  if not p.name.endswith("-shm"))
    return {"traces": traces, "trace_read_ms": median(reads),
            "cli_trace_ms": cli_trace_ms(sandbox.state, random.choice(real_ids)),
            **listing, "rss_mb": round(rss_kb / 1024, 1),
            "state_mb": round(on_disk / 1024**2, 1)}


def root_spans(db_path: Path) -> int:
    """The traces the history holds: one root span each (an order's API request)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM history WHERE parent_id IS NULL").fetchone()[0]


# The scenario


class Orders:
    """Real orders on our stage, each waited for until complete."""

    def __init__(self, sandbox: SandboxProcess, history: History, stage: str, users: int) -> None:
        self.sandbox, self.history, self.stage, self.users = sandbox, history, stage, users
        self.ids: list[str] = []

    def closed(self, count: int) -> list[Order]:
        """At least `count` orders from `users` users in a closed loop."""
        made: list[Order] = []
        while sum(o.order_id is not None for o in made) < count:
            made += closed_loop(self.sandbox.url, self.history, self.stage, self.users, LOOP_S,
                                "history")
        return self._done(made)

    def one_by_one(self, count: int) -> list[Order]:
        return self._done(one_at_a_time(self.sandbox.url, self.history, [self.stage], count,
                                        "history"))

    def _done(self, made: list[Order]) -> list[Order]:
        wait_all(self.history, made, DRAIN_S)
        self.ids += [o.order_id for o in made if o.order_id is not None]
        return made


def run(args: argparse.Namespace, sandbox: SandboxProcess, stage: str) -> dict[str, Any]:
    say = report.progress
    history = History(sandbox.history_db)
    try:
        orders = Orders(sandbox, history, stage, args.users)
        say(f"history: {TEMPLATE_ORDERS} real orders, {args.users} users")
        orders.closed(TEMPLATE_ORDERS)
        sources = list(orders.ids)
        say("history: measuring at that size")
        small = figures(sandbox, orders.one_by_one, orders.ids, orders.ids)
        with sqlite3.connect(f"file:{sandbox.history_db}?mode=ro", uri=True) as db:
            copied_from = templates(db, sources)
        count = max(args.history - len(orders.ids) - NEWEST_REAL, 0)
        say(f"history: writing {count} copied orders into the state file")
        began = time.monotonic()
        copied = fill(sandbox.history_db, copied_from, count)
        fill_s = round(time.monotonic() - began, 1)
        say("history: waiting for the sandbox to index the copies' values")
        index_s = wait_indexed(sandbox.history_db)
        orders.one_by_one(NEWEST_REAL)
        say(f"history: measuring at {len(orders.ids) + len(copied)} orders")
        large = figures(sandbox, orders.one_by_one, orders.ids + copied, orders.ids)
        check = Console(sandbox.url)
        try:
            found, _ = check.get(f"search?q={quote(random.choice(copied))}")
        finally:
            check.close()
    finally:
        history.close()
    return results(args, small, large, {"copied_orders": len(copied), "fill_s": fill_s,
                                        "index_s": index_s,
                                        "copy_search_hits": len(found["traces"])})


def results(args: argparse.Namespace, small: dict[str, Any], large: dict[str, Any],
            fill_figures: dict[str, Any]) -> dict[str, Any]:
    """Each figure at 300 and at N, their ratio and its goal, as the JSON file holds them."""
    compared = {}
    for name, at_300 in small.items():
        at_n = large[name]
        compared[name] = {"at_300": at_300, "at_n": at_n,
                          "ratio": round(at_n / at_300, 2) if at_300 else None}
        if name in GOALS:
            compared[name]["goal"] = GOALS[name]
            compared[name]["met"] = at_300 > 0 and at_n / at_300 <= GOALS[name]
    return {
        "run": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "history": {"orders": {"at_300": small["traces"], "at_n": large["traces"],
                               "asked": args.history}, **compared, "fill": fill_figures},
    }


LABELS = {
    "traces": ("traces in the history (one per order)", ""),
    "trace_read_ms": ("one order's trace: api/search + api/trace, p50", "ms"),
    "refresh_ms": (f"live refresh after {REFRESH_ORDERS} orders: api/traces?since=, p50", "ms"),
    "first_load_ms": ("first load: api/traces, p50", "ms"),
    "cli_trace_ms": ("python -m sandbox trace <order ID> --logs (one run)", "ms"),
    "rss_mb": ("sandbox resident memory (VmRSS)", "MB"),
    "state_mb": ("state file on disk (sandbox.db + -wal)", "MB"),
}


def table(r: dict[str, Any]) -> str:
    h = r["history"]
    n = h["orders"]["at_n"]
    rows = [("figure", "at 300", f"at {n}", "ratio", "goal")]
    for name, (label, unit) in LABELS.items():
        figure = h[name]
        goal = (f"within {figure['goal']:g}x: {report.verdict(figure['met'])}"
                if "goal" in figure else "")
        rows.append((label, report.number(figure["at_300"], unit),
                     report.number(figure["at_n"], unit), report.number(figure["ratio"], "x"),
                     goal))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    fill_figures = h["fill"]
    lines = [f"bench --history {h['orders']['asked']} {r['run']}: {r['machine']['cpus']} CPUs, "
             f"load average {' '.join(str(x) for x in r['machine']['load_average'])}", ""]
    lines += ["  ".join([*(row[i].ljust(widths[i]) for i in range(4)), row[4]]).rstrip()
              for row in rows]
    lines.append(f"\n{fill_figures['copied_orders']} orders copied into the state in "
                 f"{fill_figures['fill_s']:g} s, their values indexed by the sandbox in "
                 f"{fill_figures['index_s']:g} s; a copied order's ID finds "
                 f"{fill_figures['copy_search_hits']} trace(s)")
    return "\n".join(lines)
