"""Lambda functions in local worker processes (awslambdaric) behind the sandbox's Runtime API.

The pure tests check Lambda's texts and the worker's environment; the slow ones run real
awslambdaric workers on the tiny handlers in tests/fixtures/functions/.
"""

import io
import json
import os
import re
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sandbox_process import alive

from sandbox.lambda_.runtime_api import (
    FunctionConfig,
    FunctionWorkers,
    Invocation,
    error_type_of,
    exit_message,
    peak_memory_kb,
    read_request,
    report_line,
    response_bytes,
    timeout_message,
    worker_environment,
)

FUNCTIONS = Path(__file__).parent / "fixtures" / "functions"
BASE_ENV = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
REPORT = re.compile(
    r"REPORT RequestId: (?P<id>\S+)\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms"
    r"\tMemory Size: (?P<size>\d+) MB\tMax Memory Used: \d+ MB"
    r"(?P<init>\tInit Duration: \d+\.\d\d ms)?$")


def function(folder: str, **changes: Any) -> FunctionConfig:
    name = f"test-{folder}"
    config = FunctionConfig(
        name=name,
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        code_dir=FUNCTIONS / folder,
        handler="app.lambda_handler",
        runtime="python3.14",
        timeout_s=1.0,
        memory_mb=128,
        environment={"STAGE": "test"},
    )
    return replace(config, **changes)


class Logs:
    """Collects on_log's lines, as the sandbox's log printer would."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, function_name: str, line: str, stream: str,
                 request_id: str | None) -> None:
        with self._lock:
            self.lines.append((function_name, line))

    def of(self, function_name: str) -> list[str]:
        with self._lock:
            return [line for name, line in self.lines if name == function_name]


def body(invocation: Invocation) -> Any:
    return json.loads(invocation.payload)


@pytest.fixture
def logs() -> Logs:
    return Logs()


@pytest.fixture
def start(logs: Logs) -> Iterator[Callable[..., FunctionWorkers]]:
    """Starts FunctionWorkers for a fixture function; closes them all at the end."""
    started: list[FunctionWorkers] = []

    def start(folder: str, max_concurrency: int = 10, **changes: Any) -> FunctionWorkers:
        workers = FunctionWorkers(function(folder, **changes), logs, BASE_ENV, max_concurrency)
        started.append(workers)
        return workers

    yield start
    for workers in started:
        workers.close()


@pytest.fixture
def gate() -> Iterator[socket.socket]:
    """A port the gate handler connects to and waits on until the test sends a byte."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(30)
        yield server


# Pure semantics.


