"""Runs the durable jobs in `State` when they fall due: EventBridge deliveries and Lambda
asynchronous invocations.

A job is removed only by its handler, in the same transaction that records its outcome, so a
sandbox killed mid-job runs it again at the next start: delivery is at least once, as on AWS.
A job that falls due when it is written (the deliveries of an event just put, a destination's
delivery) is handed to the runner by the commit that wrote it (`State.on_jobs`), and
starts at once, not after the runner's next look at the table: that look cost each hop of a
choreography 0.5-1 ms (a wake-up, a query, every due payload decoded). The runner and a
hand-over claim jobs under the same lock, so none runs twice. The runner itself looks only at
its start, when the earliest job it knows of falls due (each commit names it), and when a job
ends while others wait for room: its look after every job and every event put cost about 36
thread switches an order on 2 cores (counted in /proc under load).
On a full disk no job can record its end (`StorageFull`): the job stays as it was and every job
waits `STORAGE_FULL_PAUSE_S` before the runner tries again, until space returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sandbox.core.state import Job, State, StorageFull

log = logging.getLogger(__name__)

UNEXPECTED_ERROR_DELAY_S = 1.0
STORAGE_FULL_PAUSE_S = 5.0  # each try runs the job again (at least once): not in a tight loop


class Abandoned(Exception):
    """The sandbox is stopping: the job stays as it is, to run again at the next start."""


class JobRunner:
    def __init__(
        self, state: State, handlers: dict[str, Callable[[Job], None]], max_in_flight: int = 64
    ) -> None:
        self.state = state
        self.handlers = handlers
        self.max_in_flight = max_in_flight
        self._in_flight: set[int] = set()
        self._wake = threading.Condition()
        self._running = False
        self._paused_until = 0.0  # time.monotonic() before which no job runs (a full disk)
        # When the runner looks at the table next by itself (time.time(); None: when told), and
        # whether due jobs were left there for want of room (it looks again as one ends).
        self._looks_at: float | None = None
        self._backlog = False
        # In a job's thread: that it is one, and the follow-up it runs next (`_run`).
        self._thread_jobs = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="job")
        self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)

    def start(self) -> None:
        self._running = True
        self.state.on_jobs.append(self.hand_over)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._running = False
            self._wake.notify()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def hand_over(self, ids: list[int], later: float | None = None) -> None:
        """What a commit just wrote: the jobs due now start at once, as many as there is room
        for, and the runner's next look comes forward when `later` (a job's due time) is before
        it. The jobs are read again here: one the runner found first is in flight, or done and
        gone from the table."""
        with self._wake:
            if not self._running:
                return
            if later is not None and (self._looks_at is None or later < self._looks_at):
                self._wake.notify()
            if any(i in self._in_flight for i in ids):  # put off by its own try: due once it ends
                self._backlog = True
            ids = [i for i in ids if i not in self._in_flight]
            if not ids:
                return
            free = self.max_in_flight - len(self._in_flight)
            jobs = [] if self._paused_until > time.monotonic() or free < 1 else \
                self.state.jobs(ids, time.time())
            if len(jobs) > free or free < 1:
                self._backlog = True
            jobs = jobs[:free]
            self._in_flight.update(job.id for job in jobs)
        if jobs and getattr(self._thread_jobs, "running", False) and \
                self._thread_jobs.next is None:
            self._thread_jobs.next = jobs.pop(0)  # this job thread's own follow-up: next here
        for job in jobs:
            self._pool.submit(self._run, job)

    def _loop(self) -> None:
        """Looks at the table at start, when the earliest job waiting falls due, and when a job
        ends while others wait for room; commits hand it everything else (`hand_over`)."""
        while True:
            with self._wake:
                if not self._running:
                    return
                paused = self._paused_until - time.monotonic()
                if paused > 0:
                    self._wake.wait(paused)
                    continue
                free = self.max_in_flight - len(self._in_flight)
                jobs = self.state.due_jobs(time.time(), self._in_flight, free) if free else []
                self._backlog = not free or len(jobs) == free  # more may be due than taken
                self._in_flight.update(job.id for job in jobs)
                if not jobs:
                    next_due = self.state.next_due(self._in_flight) if free else None
                    if next_due is not None and next_due <= time.time():
                        continue
                    self._looks_at = next_due
                    self._wake.wait(None if next_due is None else next_due - time.time())
                    self._looks_at = None
                    continue
            for job in jobs:
                self._pool.submit(self._run, job)

    def _run(self, first: Job) -> None:
        """A job, then the follow-up its own commit handed over, if any, in the same thread:
        the hop from an invocation to its destination's delivery goes on without waiting for
        another thread to wake (each wait cost 0.5-1.5 ms under load on 2 cores)."""
        job: Job | None = first
        self._thread_jobs.running = True
        while job is not None:
            self._thread_jobs.next = None
            self._run_one(job)
            job = self._thread_jobs.next
            if job is not None and not self._running:
                with self._wake:
                    self._in_flight.discard(job.id)  # left in the table for the next start
                job = None
        self._thread_jobs.running = False

    def _run_one(self, job: Job) -> None:
        try:
            self.handlers[job.kind](job)
        except Abandoned:
            pass
        except StorageFull as full:
            self._pause(full)
        except Exception:
            log.exception("job %s (%s for %s) failed unexpectedly", job.id, job.kind, job.target)
            self.state.retry(job, time.time() + UNEXPECTED_ERROR_DELAY_S)
        finally:
            with self._wake:
                self._in_flight.discard(job.id)
                if self._backlog or self._paused_until > time.monotonic():
                    self._wake.notify()

    def _pause(self, full: StorageFull) -> None:
        with self._wake:
            if self._paused_until < time.monotonic():  # said once per pause, not once per job
                log.warning("%s: jobs wait until space returns, trying every %.0f s", full,
                            STORAGE_FULL_PAUSE_S)
            self._paused_until = time.monotonic() + STORAGE_FULL_PAUSE_S
