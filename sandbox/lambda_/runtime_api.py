"""Lambda functions run locally: worker processes of AWS's runtime interface client (awslambdaric)
behind a Lambda Runtime API that this module serves.

Why awslambdaric: it is the code that runs a Python function in Lambda itself, so the handler
sees the same event, context, logging format and error JSON as in AWS. Each worker asks its own
Runtime API server (one per worker, on 127.0.0.1) for work; the server therefore always knows
which process is running which invocation, which is what a timeout or a memory kill needs.

What Lambda does around the runtime, and this module does too: reuse warm workers and start more
under load, kill a worker past its timeout or its memory size, report a runtime that died, and
write the START, END and REPORT lines.

Where Lambda puts a function's layers, this module points the import path: Lambda extracts the
layers into /opt in the function's order (a later layer's file overwrites an earlier one's) and
puts `/opt/python/lib/python3.X/site-packages` and `/opt/python` on `sys.path` after the
function's own code (`/var/task`). Locally each layer stays in its own folder, so a later
layer's folders come first on PYTHONPATH: the same file wins as in /opt.

A worker runs one version of its function (`FunctionConfig.version`, `$LATEST` or a number):
Lambda's execution environments are per version, and the version shows in the worker's
`AWS_LAMBDA_FUNCTION_VERSION`, its log stream name and its START lines.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO

from sandbox.core import ids
from sandbox.traces import context as traces

RUNTIME_API = "/2018-06-01/runtime"
ACCEPTED = b'{"status":"OK"}'
MAX_LINE = 65_536  # bytes of one request or header line
# on_log(function name, line, log stream, request ID of the invocation or None)
OnLog = Callable[[str, str, str, str | None], None]
# Lambda gives a function's init phase 10 s of its own, apart from the function's timeout.
INIT_LIMIT_S = 10.0
# How long an init takes before one was measured, and how much each new one counts after.
FIRST_INIT_GUESS_S = 0.5
INIT_LEARNING = 0.3
# How often an invocation that waits for a core to start a worker on looks again.
INIT_SLOT_POLL_S = 0.02
# How often the memory watchdog looks at a busy worker's resident memory.
WATCH_INTERVAL_S = 0.05
# What a worker inherits from the sandbox's own environment; everything else it gets is Lambda's.
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "USER",
                       "LD_LIBRARY_PATH")


@dataclass(frozen=True)
class FunctionConfig:
    """One function as the template defines it."""

    name: str
    arn: str
    code_dir: Path
    handler: str  # "app.lambda_handler"
    runtime: str  # "python3.14"
    timeout_s: float
    memory_mb: int
    environment: dict[str, str]
    dead_letter_arn: str | None = None  # DeadLetterConfig.TargetArn: a queue or topic
    # ReservedConcurrentExecutions: at most this many runs at once (0: none); None: no limit
    reserved_concurrency: int | None = None
    python: str = sys.executable  # the interpreter of the workers (`interpreters`)
    layers: tuple[Path, ...] = ()  # each layer's content folder, in the template's order
    version: str = "$LATEST"  # the version the workers run


@dataclass(frozen=True)
class Invocation:
    """The record of one invoke, for logs, traces and benchmarks."""

    request_id: str
    function: str
    ok: bool
    payload: bytes  # the handler's response, or the error JSON {"errorMessage", "errorType", ...}
    error_type: str | None
    started: float  # time.time() when invoke() was called
    duration_ms: float  # Lambda's Duration: from handing the event to the runtime to its answer
    init_duration_ms: float | None  # set when this invoke started a cold worker
    max_memory_mb: int
    memory_mb: int
    version: str = "$LATEST"  # the executed version
    # time.time() when the runtime got the event (its /next answered): Lambda's START. With the
    # caller's own clock it splits an invoke's latency into the hop to the runtime and the run.
    delivered: float | None = None


# Pure semantics: Lambda's texts and the worker's environment.


def worker_environment(config: FunctionConfig, base_env: Mapping[str, str], runtime_api: str,
                       log_stream: str, inherited: Mapping[str, str]) -> dict[str, str]:
    """The environment of a worker: a few inherited variables, then the sandbox's (endpoint,
    region, fake credentials), then the function's, then the variables Lambda reserves."""
    env = {key: inherited[key] for key in INHERITED_VARIABLES if key in inherited}
    env |= base_env
    env |= config.environment
    env |= {
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": config.name,
        "AWS_LAMBDA_FUNCTION_VERSION": config.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
        "_HANDLER": config.handler,
        "LAMBDA_TASK_ROOT": str(config.code_dir),
        "PYTHONPATH": os.pathsep.join(import_path(config)),
        # Lambda's code folder is read-only: leave the assembly as it was synthesized.
        "PYTHONDONTWRITEBYTECODE": "1",
        "TZ": ":UTC",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    # This variable switches awslambdaric to Lambda Managed Instances' multi-process mode, which
    # needs a socket this sandbox does not provide: a worker must never see it.
    env.pop("AWS_LAMBDA_MAX_CONCURRENCY", None)
    return env


def import_path(config: FunctionConfig) -> list[str]:
    """The function's code, then its layers' Python folders, the last layer first (see the
    module's docstring)."""
    site = f"python/lib/python{config.runtime.removeprefix('python')}/site-packages"
    layers = [str(layer / sub) for layer in reversed(config.layers) for sub in (site, "python")]
    return [str(config.code_dir), *layers]


def log_stream_name(now: float, version: str = "$LATEST") -> str:
    """A log stream name as Lambda makes them: date, version, random id."""
    return time.strftime("%Y/%m/%d", time.gmtime(now)) + f"/[{version}]" + uuid.uuid4().hex


def report_line(request_id: str, duration_ms: float, memory_mb: int, max_memory_mb: int,
                init_duration_ms: float | None, status: str | None = None,
                error_type: str | None = None) -> str:
    """Lambda's REPORT line; Status (and Error Type) only when the runtime did not answer."""
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_memory_mb} MB",
    ]
    if init_duration_ms is not None:
        fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if status is not None:
        fields.append(f"Status: {status}")
    if error_type is not None:
        fields.append(f"Error Type: {error_type}")
    return "\t".join(fields)