def test_a_request_is_read_whole_from_a_kept_alive_connection() -> None:
    stream = io.BytesIO(b"POST /2018-06-01/runtime/invocation/r-1/response HTTP/1.1\r\n"
                        b"Host: 127.0.0.1\r\nContent-Length: 8\r\n"
                        b"Lambda-Runtime-Function-Error-Type: Oops\r\n\r\n{\"a\": 1}"
                        b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n")
    sent: list[bytes] = []
    first = read_request(stream, sent.append)
    assert first == ("POST", "/2018-06-01/runtime/invocation/r-1/response",
                     {"host": "127.0.0.1", "content-length": "8",
                      "lambda-runtime-function-error-type": "Oops"}, b'{"a": 1}')
    assert read_request(stream, sent.append) == (
        "GET", "/2018-06-01/runtime/invocation/next", {}, b"")
    assert read_request(stream, sent.append) is None and sent == []  # the worker hung up


def test_a_chunked_body_and_an_expected_continue_are_handled_as_http_does() -> None:
    stream = io.BytesIO(b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n"
                        b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"4\r\n{\"a\"\r\n3;x=y\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n")
    sent: list[bytes] = []
    (_, _, _, body) = read_request(stream, sent.append)
    assert body == b'{"a": 1}' and sent == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_an_answer_is_one_http_response() -> None:
    assert response_bytes(202, b'{"status":"OK"}', {"Lambda-Runtime-Trace-Id": "Root=1"}) == (
        b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n"
        b"Lambda-Runtime-Trace-Id: Root=1\r\n\r\n{\"status\":\"OK\"}")


def test_report_line_is_lambdas_with_init_duration_only_on_a_cold_start() -> None:
    cold = report_line("r-1", 12.341, 128, 45, 250.123)
    warm = report_line("r-1", 0.2, 128, 45, None)
    assert cold == ("REPORT RequestId: r-1\tDuration: 12.34 ms\tBilled Duration: 13 ms"
                    "\tMemory Size: 128 MB\tMax Memory Used: 45 MB\tInit Duration: 250.12 ms")
    assert warm == ("REPORT RequestId: r-1\tDuration: 0.20 ms\tBilled Duration: 1 ms"
                    "\tMemory Size: 128 MB\tMax Memory Used: 45 MB")


def test_report_line_gives_the_status_of_a_runtime_that_did_not_answer() -> None:
    assert report_line("r", 1000.0, 128, 40, None, "timeout").endswith("\tStatus: timeout")
    assert report_line("r", 5.0, 128, 140, None, "error", "Runtime.OutOfMemory").endswith(
        "\tStatus: error\tError Type: Runtime.OutOfMemory")


def test_timeout_message_is_lambdas() -> None:
    assert (timeout_message("r-1", 3, 1700000000.5)
            == "2023-11-14T22:13:20.500Z r-1 Task timed out after 3.00 seconds")


def test_exit_message_names_the_signal_or_the_exit_status() -> None:
    assert (exit_message("r-1", -signal.SIGKILL)
            == "RequestId: r-1 Error: Runtime exited with error: signal: killed")
    assert (exit_message("r-1", 3)
            == "RequestId: r-1 Error: Runtime exited with error: exit status 3")


def test_error_type_comes_from_the_error_json_else_the_header() -> None:
    assert error_type_of(b'{"errorType": "KeyError", "errorMessage": "x"}', None) == "KeyError"
    assert error_type_of(b"not json", "Runtime.ImportModuleError") == "Runtime.ImportModuleError"
    assert error_type_of(b"[]", None) == "Unhandled"


def test_peak_memory_is_read_from_proc_status() -> None:
    status = "Name:\tpython\nVmPeak:\t  300000 kB\nVmHWM:\t   46080 kB\nVmRSS:\t   40000 kB\n"
    assert peak_memory_kb(status) == 46080
    assert peak_memory_kb("Name:\tpython\nState:\tZ (zombie)\n") is None


def test_worker_environment_layers_the_sandbox_the_function_and_lambdas_variables() -> None:
    config = function("echo", environment={"STAGE": "test", "AWS_REGION": "eu-west-1",
                                           "AWS_LAMBDA_FUNCTION_NAME": "other",
                                           "AWS_LAMBDA_MAX_CONCURRENCY": "4"})
    inherited = {"PATH": "/usr/bin", "HOME": "/home/me", "GITHUB_TOKEN": "secret"}
    env = worker_environment(config, BASE_ENV, "127.0.0.1:9001", "stream", inherited)
    assert env["PATH"] == "/usr/bin"
    assert "GITHUB_TOKEN" not in env  # the sandbox's own environment stays out
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert env["AWS_REGION"] == "eu-west-1"  # the function's own value wins over the sandbox's
    assert env["STAGE"] == "test"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "test-echo"  # reserved: Lambda's value wins
    assert "AWS_LAMBDA_MAX_CONCURRENCY" not in env  # it would switch awslambdaric's mode
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/test-echo"
    assert env["_HANDLER"] == "app.lambda_handler"
    assert env["LAMBDA_TASK_ROOT"] == env["PYTHONPATH"] == str(FUNCTIONS / "echo")
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.14"
    assert env["TZ"] == ":UTC"
    assert env["NO_PROXY"] == "127.0.0.1,localhost"


def test_a_function_the_sandbox_cannot_run_is_refused_with_the_reason(logs: Logs) -> None:
    with pytest.raises(ValueError, match=r"runtime 'nodejs22\.x' is not Python"):
        FunctionWorkers(function("echo", runtime="nodejs22.x"), logs, BASE_ENV)
    with pytest.raises(ValueError, match=r"code folder .*missing not found"):
        FunctionWorkers(function("echo", code_dir=FUNCTIONS / "missing"), logs, BASE_ENV)


# Real workers.


@pytest.mark.slow
def test_echo_round_trip_with_lambdas_environment_and_context(start: Callable) -> None:
    workers = start("echo")
    invocation = workers.invoke(b'{"order": 42}', request_id="req-echo-1")
    assert invocation.ok, invocation.payload
    assert invocation.request_id == "req-echo-1"
    assert invocation.function == "test-echo"
    assert invocation.error_type is None
    assert invocation.init_duration_ms is not None  # it started the worker
    assert invocation.memory_mb == 128
    assert 0 < invocation.max_memory_mb < 128
    answer = body(invocation)
    assert answer["event"] == {"order": 42}
    assert answer["request_id"] == "req-echo-1"
    assert answer["function_arn"] == workers.config.arn
    assert answer["memory_limit_in_mb"] == "128"
    assert 0 < answer["remaining_ms"] <= 1000
    assert answer["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": "test-echo",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/test-echo",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
        "AWS_REGION": "us-east-1",
        "STAGE": "test",
        "TZ": ":UTC",
        "AWS_LAMBDA_MAX_CONCURRENCY": None,
    }


@pytest.mark.slow
def test_a_warm_worker_is_reused(start: Callable) -> None:
    workers = start("echo")
    first = workers.invoke(b"{}")
    second = workers.invoke(b"{}")
    assert body(first)["pid"] == body(second)["pid"]
    assert second.init_duration_ms is None
    assert workers.pids == [body(first)["pid"]]


def three_at_once(workers: FunctionWorkers, gate: socket.socket) -> list[Invocation]:
    """Three invocations of the gate function, all three handlers running at once before
    any is let go."""
    event = json.dumps({"port": gate.getsockname()[1]}).encode()
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(workers.invoke, event) for _ in range(3)]
        held = [gate.accept()[0] for _ in range(3)]
        for connection in held:
            connection.sendall(b"x")
            connection.close()
        return [future.result() for future in futures]


