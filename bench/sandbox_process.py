"""The sandbox under test, run as a user runs it (`python -m sandbox up`) in a process of its own,
so the bench's own threads never share its interpreter lock; and the processes it started, for
their memory and CPU time from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.dynamodb.local import free_port

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Process:
    pid: int
    role: str  # "sandbox", "dynamodb-local", or the function name of a Lambda worker


def proc_status_kb(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmHWM: the peak resident set), None when gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_of(pid: int) -> list[int]:
    """Every process whose parent chain leads to `pid` (workers run in sessions of their own,
    so a process group would miss them)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def role_of(pid: int) -> str | None:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    if any(part.endswith(b"DynamoDBLocal.jar") for part in command):
        return "dynamodb-local"
    for variable in environ:
        if variable.startswith(b"AWS_LAMBDA_FUNCTION_NAME="):
            return variable.split(b"=", 1)[1].decode()
    return None


class SandboxProcess:
    def __init__(self, assembly: Path, state: Path, retry_scale: float) -> None:
        self.assembly = assembly
        self.state = state
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.retry_scale = retry_scale
        self.output = state.parent / "sandbox-output.log"  # --reset empties the state folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def history_db(self) -> Path:
        return self.state / "sandbox.db"

    def start(self, timeout_s: float = 120) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.output, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sandbox", "up", "--assembly", str(self.assembly),
                 "--state", str(self.state), "--port", str(self.port), "--reset",
                 "--retry-scale", str(self.retry_scale)],
                cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while b"sandbox: ready" not in self.output.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sandbox did not start:\n" + self.output.read_text())
            time.sleep(0.1)

    def processes(self) -> list[Process]:
        assert self.process is not None
        found = [Process(self.process.pid, "sandbox")]
        for pid in children_of(self.process.pid):
            role = role_of(pid)
            if role is not None:
                found.append(Process(pid, role))
        return found

    def dynamodb_url(self) -> str:
        """DynamoDB Local's own address, from its command line: the floor talks to it directly,
        as the functions do."""
        for process in self.processes():
            if process.role == "dynamodb-local":
                command = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
                return f"http://127.0.0.1:{int(command[command.index(b'-port') + 1])}"
        raise RuntimeError("DynamoDB Local is not running under the sandbox")

    def stop(self) -> None:
        """Ctrl-C, as a user stops it; a kill if it does not stop within 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
