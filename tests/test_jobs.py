"""The job runner in process: a job a commit writes due now starts at once, handed over by the
commit, and no job ever runs twice however the hand-over and the runner's own look meet."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from sandbox_process import wait_for

from sandbox.core.jobs import JobRunner
from sandbox.core.state import Job, NewJob, State


def test_every_job_runs_exactly_once_whether_handed_over_or_found(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    ran: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(job: Job) -> None:
        with lock:
            ran[job.payload["n"]] += 1
        follow = [NewJob("work", "t", {"n": f"{job.payload['n']}+"})] \
            if not job.payload["n"].endswith("+") else []
        state.add(jobs=follow, done=job.id)  # a follow-up, handed over by this commit

    runner = JobRunner(state, {"work": handler}, max_in_flight=4)
    state.add(jobs=[NewJob("work", "t", {"n": "before"})])  # written before the runner starts
    runner.start()
    try:
        for n in range(40):  # while the runner also looks, and with more than it has room for
            state.add(jobs=[NewJob("work", "t", {"n": str(n)})])
        wait_for(lambda: state.pending_jobs() == 0 and sum(ran.values()) == 82, 30,
                 "every job and its follow-up to run")
    finally:
        runner.stop()
    assert set(ran.values()) == {1}
    assert {"before", "before+", "0", "0+", "39", "39+"} <= set(ran)


def test_a_job_due_later_is_not_handed_over_but_named_by_when(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    told: list[tuple[list[int], float | None]] = []
    state.on_jobs.append(lambda due, later: told.append((due, later)))
    state.add(jobs=[NewJob("work", "t", {"n": "later"}, due=2**40)])
    state.add(jobs=[NewJob("work", "t", {"n": "now"})])
    assert told[0] == ([], 2**40)
    [([now], later)] = told[1:]
    assert later is None
    [job] = state.jobs([now], 2**41)
    assert (job.kind, job.target, job.payload["n"]) == ("work", "t", "now")


def test_a_job_written_for_later_runs_when_due_with_nothing_else_to_wake_the_runner(
        tmp_path: Path) -> None:
    """The runner sleeps until the earliest job it knows of; a commit (a put-off retry, a
    delayed job) that writes an earlier one brings its look forward."""
    state = State(tmp_path / "state.db")
    ran: list[str] = []

    def handler(job: Job) -> None:
        ran.append(job.payload["n"])
        if job.payload["n"] == "retried" and job.attempt == 0:
            state.retry(job, time.time() + 0.2)  # put off by its own try
        else:
            state.add(done=job.id)

    runner = JobRunner(state, {"work": handler})
    state.add(jobs=[NewJob("work", "t", {"n": "far"}, due=time.time() + 3600)])
    runner.start()  # asleep until the far one
    try:
        state.add(jobs=[NewJob("work", "t", {"n": "soon"}, due=time.time() + 0.2)])
        state.add(jobs=[NewJob("work", "t", {"n": "retried"})])
        wait_for(lambda: ran.count("retried") == 2 and "soon" in ran, 30,
                 "the job written for later, and the retry, to run")
    finally:
        runner.stop()
    assert "far" not in ran


def test_a_handed_over_id_is_read_again_not_trusted(tmp_path: Path) -> None:
    """A job's id is taken again once it is done: the table says what it is now."""
    state = State(tmp_path / "state.db")
    handed: list[list[int]] = []
    state.on_jobs.append(lambda due, _later: handed.append(due))
    state.add(jobs=[NewJob("work", "t", {"n": "first"})])
    [[first]] = handed
    state.add(done=first)
    assert state.jobs([first], 2**41) == []  # done: nothing to run
    state.add(jobs=[NewJob("work", "t", {"n": "second"})])
    [job] = state.jobs(handed[-1], 2**41)
    assert job.payload["n"] == "second"