@pytest.mark.slow
def test_concurrency_grows_with_load(start: Callable, gate: socket.socket) -> None:
    workers = start("gate")
    invocations = three_at_once(workers, gate)
    assert all(invocation.ok for invocation in invocations)
    pids = {body(invocation)["pid"] for invocation in invocations}
    assert len(pids) == 3
    assert sorted(workers.pids) == sorted(pids)


class CountedSlots(threading.BoundedSemaphore):
    """Init slots that remember the most ever taken at once."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.taken = self.most = 0
        self._count = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        got = super().acquire(blocking, timeout)
        if got:
            with self._count:
                self.taken += 1
                self.most = max(self.most, self.taken)
        return got

    def release(self, n: int = 1) -> None:
        with self._count:
            self.taken -= n
        super().release(n)


@pytest.mark.slow
def test_never_more_inits_at_once_than_the_machine_has_slots_for(
        logs: Logs, gate: socket.socket) -> None:
    slots = CountedSlots(1)
    workers = FunctionWorkers(function("gate"), logs, BASE_ENV, inits=slots)
    try:
        invocations = three_at_once(workers, gate)
    finally:
        workers.close()
    assert all(invocation.ok for invocation in invocations)
    assert len({body(invocation)["pid"] for invocation in invocations}) == 3
    assert (slots.most, slots.taken) == (1, 0)  # one init at a time, every slot given back


@pytest.mark.slow
def test_a_new_worker_starts_only_once_waiting_for_a_warm_one_lasted_an_init(
        start: Callable) -> None:
    workers = start("echo")
    first = workers.invoke(b"{}")
    workers.init_s = 60.0  # inits as slow as a minute: waiting for the warm worker is quicker
    with ThreadPoolExecutor(5) as pool:
        invocations = list(pool.map(lambda _: workers.invoke(b"{}"), range(5)))
    assert {body(invocation)["pid"] for invocation in invocations} == {body(first)["pid"]}
    assert workers.pids == [body(first)["pid"]]


@pytest.mark.slow
def test_concurrency_stops_at_max_concurrency(start: Callable, gate: socket.socket) -> None:
    workers = start("gate", max_concurrency=2)
    workers.init_s = 0.0  # an invocation that finds no warm worker starts one at once...
    event = json.dumps({"port": gate.getsockname()[1]}).encode()
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(workers.invoke, event) for _ in range(3)]
        held = [gate.accept()[0] for _ in range(2)]  # ...but only two run at once
        for connection in held:
            connection.sendall(b"x")
            connection.close()
        connection, _ = gate.accept()  # the third, on one of the two
        connection.sendall(b"x")
        connection.close()
        invocations = [future.result() for future in futures]
    assert all(invocation.ok for invocation in invocations)
    assert len({body(invocation)["pid"] for invocation in invocations}) == 2


@pytest.mark.slow
def test_a_handler_exception_answers_the_error_json_and_logs_the_traceback_as_one_line(
        start: Callable, logs: Logs) -> None:
    workers = start("fail")
    invocation = workers.invoke(b'{"order": 7}')
    assert not invocation.ok
    assert invocation.error_type == "ValueError"
    error = body(invocation)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "order 7 is not valid"
    assert any("app.py" in frame for frame in error["stackTrace"])
    traceback_lines = [line for line in logs.of("test-fail") if line.startswith("[ERROR]")]
    assert len(traceback_lines) == 1
    assert traceback_lines[0].startswith("[ERROR] ValueError: order 7 is not valid\r")
    assert "\rTraceback (most recent call last):\r" in traceback_lines[0]


@pytest.mark.slow
def test_an_import_error_answers_runtime_import_module_error(start: Callable) -> None:
    workers = start("import-error")
    for _ in range(2):  # the failed worker is gone: the next invoke tries a fresh one
        invocation = workers.invoke(b"{}")
        assert not invocation.ok
        assert invocation.error_type == "Runtime.ImportModuleError"
        assert invocation.init_duration_ms is not None
        error = body(invocation)
        assert error["errorType"] == "Runtime.ImportModuleError"
        assert "No module named 'module_the_package_forgot'" in error["errorMessage"]


@pytest.mark.slow
def test_a_worker_past_its_timeout_is_killed_and_the_next_invoke_gets_a_fresh_one(
        start: Callable, logs: Logs) -> None:
    workers = start("sleep")
    first_pid = body(workers.invoke(b'{"seconds": 0}'))["pid"]
    invocation = workers.invoke(b'{"seconds": 30}', request_id="req-slow")
    assert not invocation.ok
    assert invocation.error_type == "Sandbox.Timedout"
    error = body(invocation)
    assert error["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z req-slow "
                        r"Task timed out after 1\.00 seconds", error["errorMessage"])
    assert error["errorMessage"] in logs.of("test-sleep")
    assert not alive(first_pid)
    after = workers.invoke(b'{"seconds": 0}')
    assert after.ok
    assert body(after)["pid"] != first_pid
    assert after.init_duration_ms is not None  # a cold start


@pytest.mark.slow
def test_a_worker_past_its_memory_size_is_killed_as_out_of_memory(start: Callable) -> None:
    workers = start("hog-memory", memory_mb=64, timeout_s=30)
    invocation = workers.invoke(b'{"mb": 96, "hold_s": 30}', request_id="req-hog")
    assert not invocation.ok
    assert invocation.error_type == "Runtime.OutOfMemory"
    assert body(invocation) == {
        "errorMessage": "RequestId: req-hog Error: Runtime exited with error: signal: killed",
        "errorType": "Runtime.OutOfMemory",
    }
    assert invocation.max_memory_mb > 64
    assert workers.pids == []
    assert workers.invoke(b'{"mb": 1}').ok


@pytest.mark.slow
def test_a_worker_killed_mid_invoke_answers_runtime_exit_error(
        start: Callable, gate: socket.socket) -> None:
    workers = start("gate", timeout_s=30)
    event = json.dumps({"port": gate.getsockname()[1]}).encode()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(workers.invoke, event, "req-killed")
        connection, _ = gate.accept()  # the handler is running
        [pid] = workers.pids
        os.kill(pid, signal.SIGKILL)
        invocation = future.result()
        connection.close()
    assert not invocation.ok
    assert invocation.error_type == "Runtime.ExitError"
    assert body(invocation) == {
        "errorMessage": "RequestId: req-killed Error: Runtime exited with error: signal: killed",
        "errorType": "Runtime.ExitError",
    }
    after = workers.invoke(b"{}")
    assert after.ok
    assert body(after)["pid"] != pid


@pytest.mark.slow
def test_start_end_and_report_lines_frame_the_functions_own_lines(
        start: Callable, logs: Logs) -> None:
    workers = start("print-logs")
    workers.invoke(b'{"order": 1}', request_id="req-cold")
    workers.invoke(b'{"order": 2}', request_id="req-warm")
    lines = logs.of("test-print-logs")
    assert len(lines) == 13, lines
    cold, warm = lines[:7], lines[7:]
    assert cold[:4] == [
        "cold start: module loaded",  # init output comes before START, as in Lambda
        "START RequestId: req-cold Version: $LATEST",
        "processing 1",
        "to stderr",
    ]
    assert re.fullmatch(r"\[WARNING\]\t\S+Z\treq-cold\torder 1 looks odd", cold[4])
    assert cold[5] == "END RequestId: req-cold"
    cold_report = REPORT.fullmatch(cold[6])
    assert cold_report and cold_report["id"] == "req-cold" and cold_report["init"]
    assert cold_report["size"] == "128"
    assert warm[:3] == ["START RequestId: req-warm Version: $LATEST", "processing 2", "to stderr"]
    assert re.fullmatch(r"\[WARNING\]\t\S+Z\treq-warm\torder 2 looks odd", warm[3])
    assert warm[4] == "END RequestId: req-warm"
    warm_report = REPORT.fullmatch(warm[5])
    assert warm_report and warm_report["id"] == "req-warm" and not warm_report["init"]


@pytest.mark.slow
def test_close_leaves_no_worker_alive(start: Callable, gate: socket.socket) -> None:
    workers = start("gate")
    event = json.dumps({"port": gate.getsockname()[1]}).encode()
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(workers.invoke, event) for _ in range(2)]
        held = [gate.accept()[0] for _ in range(2)]
        pids = workers.pids
        workers.close()  # with both invocations still running
        interrupted = [future.result() for future in futures]
        for connection in held:
            connection.close()
    assert len(pids) == 2
    assert not any(alive(pid) for pid in pids)
    assert [invocation.error_type for invocation in interrupted] == ["Runtime.ExitError"] * 2
    assert workers.pids == []
    workers.close()  # idempotent
    with pytest.raises(RuntimeError, match="test-gate: workers are closed"):
        workers.invoke(b"{}")