def timeout_message(request_id: str, timeout_s: float, now: float) -> str:
    """Lambda's text for an invocation killed at its deadline."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{stamp} {request_id} Task timed out after {timeout_s:.2f} seconds"


def exit_message(request_id: str, returncode: int) -> str:
    """Lambda's text for a runtime that exited during an invocation (its Go wording)."""
    if returncode < 0:
        name = (signal.strsignal(-returncode) or f"signal {-returncode}").lower()
        return f"RequestId: {request_id} Error: Runtime exited with error: signal: {name}"
    if returncode > 0:
        return f"RequestId: {request_id} Error: Runtime exited with error: exit status {returncode}"
    return f"RequestId: {request_id} Error: Runtime exited without providing a reason"


def error_payload(message: str, error_type: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def error_type_of(body: bytes, header: str | None) -> str:
    """The error type a runtime reported: the JSON's errorType (awslambdaric sends no header for
    invocation errors), else the header, else Lambda's default."""
    try:
        reported = json.loads(body).get("errorType")
    except (ValueError, AttributeError):
        reported = None
    if isinstance(reported, str) and reported:
        return reported
    return header or "Unhandled"


def peak_memory_kb(proc_status: str) -> int | None:
    """The peak resident memory (VmHWM) in /proc/<pid>/status: the peak catches what a spike
    between two samples would hide, as Lambda's cgroup limit would."""
    for line in proc_status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


# I/O: a worker process, its Runtime API server, its output.


@dataclass
class _Pending:
    request_id: str
    payload: bytes
    invoked_arn: str  # the ARN the caller named: qualified when through a version or alias
    start_logged: bool = False
    delivered_at: float | None = None  # time.monotonic() when the worker got the event
    # Made in the invoking thread, inside the invocation's span: Root=...;Parent=<it>;Sampled=1
    trace: str = field(default_factory=traces.header)


@dataclass(frozen=True)
class _Outcome:
    kind: str  # "response", "error", "init_error" or "exit"
    at: float  # time.monotonic()
    body: bytes = b""
    error_type: str | None = None
    returncode: int | None = None


@dataclass(frozen=True)
class _Result:
    ok: bool
    payload: bytes
    error_type: str | None
    duration_ms: float
    init_duration_ms: float | None
    max_memory_mb: int
    reusable: bool  # the runtime answered, so the worker is ready for the next event
    delivered_at: float | None = None  # time.monotonic() when the runtime got the event


def runtime_answer(worker: _Worker, method: str, path: str, headers: Mapping[str, str],
                   body: bytes, send: Callable[[bytes], None]) -> bool:
    """Answer one request through `send`; False when the worker is being stopped (the
    connection closes). The answer to `next` may come later, from the invoking thread."""
    if method == "GET" and path == f"{RUNTIME_API}/invocation/next":
        return worker.next_invocation(send)
    send(response_bytes(*_answer(worker, method, path, headers, body)))
    return True


def _answer(worker: _Worker, method: str, path: str, headers: Mapping[str, str],
            body: bytes) -> tuple[int, bytes, dict[str, str]]:
    error_header = headers.get("lambda-runtime-function-error-type")
    parts = path.removeprefix(RUNTIME_API + "/").split("/")
    if method == "POST" and parts == ["init", "error"]:
        if worker.init_failed(body, error_header):
            return 202, ACCEPTED, {}
        return 403, _api_error("InvalidStateTransition", "Init already done"), {}
    if method == "POST" and len(parts) == 3 and parts[0] == "invocation" \
            and parts[2] in ("response", "error"):
        if worker.answered(parts[1], parts[2], body, error_header):
            return 202, ACCEPTED, {}
        return 400, _api_error("InvalidRequestID", f"No invocation {parts[1]}"), {}
    return 404, _api_error("UnknownPath", f"No such path: {path}"), {}


def _api_error(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def read_request(stream: BinaryIO, answer: Callable[[bytes], None]
                 ) -> tuple[str, str, dict[str, str], bytes] | None:
    """One HTTP/1.1 request from a worker's kept-alive connection: method, path, headers (names
    in lower case) and body; None when the worker closed it. `answer` sends the interim
    `100 Continue` a client that expects one waits for."""
    line = stream.readline(MAX_LINE)
    if not line.strip():
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers = {}
    while (header := stream.readline(MAX_LINE)).strip():
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        answer(b"HTTP/1.1 100 Continue\r\n\r\n")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while size := int(stream.readline(MAX_LINE).split(b";")[0].strip() or b"0", 16):
            chunks.append(stream.read(size))
            stream.readline(MAX_LINE)  # the CRLF after each chunk
        while stream.readline(MAX_LINE).strip():
            pass  # trailers
        return method, path, headers, b"".join(chunks)
    return method, path, headers, stream.read(int(headers.get("content-length") or 0))


def event_bytes(pending: _Pending, deadline_ms: int) -> bytes:
    """The answer to `next`: the event, with what the runtime client builds the context of."""
    return response_bytes(200, pending.payload, {
        "Lambda-Runtime-Aws-Request-Id": pending.request_id,
        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
        "Lambda-Runtime-Invoked-Function-Arn": pending.invoked_arn,
        "Lambda-Runtime-Trace-Id": pending.trace,
    })


def response_bytes(status: int, body: bytes, headers: Mapping[str, str]) -> bytes:
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class _RuntimeApiServer:
    """A worker's own Runtime API: one listening socket on 127.0.0.1, a thread per connection
    (the runtime client keeps one open). Written on sockets rather than `http.server`, whose
    header parsing (the email package) and response formatting were a large share of the
    sandbox's CPU per invocation: replaced, an order cost the sandbox 15.1 ms of CPU instead of
    17.8 (`make bench`). The protocol is four requests, each answered in one write."""

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.server_address = self.socket.getsockname()

    def accept_loop(self) -> None:
        """Accept until stop() shuts the listening socket down (which wakes accept() on Linux,
        the only platform awslambdaric supports): no polling."""
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            # Keep-alive and no Nagle: with either missing, each invoke waits about 88 ms.
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(connection,), daemon=True,
                             name=f"{threading.current_thread().name}-connection").start()

    def _serve(self, connection: socket.socket) -> None:
        """Requests one after the other until the worker hangs up or is stopped; a worker
        killed mid-request drops its connection: expected, not an error."""
        with connection, connection.makefile("rb") as stream:
            try:
                while request := read_request(stream, connection.sendall):
                    if not runtime_answer(self.worker, *request, connection.sendall):
                        return
            except (OSError, ValueError):
                return

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # already shut down
            self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()


class _Worker:
    """One awslambdaric process, its Runtime API server and the thread reading its output."""

    def __init__(self, config: FunctionConfig, on_log: OnLog,
                 base_env: Mapping[str, str], on_exit: Callable[[_Worker], None],
                 on_ready: Callable[[float | None], None] = lambda _: None) -> None:
        """`on_ready(seconds)` is called once, when the init is over: with how long it took,
        or None when the worker failed it or died first."""
        self.config = config
        self._on_log = on_log
        self._on_exit = on_exit
        self._on_ready = on_ready
        # The event no one asked for yet, or the connection that asked and waits for one: the
        # worker's `next` and the invoking thread's `run` meet here, under _lock.
        self._waiting: _Pending | None = None
        self._parked: Callable[[bytes], None] | None = None
        self._outcomes: queue.Queue[_Outcome] = queue.Queue()
        self._lock = threading.Lock()
        self._current: _Pending | None = None
        self._init_end: float | None = None  # when the worker first asked for an event
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._peak_kb = 0
        # Output: every emission goes through _log_lock after reading what the pipe holds, so
        # lines keep the order the function wrote them in, between START and END.
        self._log_lock = threading.Lock()
        self._partial = b""
        self._eof = False
        self._writing: str | None = None  # the invocation whose lines come now: START to REPORT
        self._start_due: _Pending | None = None  # handed to the worker, its START not written

        self._server = _RuntimeApiServer(self)
        port = self._server.server_address[1]
        self.log_stream = log_stream_name(time.time(), config.version)
        env = worker_environment(config, base_env, f"127.0.0.1:{port}", self.log_stream,
                                 os.environ)
        self.spawned_at = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                [config.python, "-m", "awslambdaric", config.handler],
                cwd=config.code_dir, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except BaseException:
            self._server.stop()
            raise
        self._stdout_fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        os.set_blocking(self._stdout_fd, False)
        self._status_fd = os.open(f"/proc/{self.proc.pid}/status", os.O_RDONLY)  # its memory
        name = f"lambda-{config.name}-{self.proc.pid}"
        for target, role in ((self._server.accept_loop, "api"), (self._read_output, "output"),
                             (self._wait_exit, "exit")):
            threading.Thread(target=target, name=f"{name}-{role}", daemon=True).start()

    # Called by the Runtime API server's threads.

    def next_invocation(self, send: Callable[[bytes], None]) -> bool:
        """The worker asks for an event: the one waiting is sent at once; with none, the
        connection is parked, and the next `run` sends its event on it from the invoking thread
        (`_deliver`). The connection's thread goes back to reading at once: no thread is woken
        to pass an event on, which was a thread switch on every hop's path (0.18 ms of a hop
        with one order at a time, more under load). False when the worker is stopped."""
        now = time.monotonic()
        with self._lock:
            if self._stopped:
                return False
            first = self._init_end is None
            if first:
                self._init_end = now
            pending, self._waiting = self._waiting, None
            self._parked = None if pending else send
        if first:
            self._ready(now - self.spawned_at)
        if pending is not None:
            self._deliver(pending, send)
        return True

    def _deliver(self, pending: _Pending, send: Callable[[bytes], None]) -> None:
        """Send the event; its START line is written once the worker has it: off the hop's
        path, and still before any line of the invocation (`_start`)."""
        now = time.monotonic()
        with self._lock:
            self._current = pending
        pending.delivered_at = now  # read by the invoking thread at its next look
        with self._log_lock:
            self._pump()  # what the worker wrote before this event is not this invocation's
            self._writing, self._start_due = pending.request_id, pending
        try:
            send(event_bytes(pending, int((time.time() + self.config.timeout_s) * 1000)))
        except OSError:  # the connection is closed: the event waits for the worker's next ask
            with self._lock:
                self._current, self._waiting = None, pending
            return
        with self._log_lock:
            self._start()

    def _start(self, pending: _Pending | None = None) -> None:
        """START of `pending` (by default the event handed over last), if not written yet
        (caller holds _log_lock)."""
        pending, self._start_due = pending or self._start_due, None
        if pending is not None and not pending.start_logged:
            pending.start_logged = True
            self._writing = pending.request_id
            self._on_log(self.config.name, f"START RequestId: {pending.request_id} "
                         f"Version: {self.config.version}", self.log_stream, pending.request_id)

    def answered(self, request_id: str, kind: str, body: bytes, error_header: str | None) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._current is None or self._current.request_id != request_id:
                return False
            self._current = None
        error_type = error_type_of(body, error_header) if kind == "error" else None
        self._outcomes.put(_Outcome(kind, now, body, error_type))
        return True

    def init_failed(self, body: bytes, error_header: str | None) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._init_end is not None:
                return False
            self._init_end = now
        self._ready(None)
        self._outcomes.put(_Outcome("init_error", now, body, error_type_of(body, error_header)))
        return True

    def _ready(self, seconds: float | None) -> None:
        """The init is over: tell the workers' pool once, whatever ended it."""
        with self._lock:
            ready, self._on_ready = self._on_ready, lambda _: None
        ready(seconds)

    # Called by the invoking thread.

    def run(self, request_id: str, payload: bytes, invoked_arn: str) -> _Result:
        """Hand one event to the worker and wait for its answer, its death, its deadline or its
        memory limit, whichever comes first."""
        cold = self._init_end is None
        pending = _Pending(request_id, payload, invoked_arn)
        with self._lock:
            send, self._parked = self._parked, None
            if send is None:
                self._waiting = pending  # sent when the worker asks (`next_invocation`)
        if send is not None:
            self._deliver(pending, send)
        init_limit = time.monotonic() + INIT_LIMIT_S  # until the worker asks for the event

        def limit() -> float:
            delivered = pending.delivered_at
            return init_limit if delivered is None else delivered + self.config.timeout_s

        while True:
            wait = max(0.0, min(WATCH_INTERVAL_S, limit() - time.monotonic()))
            try:
                outcome: _Outcome | None = self._outcomes.get(timeout=wait)
            except queue.Empty:
                outcome = None
            now = time.monotonic()
            delivered_at = pending.delivered_at
            if self._sample_memory() > self.config.memory_mb * 1024:
                self.stop()
                message = exit_message(request_id, -signal.SIGKILL)
                return self._failed(pending, cold, delivered_at, now, message,
                                    "Runtime.OutOfMemory", "error")
            if outcome is None:
                if now < limit():
                    continue
                self.stop()
                message = timeout_message(request_id, self.config.timeout_s, time.time())
                return self._failed(pending, cold, delivered_at, now, message,
                                    "Sandbox.Timedout", "timeout")
            if outcome.kind == "exit":
                message = exit_message(request_id, outcome.returncode or 0)
                return self._failed(pending, cold, delivered_at, outcome.at, message,
                                    "Runtime.ExitError", "error")
            result = _Result(outcome.kind == "response", outcome.body, outcome.error_type,
                             self._ms(delivered_at, outcome.at), self._init_ms(cold, outcome.at),
                             self.max_memory_mb, reusable=outcome.kind != "init_error",
                             delivered_at=delivered_at)
            self._finish_log(pending, result)
            return result

    def _failed(self, pending: _Pending, cold: bool, delivered_at: float | None, at: float,
                message: str, error_type: str, status: str) -> _Result:
        """The answer Lambda gives for a runtime that did not answer: killed or dead."""
        result = _Result(False, error_payload(message, error_type), error_type,
                         self._ms(delivered_at, at), self._init_ms(cold, at), self.max_memory_mb,
                         reusable=False)
        self._finish_log(pending, result, message, status)
        return result

    def _finish_log(self, pending: _Pending, result: _Result, message: str | None = None,
                    status: str | None = None) -> None:
        request_id = pending.request_id
        if message is not None:
            self.log_marker(pending, message)
            if status == "error":
                self.log_marker(pending, str(result.error_type))
        self.log_marker(pending, f"END RequestId: {request_id}")
        self.log_marker(pending, report_line(
            request_id, result.duration_ms, self.config.memory_mb, result.max_memory_mb,
            result.init_duration_ms, status, result.error_type if status == "error" else None))

    @staticmethod
    def _ms(since: float | None, until: float) -> float:
        return 0.0 if since is None else (until - since) * 1000

    def _init_ms(self, cold: bool, end: float) -> float | None:
        """Init Duration: from spawn to the worker's first request for an event (or to the end of
        its init, when it never asked)."""
        if not cold:
            return None
        init_end = end if self._init_end is None else self._init_end
        return (init_end - self.spawned_at) * 1000

    @property
    def max_memory_mb(self) -> int:
        return math.ceil(self._peak_kb / 1024)

    def _sample_memory(self) -> int:
        """One read of the file opened at spawn (an open, a read and a close each time cost
        the invoking thread three system calls, and a wait for the GIL after each)."""
        with self._stop_lock:  # stop() closes the file, and its number may be taken again
            try:
                status = "" if self._stopped else \
                    os.pread(self._status_fd, 8192, 0).decode("latin-1")
            except OSError:  # gone already: its exit is on its way
                status = ""
        self._peak_kb = max(self._peak_kb, peak_memory_kb(status) or 0)
        return self._peak_kb

    # Output and exit.

    def log_marker(self, pending: _Pending, line: str) -> None:
        """Emit a line of Lambda's own after everything the function has written so far, and
        after the invocation's START line (a worker that never asked for the event still gets
        one, as in Lambda)."""
        with self._log_lock:
            self._pump()
            self._start(pending)
            self._on_log(self.config.name, line, self.log_stream, pending.request_id)
            if line.startswith("REPORT "):
                self._writing = None

    def _pump(self) -> None:
        """Pass on every complete line the pipe holds now (caller holds _log_lock)."""
        while not self._eof:
            try:
                chunk = os.read(self._stdout_fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self._eof = True
                if self._partial:
                    self._on_log(self.config.name, self._partial.decode("utf-8", "replace"),
                                 self.log_stream, self._writing)
                self._partial = b""
                return
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            if lines:
                self._start()
            for line in lines:
                self._on_log(self.config.name, line.decode("utf-8", "replace"), self.log_stream,
                             self._writing)

    def _read_output(self) -> None:
        poller = select.poll()
        poller.register(self._stdout_fd, select.POLLIN)
        while True:
            poller.poll()
            with self._log_lock:
                self._pump()
                if self._eof:
                    self.proc.stdout.close()  # type: ignore[union-attr]
                    return

    def _wait_exit(self) -> None:
        returncode = self.proc.wait()
        self._ready(None)
        self._outcomes.put(_Outcome("exit", time.monotonic(), returncode=returncode))
        self._on_exit(self)

    def stop(self) -> None:
        """Kill the worker's process group and stop its server; idempotent, and returns only once
        the worker is gone, whoever called first."""
        with self._stop_lock:
            if self._stopped:
                return
            with contextlib.suppress(ProcessLookupError):  # the group is gone already
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self._server.stop()
            os.close(self._status_fd)
            self._stopped = True


class FunctionWorkers:
    """The workers of one function: warm ones reused, new ones started as load needs them, up
    to max_concurrency, as Lambda scales out.

    A new worker costs an init (a Python process importing boto3 and the handler: 0.2-0.4 s of
    a core), so it starts only when it is worth it: for the first invocation, or once an
    invocation has waited for a warm worker as long as an init takes (`init_s`, learnt from
    this function's inits). And never more inits at once than the machine has cores (`inits`,
    shared by every function): on 2 cores, 16 users arriving at once at five cold functions
    started 50 workers together, and each init took 4.3 s instead of 0.35.
    """

    def __init__(self, config: FunctionConfig, on_log: OnLog,
                 base_env: dict[str, str], max_concurrency: int = 10,
                 inits: threading.Semaphore | None = None) -> None:
        """on_log(function_name, line, log_stream, request_id) gets every line the function
        writes (stdout and stderr) and Lambda's START/END/REPORT lines, with its worker's log
        stream name and the invocation it belongs to (None: the init's), from several threads:
        it must be thread-safe.
        base_env is what every worker gets besides the function's own environment."""
        if not config.runtime.startswith("python"):
            raise ValueError(f"function {config.name}: runtime {config.runtime!r} is not Python, "
                             "the only kind the sandbox runs")
        if not config.code_dir.is_dir():
            raise ValueError(f"function {config.name}: code folder {config.code_dir} not found")
        if config.timeout_s <= 0 or config.memory_mb <= 0:
            raise ValueError(f"function {config.name}: timeout ({config.timeout_s} s) and memory "
                             f"size ({config.memory_mb} MB) must be positive")
        if max_concurrency < 1:
            raise ValueError(f"function {config.name}: max_concurrency must be at least 1, "
                             f"not {max_concurrency}")
        self.config = config
        self._on_log = on_log
        self._base_env = dict(base_env)
        self._max_concurrency = max_concurrency
        self._cond = threading.Condition()
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._starting = 0
        self._closed = False
        self._inits = inits or threading.BoundedSemaphore(os.cpu_count() or 1)
        self.init_s = FIRST_INIT_GUESS_S

    @property
    def pids(self) -> list[int]:
        """The process ids of the live workers."""
        with self._cond:
            return [worker.proc.pid for worker in self._workers]

    def invoke(self, payload: bytes, request_id: str | None = None,
               invoked_arn: str | None = None) -> Invocation:
        """Run the function once on a warm or a new worker; blocks, thread-safe. `invoked_arn`:
        the ARN the caller named (the context's invoked_function_arn), the function's own by
        default."""
        request_id = request_id or ids.uuid4()
        started = time.time()
        worker = self._acquire()
        result = None
        try:
            result = worker.run(request_id, payload, invoked_arn or self.config.arn)
        finally:
            self._release(worker, reusable=result is not None and result.reusable)
        delivered = (None if result.delivered_at is None
                     else time.time() - (time.monotonic() - result.delivered_at))
        return Invocation(request_id, self.config.name, result.ok, result.payload,
                          result.error_type, started, result.duration_ms,
                          result.init_duration_ms, result.max_memory_mb, self.config.memory_mb,
                          self.config.version, delivered)

    def close(self) -> None:
        """Kill every worker and stop its server; idempotent. Invokes running now answer with
        Runtime.ExitError; later ones raise RuntimeError."""
        with self._cond:
            self._closed = True
            workers, self._workers, self._idle = self._workers, [], []
            self._cond.notify_all()
        for worker in workers:
            worker.stop()

    def _acquire(self) -> _Worker:
        waiting_since = time.monotonic()
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError(f"function {self.config.name}: workers are closed")
                if self._idle:
                    return self._idle.pop()  # the most recently used: the warmest
                due = waiting_since + (0.0 if not self._workers and not self._starting
                                       else self.init_s)
                wait = due - time.monotonic()
                if len(self._workers) + self._starting >= self._max_concurrency:
                    wait = None  # until a worker is released
                elif wait <= 0:
                    if self._inits.acquire(blocking=False):
                        self._starting += 1
                        break
                    wait = INIT_SLOT_POLL_S  # every core is running an init
                self._cond.wait(wait)
        try:  # started outside the lock: spawning takes milliseconds others need not wait for
            worker = _Worker(self.config, self._on_log, self._base_env, self._exited,
                             self._ready)
        except BaseException:
            self._inits.release()
            raise
        finally:
            with self._cond:
                self._starting -= 1
                self._cond.notify_all()
        with self._cond:
            if not self._closed:
                self._workers.append(worker)
                return worker
        worker.stop()
        raise RuntimeError(f"function {self.config.name}: workers are closed")

    @property
    def busy(self) -> int:
        """How many invocations are running now."""
        with self._cond:
            return len(self._workers) - len(self._idle)

    def retire(self) -> int:
        """Watch mode: stop the idle workers now and the busy ones when they finish, so the
        next invocation starts on the code as saved. Returns how many workers were warm."""
        with self._cond:
            workers, idle = self._workers, self._idle
            self._workers, self._idle = [], []
            self._cond.notify_all()
        for worker in idle:
            worker.stop()
        return len(workers)

    def _release(self, worker: _Worker, reusable: bool) -> None:
        with self._cond:
            reusable = reusable and worker in self._workers  # a retired worker is not
            if reusable:
                self._idle.append(worker)
            elif worker in self._workers:
                self._workers.remove(worker)
            self._cond.notify_all()
        if not reusable:
            worker.stop()

    def _ready(self, seconds: float | None) -> None:
        """A worker's init is over: its core is free for another, and an init's length is
        known better."""
        self._inits.release()
        if seconds is not None:
            with self._cond:
                self.init_s += (seconds - self.init_s) * INIT_LEARNING

    def _exited(self, worker: _Worker) -> None:
        """A worker's process ended (killed, crashed, init failed): never hand it out again."""
        with self._cond:
            if worker in self._workers:
                self._workers.remove(worker)
            if worker in self._idle:
                self._idle.remove(worker)
            self._cond.notify_all()
        worker.stop()
