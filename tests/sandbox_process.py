"""The sandbox as a user runs it: `python -m sandbox up` in a process of its own, so tests can
send it Ctrl-C or kill it outright; and the real app in it, reached as a user reaches it (the
order URL, boto3 on the endpoint, `python -m sandbox dlq`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from sandbox.dynamodb.local import free_port

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy; fail saying what never happened."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def descendants(pid: int) -> set[int]:
    """Every process whose parent chain leads to `pid` (workers run in sessions of their own,
    so a process group would miss them)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class SandboxProcess:
    def __init__(self, assembly: Path, state: Path, port: int | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.assembly = assembly
        self.state = state
        self.port = port or free_port()
        self.extra_args = extra_args
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()

    def start(self, timeout_s: float = 90) -> SandboxProcess:
        self.lines = []
        self._ready.clear()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "up", "--assembly", str(self.assembly),
             "--state", str(self.state), "--port", str(self.port), *self.extra_args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        try:
            wait_for(lambda: self._ready.is_set() or self.process.poll() is not None, timeout_s,
                     "the sandbox to print 'ready'")
        except AssertionError as late:  # what it printed says how far it got
            raise AssertionError(f"{late}; it printed:\n" + "\n".join(self.lines)) from None
        if not self._ready.is_set():
            raise AssertionError("sandbox exited:\n" + "\n".join(self.lines))
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("sandbox: ready"):
                self._ready.set()

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 30) -> int:
        """Send `sig` (Ctrl-C by default) and wait for the sandbox to exit."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            # A sandbox that does not stop is a failure, but must not outlive the test run.
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the sandbox did not stop within {timeout_s} s after signal "
                                 f"{sig}:\n{self.output()}") from None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def client(self, service: str) -> Any:
        return boto3.client(
            service, endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 0}, read_timeout=60),
        )

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()


# The real app in a sandbox, as a user reaches it

STAMPS = ("time_order_service", "time_invoice_service", "time_fulfilment_service",
          "time_forecasting_service", "time_logistic_service")
EDGE_ASSEMBLY = ROOT / "tests" / "fixtures" / "api-assembly"
FAST_RETRIES = ("--retry-scale", "0.001")


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def create_order(sandbox: SandboxProcess) -> str:
    status, _, body = get(f"{sandbox.url}/prod/order")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["status"] == "order_created"
    return answer["ID"]


class Orders:
    """The order table, read back through the sandbox's endpoint."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.dynamodb = sandbox.client("dynamodb")
        (self.table,) = self.dynamodb.list_tables()["TableNames"]

    def item(self, order_id: str) -> dict[str, str]:
        item = self.dynamodb.get_item(TableName=self.table, Key={"ID": {"S": order_id}},
                                      ConsistentRead=True).get("Item", {})
        return {key: value["S"] for key, value in item.items()}

    def complete(self, order_id: str) -> dict[str, str] | None:
        item = self.item(order_id)
        return item if all(stamp in item for stamp in STAMPS) else None

    def wait_complete(self, order_ids: list[str], timeout_s: float = 60) -> None:
        for order_id in order_ids:
            wait_for(lambda order_id=order_id: self.complete(order_id), timeout_s,
                     f"order {order_id} to reach five stamps")


def failure_messages(state: Path) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "sandbox", "dlq", "--json", "--state", str(state)],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def order_bus(sandbox: SandboxProcess) -> str:
    buses = sandbox.client("events").list_event_buses()["EventBuses"]
    (bus,) = [b["Name"] for b in buses if b["Name"] != "default"]
    return bus


def workers(sandbox: SandboxProcess) -> list[int]:
    assert sandbox.process is not None
    found = []
    for pid in descendants(sandbox.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"awslambdaric" in cmdline:
            found.append(pid)
    return found
