"""One sandbox per state folder, and a state the sandbox cannot use gets one line saying which
file and the way out: a second `sandbox up` beside a first, a damaged or foreign state, a port
in use, and a disk that fills while the sandbox runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from sandbox_process import ROOT, Orders, SandboxProcess, create_order, get, order_bus, wait_for

from sandbox.core import jobs
from sandbox.core.history import EventPut
from sandbox.core.jobs import JobRunner
from sandbox.core.lock import LOCK_FILE, StateLock, StateLocked
from sandbox.core.state import SCHEMA_VERSION, Job, NewJob, State, StateError, StorageFull
from sandbox.dynamodb.local import DATA_FILE, free_port
from sandbox.traces import query

# The first state folders' tables, as a sandbox from before schema versions left them.
OLD_STATE = """
CREATE TABLE jobs (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL,
                   payload TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,
                   due REAL NOT NULL, created REAL NOT NULL);
CREATE TABLE messages (id TEXT PRIMARY KEY, queue TEXT NOT NULL, body TEXT NOT NULL,
                       attributes TEXT NOT NULL, sent REAL NOT NULL);
INSERT INTO messages VALUES ('m-1', 'arn:aws:sqs:us-east-1:000000000000:dlq', 'kept', '{}', 1);
"""


def up(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sandbox", "up", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def one_line(answer: subprocess.CompletedProcess[str]) -> str:
    """The one line a start that cannot go on ends with: exit 2, no traceback."""
    assert answer.returncode == 2, answer.stdout + answer.stderr
    assert "Traceback" not in answer.stderr
    lines = answer.stderr.splitlines()
    assert len(lines) == 1, answer.stderr
    return lines[0]


def old_state(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(OLD_STATE)


def version(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


# The lock

def test_a_second_lock_on_a_folder_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = StateLock(tmp_path)
    first.acquire("http://127.0.0.1:4000")
    with pytest.raises(StateLocked) as refused:
        StateLock(tmp_path).acquire("http://127.0.0.1:4105")
    assert f"pid {os.getpid()} at http://127.0.0.1:4000" in str(refused.value)
    assert "--state" in str(refused.value)
    first.release()
    StateLock(tmp_path).acquire("http://127.0.0.1:4105")  # free again


def test_reset_empties_the_folder_under_the_lock_and_keeps_the_lock_file(tmp_path: Path) -> None:
    (tmp_path / "dynamodb").mkdir()
    (tmp_path / "dynamodb" / DATA_FILE).write_bytes(b"tables")
    (tmp_path / "sandbox.db").write_bytes(b"jobs")
    lock = StateLock(tmp_path)
    lock.acquire("http://127.0.0.1:4000")
    lock.empty_folder()
    assert [p.name for p in tmp_path.iterdir()] == [LOCK_FILE]
    with pytest.raises(StateLocked):  # still held: nobody started beside the reset
        StateLock(tmp_path).acquire("http://127.0.0.1:4105")


# The state's file

def test_a_file_that_is_not_a_database_is_refused_naming_it_and_the_way_out(
        tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    path.write_bytes(b"half a copy of something else " * 200)
    with pytest.raises(StateError) as refused:
        State(path)
    message = str(refused.value)
    assert str(path) in message and "--reset" in message and "move" in message
    assert "\n" not in message


def test_a_state_cut_short_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole" / "sandbox.db"
    state = State(whole)
    state.add(jobs=[NewJob("delivery", "arn", {"body": "x" * 500}) for _ in range(300)])
    state.close()
    cut = tmp_path / "cut" / "sandbox.db"
    cut.parent.mkdir()
    data = whole.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(StateError, match="--reset"):
        State(cut)


def test_a_foreign_database_and_a_newer_state_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    with contextlib.closing(sqlite3.connect(foreign)) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StateError, match="not a sandbox's state"):
        State(foreign)
    newer = tmp_path / "newer.db"
    with contextlib.closing(sqlite3.connect(newer)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateError, match="newer sandbox"):
        State(newer)


def test_a_state_from_before_schema_versions_is_upgraded_keeping_its_messages(
        tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    old_state(path)
    state = State(path)
    (message,) = state.messages()
    assert (message.id, message.body, message.receives) == ("m-1", "kept", 0)
    state.close()
    assert version(path) == SCHEMA_VERSION


def test_reading_a_state_never_creates_nor_upgrades_it(tmp_path: Path) -> None:
    with pytest.raises(StateError):
        State(tmp_path / "none" / "sandbox.db", read_only=True)
    assert not (tmp_path / "none").exists()
    path = tmp_path / "old" / "sandbox.db"
    old_state(path)
    with pytest.raises(StateError, match="sandbox up"):
        State(path, read_only=True)
    assert version(path) == 0


def test_reading_a_damaged_page_says_so_and_names_the_way_out(tmp_path: Path) -> None:
    """A reader (`trace`, `dlq`) does not check every page at open, as `up` does: a history
    of hundreds of megabytes would cost seconds. The damage is met where it is read."""
    path = tmp_path / "sandbox.db"
    state = State(path)
    for n in range(400):
        state.record(EventPut("bus", {"id": f"e-{n}", "detail": {"pad": "x" * 500}}, []))
    state.close()
    data = bytearray(path.read_bytes())
    page = len(data) // 4096 // 2 * 4096  # a page in the middle of the history
    data[page:page + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(data))
    reader = State(path, read_only=True)
    with pytest.raises(StateError, match=r"damaged.*--reset"):
        query.since(reader, 0, 10_000)


# A full disk, on a small tmpfs

@contextlib.contextmanager
def small_disk(megabytes: int) -> Iterator[Path]:
    """A tmpfs of `megabytes`, unmounted whatever happens; the test is skipped where this
    machine does not let us mount one."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill needs root")
    mount_point = Path(tempfile.mkdtemp(prefix="sandbox-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


def fill(disk: Path) -> Path:
    """Take every byte left on `disk`; delete the file returned to give them back."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
    return filler


def test_a_full_disk_fails_one_write_and_keeps_every_earlier_one() -> None:
    with small_disk(2) as disk:
        state = State(disk / "sandbox.db")
        state.add(jobs=[NewJob("delivery", "arn:before", {})])
        filler = fill(disk)
        with pytest.raises(StorageFull):
            state.add(jobs=[NewJob("delivery", "arn:during", {"body": "x" * 100_000})])
        assert [job.target for job in state.due_jobs(1e12, set(), 10)] == ["arn:before"]
        filler.unlink()
        state.add(jobs=[NewJob("delivery", "arn:after", {})])
        assert [job.target for job in state.due_jobs(1e12, set(), 10)] == [
            "arn:before", "arn:after"]
        state.close()


def test_a_job_that_meets_a_full_disk_stays_and_runs_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "STORAGE_FULL_PAUSE_S", 0.05)
    state = State(tmp_path / "sandbox.db")
    tries: list[int] = []
    done = threading.Event()

    def handler(job: Job) -> None:
        tries.append(job.id)
        if len(tries) == 1:
            raise StorageFull(state.path)  # as its commit would on a full disk
        state.add(done=job.id)
        done.set()

    runner = JobRunner(state, {"delivery": handler})
    state.add(jobs=[NewJob("delivery", "arn:kept", {})])
    runner.start()
    try:
        wait_for(done.is_set, 10, "the job to run again after the full disk")
    finally:
        runner.stop()
    assert len(tries) == 2 and tries[0] == tries[1]
    assert state.pending_jobs() == 0


# `sandbox up` as a user runs it

def test_a_damaged_state_stops_up_with_one_line(assembly: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "sandbox.db").write_bytes(b"not a database " * 300)
    line = one_line(up("--assembly", str(assembly), "--state", str(state),
                       "--port", str(free_port())))
    assert str(state / "sandbox.db") in line and "--reset" in line


def test_a_damaged_dynamodb_local_file_stops_up_with_one_line(assembly: Path,
                                                              tmp_path: Path) -> None:
    data = tmp_path / "state" / "dynamodb" / DATA_FILE
    data.parent.mkdir(parents=True)
    data.write_bytes(os.urandom(20_000))
    line = one_line(up("--assembly", str(assembly), "--state", str(tmp_path / "state"),
                       "--port", str(free_port())))
    assert str(data) in line and "--reset" in line


def test_a_port_in_use_stops_up_with_one_line_naming_it(assembly: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(up("--assembly", str(assembly), "--state", str(tmp_path / "state"),
                           "--port", str(port)))
    assert f"port {port}" in line and "--port" in line


@pytest.mark.slow
def test_a_second_up_beside_a_first_is_refused_and_the_first_loses_nothing(
        assembly: Path, tmp_path: Path) -> None:
    """`make run` in two terminals: the same state folder, the second on another port."""
    state = tmp_path / "state"
    with SandboxProcess(assembly, state) as first:
        before = create_order(first)
        assert first.process is not None
        second = up("--assembly", str(assembly), "--state", str(state),
                    "--port", str(free_port()))
        line = one_line(second)
        assert f"pid {first.process.pid} at {first.url}" in line
        assert "--reset" not in line
        line = one_line(up("--assembly", str(assembly), "--state", str(state), "--reset",
                           "--port", str(free_port())))  # nor emptied under it
        assert f"pid {first.process.pid}" in line

        after = create_order(first)
        Orders(first).wait_complete([before, after])
        for reader in (["orders", "--port", str(first.port)],
                       ["dlq", "--state", str(state)]):  # readers run beside it
            answer = subprocess.run([sys.executable, "-m", "sandbox", *reader], cwd=ROOT,
                                    capture_output=True, text=True, timeout=60)
            assert answer.returncode == 0, answer.stderr
        assert before in subprocess.run(
            [sys.executable, "-m", "sandbox", "orders", "--port", str(first.port)], cwd=ROOT,
            capture_output=True, text=True, timeout=60).stdout


@pytest.mark.slow
def test_a_killed_sandbox_leaves_no_lock_behind(assembly: Path, tmp_path: Path) -> None:
    sandbox = SandboxProcess(assembly, tmp_path / "state").start()
    try:
        accepted = create_order(sandbox)
        sandbox.stop(signal.SIGKILL)
        sandbox.start()  # the kernel released the dead one's lock
        Orders(sandbox).wait_complete([accepted])
    finally:
        sandbox.stop()


BIG = "x" * 200_000


def refused(call: object) -> bool:
    try:
        call()  # type: ignore[operator]
    except ClientError:
        return True
    return False


def aws_code(call: object) -> tuple[int, str]:
    try:
        call()  # type: ignore[operator]
    except ClientError as error:
        return (error.response["ResponseMetadata"]["HTTPStatusCode"],
                error.response["Error"]["Code"])
    raise AssertionError("the call succeeded on a full disk")


@pytest.mark.slow
def test_a_full_disk_refuses_new_work_as_aws_does_and_resumes_when_space_returns(
        assembly: Path) -> None:
    with small_disk(96) as disk, SandboxProcess(assembly, disk / "state",
                                                extra_args=("--retry-scale", "0.001")) as sandbox:
        orders = Orders(sandbox)
        kept = [create_order(sandbox) for _ in range(3)]
        orders.wait_complete(kept)
        sqs = sandbox.client("sqs")
        queue = sqs.list_queues()["QueueUrls"][0]
        bus = order_bus(sandbox)
        in_flight = create_order(sandbox)  # its choreography meets the full disk on its way
        filler = fill(disk)
        try:
            # SQLite reuses its write-ahead log's room: writes go on until that is used up too.
            wait_for(lambda: refused(lambda: sqs.send_message(QueueUrl=queue, MessageBody=BIG)),
                     60, "SendMessage to be refused")
            assert aws_code(lambda: sqs.send_message(QueueUrl=queue, MessageBody=BIG)
                            ) == (500, "InternalFailure")
            assert aws_code(lambda: sandbox.client("events").put_events(Entries=[{
                "Source": "test", "DetailType": "t", "Detail": json.dumps({"x": BIG}),
                "EventBusName": bus}])) == (500, "InternalException")
            status, _, body = get(f"{sandbox.url}/prod/order")
            assert (status, json.loads(body)) == (500, {"message": "Internal server error"})
            status, _ = aws_code(lambda: orders.dynamodb.put_item(
                TableName=orders.table, Item={"ID": {"S": "x" * 300_000}}))
            assert status >= 400  # as DynamoDB Local answers
        finally:
            filler.unlink()
        for order_id in kept:  # nothing accepted before is lost
            assert orders.complete(order_id)
        orders.wait_complete([in_flight, create_order(sandbox)], timeout_s=120)
        assert sqs.send_message(QueueUrl=queue, MessageBody="after")["MessageId"]
