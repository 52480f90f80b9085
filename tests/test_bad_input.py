"""Bad input to the real app in the sandbox: each gets the answer AWS gives, and nothing accepted
is lost. PutEvents is called over raw HTTP, as any SDK sends it, so the status codes and error
types are checked exactly; a property-based test sends it random bodies.

(The basics are in test_sandbox.py: an event without an ID for order_created, GET on unknown
paths, the 502 of a malformed answer, an assembly folder or manifest that cannot be read.)
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import report
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from order_accounting import history, pending_jobs, stamped_items
from sandbox_process import (
    EDGE_ASSEMBLY,
    FAST_RETRIES,
    ROOT,
    SandboxProcess,
    alive,
    failure_messages,
    free_port,
    get,
    order_bus,
    wait_for,
)

from sandbox.events.put_events import MAX_REQUEST_BYTES

pytestmark = pytest.mark.slow

AWS_JSON = "application/x-amz-json-1.1"
PUT_EVENTS = "AWSEvents.PutEvents"
CONSUMER_STAMPS = ("time_invoice_service", "time_fulfilment_service",
                   "time_forecasting_service", "time_logistic_service")


@pytest.fixture(scope="module")
def sandbox(assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(assembly, tmp_path_factory.mktemp("state"), extra_args=FAST_RETRIES) as sb:
        yield sb


@pytest.fixture(scope="module")
def bus(sandbox: SandboxProcess) -> str:
    return order_bus(sandbox)


def call(sandbox: SandboxProcess, body: bytes | str, target: str = PUT_EVENTS,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """One AWS JSON call over raw HTTP: status, headers, and the answer's JSON."""
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=60)
    try:
        connection.request("POST", "/", body, {"X-Amz-Target": target, "Content-Type": AWS_JSON,
                                               **(headers or {})})
        answer = connection.getresponse()
        data = answer.read()
    finally:
        connection.close()
    return answer.status, dict(answer.headers), json.loads(data) if data else None


def put(sandbox: SandboxProcess, entries: list[Any]) -> tuple[int, dict[str, str], Any]:
    return call(sandbox, json.dumps({"Entries": entries}))


def order_created(bus: str, detail: dict[str, Any] | str) -> dict[str, Any]:
    return {"EventBusName": bus, "Source": "order_service", "DetailType": "order_created",
            "Detail": detail if isinstance(detail, str) else json.dumps(detail)}


def an_order(order_id: str) -> dict[str, Any]:
    return {"metadata": {"service": "demo-eventbridge"}, "data": {"ID": order_id}}


def recorded_events(sandbox: SandboxProcess) -> dict[str, dict[str, Any]]:
    """Every event the bus wrote down, by id, with the bus and the rules it matched."""
    return {record.event["id"]: record for record in history(sandbox.state, "event")}


def wait_idle(sandbox: SandboxProcess) -> None:
    wait_for(lambda: pending_jobs(sandbox.state) == 0, 120, "every delivery and invocation")


# -- PutEvents: whole-request errors -----------------------------------------------------------


def test_eleven_entries_fail_the_whole_request(sandbox: SandboxProcess, bus: str) -> None:
    before = len(recorded_events(sandbox))
    entries = [order_created(bus, an_order(str(uuid.uuid4()))) for _ in range(11)]
    status, headers, answer = put(sandbox, entries)
    assert status == 400
    assert headers["x-amzn-ErrorType"] == answer["__type"] == "ValidationException"
    assert answer["message"].startswith(
        "1 validation error detected: Value '[PutEventsRequestEntry(")
    assert answer["message"].endswith(
        "at 'entries' failed to satisfy constraint: Member must have length less than or equal "
        "to 10")
    assert len(recorded_events(sandbox)) == before, "none of the eleven is kept"
    status, _, answer = put(sandbox, entries[:10])
    assert (status, answer["FailedEntryCount"], len(answer["Entries"])) == (200, 0, 10)


def test_a_request_just_over_the_size_limit_fails_whole(sandbox: SandboxProcess, bus: str) -> None:
    """AWS raised the limit from 256 KB to 1 MiB on 2026-01-29: a request of entries totalling
    1,048,576 bytes (Source + DetailType + Detail) is accepted, one byte more is refused, and a
    request over the old 256 KB is accepted."""
    def sized(total: int) -> dict[str, Any]:
        entry = order_created(bus, "")
        room = total - len(entry["Source"]) - len(entry["DetailType"])
        detail = json.dumps({"data": {"ID": str(uuid.uuid4())}, "pad": ""})
        entry["Detail"] = detail[:-2] + "x" * (room - len(detail)) + '"}'
        assert len(entry["Source"] + entry["DetailType"] + entry["Detail"]) == total
        return entry

    before = len(recorded_events(sandbox))
    status, headers, answer = put(sandbox, [sized(MAX_REQUEST_BYTES + 1)])
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "ValidationException"
    assert answer["message"] == "Total size of the entries in the request is over the limit."
    half = sized(MAX_REQUEST_BYTES // 2)
    status, _, answer = put(sandbox, [half, sized(MAX_REQUEST_BYTES // 2 + 1)])
    assert (status, answer["__type"]) == (400, "ValidationException"), "the sum counts"
    assert len(recorded_events(sandbox)) == before

    accepted = []
    for entries in ([sized(MAX_REQUEST_BYTES)], [half, sized(MAX_REQUEST_BYTES // 2)],
                    [sized(256 * 1024 + 1)]):
        status, _, answer = put(sandbox, entries)
        assert (status, answer["FailedEntryCount"]) == (200, 0)
        accepted += [(entry, result["EventId"]) for entry, result in zip(entries, answer["Entries"],
                                                                        strict=True)]
    events = recorded_events(sandbox)
    wait_idle(sandbox)
    items = stamped_items(sandbox)
    for entry, event_id in accepted:  # written down whole
        assert json.dumps(events[event_id].event["detail"]) == entry["Detail"]
    # Each is delivered to every consumer but the largest: EventBridge's envelope takes it past
    # Lambda's 1 MiB limit on an asynchronous payload, so each target's DLQ holds it, with why.
    (_, largest), *delivered = accepted
    for entry, _ in delivered:
        order_id = json.loads(entry["Detail"])["data"]["ID"]
        assert all(stamp in items[order_id] for stamp in CONSUMER_STAMPS)
    refused = [m for m in failure_messages(sandbox.state) if largest in m["body"]]
    assert len(refused) == 3  # the three targets of order_created
    assert all(m["reason"].startswith("RequestEntityTooLargeException: ") for m in refused)


# -- PutEvents: entries that fail, entries that are dropped ------------------------------------


def test_failed_entries_are_reported_in_order_and_the_others_delivered(
    sandbox: SandboxProcess, bus: str,
) -> None:
    good = [str(uuid.uuid4()) for _ in range(3)]
    unknown_bus = str(uuid.uuid4())
    entries = [
        order_created(bus, an_order(good[0])),
        {**order_created(bus, an_order(str(uuid.uuid4()))), "Source": None},
        {"EventBusName": bus, "DetailType": "order_created", "Detail": "{}"},
        {"EventBusName": bus, "Source": "order_service", "Detail": "{}"},
        {"EventBusName": bus, "Source": "order_service", "DetailType": "order_created"},
        order_created(bus, an_order(good[1])),
        order_created(bus, '[{"data": {"ID": "in a list"}}]'),
        order_created(bus, "not JSON at all"),
        order_created("no-such-bus", an_order(unknown_bus)),
        order_created(bus, an_order(good[2])),
    ]
    status, _, answer = put(sandbox, entries)
    assert status == 200
    assert answer["FailedEntryCount"] == 6
    codes = [result.get("ErrorCode") for result in answer["Entries"]]
    assert codes == [None, "InvalidArgument", "InvalidArgument", "InvalidArgument",
                     "InvalidArgument", None, "MalformedDetail", "MalformedDetail", None, None]
    messages = [result.get("ErrorMessage") for result in answer["Entries"]]
    for position, field in ((1, "Source"), (2, "Source"), (3, "DetailType"), (4, "Detail")):
        assert messages[position] == (f"Parameter {field} is not valid. "
                                      f"Reason: {field} is a required argument.")
    assert messages[6] == messages[7] == "Detail is malformed."

    events = recorded_events(sandbox)
    ids = [result.get("EventId") for result in answer["Entries"]]
    assert all(event_id in events for event_id in ids if event_id)
    dropped = events[ids[8]]
    assert (dropped.bus, dropped.rules) == ("no-such-bus", []), "accepted, then dropped"
    wait_idle(sandbox)
    items = stamped_items(sandbox)
    for order_id in good:
        assert all(stamp in items[order_id] for stamp in CONSUMER_STAMPS), order_id
    assert unknown_bus not in items
    assert not [m for m in failure_messages(sandbox.state) if unknown_bus in m["body"]]


def test_requests_that_are_not_put_events_calls_get_aws_errors(sandbox: SandboxProcess) -> None:
    for body, target, code in [
        (b"{not json", PUT_EVENTS, "SerializationException"),
        (b"[1, 2]", PUT_EVENTS, "SerializationException"),
        (b"[" * 100_000, PUT_EVENTS, "SerializationException"),
        (b'{"Entries": "none"}', PUT_EVENTS, "SerializationException"),
        (b"{}", PUT_EVENTS, "ValidationException"),
        (b'{"Entries": []}', PUT_EVENTS, "ValidationException"),
        (b"{}", "AWSEvents.PutRule", "UnknownOperationException"),
        (b"{}", "AWSStepFunctions.StartExecution", "UnknownOperationException"),
    ]:
        status, headers, answer = call(sandbox, body, target)
        assert (status, headers["x-amzn-ErrorType"], answer["__type"]) == (400, code, code), body
    status, _, answer = call(sandbox, b"{}", headers={"Content-Length": "ten"})
    assert (status, answer["__type"]) == (400, "BadRequest")
    assert "Content-Length" in answer["message"]


def test_a_chunked_request_body_is_read_whole(sandbox: SandboxProcess, bus: str) -> None:
    """Some HTTP clients stream a body in chunks: the sandbox must read it, not take the rest
    of it for the next request on the connection."""
    body = json.dumps({"Entries": [order_created(bus, {"data": {"ID": str(uuid.uuid4())}})]})
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=60)
    try:
        for _ in range(2):  # the second request on the same connection must parse too
            connection.request("POST", "/", iter([body[:40].encode(), body[40:].encode()]),
                               {"X-Amz-Target": PUT_EVENTS, "Content-Type": AWS_JSON},
                               encode_chunked=True)
            answer = connection.getresponse()
            assert (answer.status, json.loads(answer.read())["FailedEntryCount"]) == (200, 0)
    finally:
        connection.close()


def nested(depth: int) -> str:
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


def test_out_of_range_times_deep_nesting_and_lone_surrogates_get_aws_answers(
    sandbox: SandboxProcess,
) -> None:
    """Inputs that once made the sandbox answer 500. A Time the clock cannot hold fails the
    request; a Detail nested deeper than the sandbox can keep (AWS: 1,100 levels; the sandbox:
    500, bound by Python's recursion limit) is malformed; a lone surrogate is accepted."""
    entry = {"Source": "bad-input", "DetailType": "d", "Detail": "{}"}
    for time in (1e300, -1e12, 10**30, "1e300"):
        status, _, answer = put(sandbox, [{**entry, "Time": time}])
        assert (status, answer["__type"]) == (400, "SerializationException"), time
        assert answer["message"].startswith("Entries[0].Time must be a timestamp")
    status, _, answer = call(sandbox, '{"Entries": [{"Source": "s", "DetailType": "d", '
                                      '"Detail": "{}", "Time": NaN}]}')
    assert (status, answer["__type"]) == (400, "SerializationException")

    status, _, answer = put(sandbox, [{**entry, "Detail": nested(500)},
                                      {**entry, "Detail": nested(501)},
                                      {**entry, "Detail": "[" * 100_000},
                                      {**entry, "Source": "bad-input-\ud800"}])
    assert status == 200
    assert [result.get("ErrorCode") for result in answer["Entries"]] == [
        None, "MalformedDetail", "MalformedDetail", None]
    events = recorded_events(sandbox)
    assert json.dumps(events[answer["Entries"][0]["EventId"]].event["detail"]) == nested(500)
    assert events[answer["Entries"][3]["EventId"]].event["source"] == "bad-input-\ud800"


# -- The REST API ------------------------------------------------------------------------------


def request(url: str, method: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method),
                                    timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_unknown_methods_and_paths_answer_403_and_run_nothing(sandbox: SandboxProcess) -> None:
    # Earlier tests' events may still be running: count once they are done.
    wait_for(lambda: pending_jobs(sandbox.state) == 0, 60, "the earlier tests' work to finish")
    invocations = len(history(sandbox.state, "invocation"))
    for method, path in [("PUT", "/prod/order"), ("DELETE", "/prod/order"),
                         ("PATCH", "/prod/order"), ("OPTIONS", "/prod/order"),
                         ("HEAD", "/prod/order"), ("GET", "/prod/order/extra"),
                         ("GET", "/prod/orders?ID=1"), ("GET", "/PROD/order")]:
        status, headers, body = request(f"{sandbox.url}{path}", method)
        assert status == 403, (method, path)
        assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
        expected = b"" if method == "HEAD" else b'{"message":"Missing Authentication Token"}'
        assert body == expected, (method, path)
    assert len(history(sandbox.state, "invocation")) == invocations, "no function ran"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(EDGE_ASSEMBLY, tmp_path_factory.mktemp("edge")) as sb:
        yield sb


def test_answers_that_are_not_proxy_responses_are_502_one_by_one(edge: SandboxProcess) -> None:
    """Malformed answers, crashes and good answers at once: each request gets its own verdict,
    with its own request id, and the function's side of it is in the history: a malformed answer
    is a function that succeeded and an API that could not use its answer."""
    paths = ["/test/malformed", "/test/crash", "/test/fine"] * 10
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda path: get(f"{edge.url}{path}"), paths))
    by_request = {record.api_request_id: record for record in history(edge.state, "invocation")}
    for path, (status, headers, body) in zip(paths, answers, strict=True):
        record = by_request[headers["x-amzn-RequestId"]]
        if path == "/test/fine":
            assert (status, body, record.ok) == (200, b"/fine", True)
            continue
        assert (status, json.loads(body)) == (502, {"message": "Internal server error"}), path
        if path == "/test/malformed":
            assert record.ok is True
        else:
            assert (record.ok, record.error_type) == (False, "RuntimeError")
            assert record.error_message == "crashed on purpose"


# -- Events without an ID, for each consumer ---------------------------------------------------


@pytest.fixture(scope="module")
def on_failure_queues(synthesized_app: Any) -> dict[str, str]:
    """Function logical id -> the logical id of its on-failure queue, from the template."""
    queues = {}
    for resource in synthesized_app.template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::EventInvokeConfig":
            props = resource["Properties"]
            destination = props["DestinationConfig"]["OnFailure"]["Destination"]
            queues[props["FunctionName"]["Ref"]] = destination["Fn::GetAtt"][0]
    return queues


WITHOUT_ID = [
    {"metadata": {"service": "demo-eventbridge"}},
    {"metadata": {"service": "demo-eventbridge"}, "data": {}},
    {"metadata": {"service": "demo-eventbridge"}, "data": {"ID": ""}},
    {"metadata": {"service": "demo-eventbridge"}, "data": {"ID": 42}},
]


def test_an_event_without_an_id_fails_each_consumer_into_its_own_queue(
    sandbox: SandboxProcess, bus: str, synthesized_app: Any, on_failure_queues: dict[str, str],
) -> None:
    """Every consumer, logistic-service included (on fulfilment_completed), rejects the event,
    is tried three times (the same request), and puts it in its own on-failure queue with a
    reason naming the missing ID; no delivery failed, so no dead-letter queue has it."""
    entries = [order_created(bus, detail) for detail in WITHOUT_ID]
    entries += [{"EventBusName": bus, "Source": "fulfilment_service",
                 "DetailType": "fulfilment_completed", "Detail": json.dumps(detail)}
                for detail in WITHOUT_ID]
    status, _, answer = put(sandbox, entries)
    assert (status, answer["FailedEntryCount"]) == (200, 0)
    event_ids = {result["EventId"] for result in answer["Entries"]}
    wait_idle(sandbox)

    functions = {folder: synthesized_app.logical_id(function)
                 for folder, function in synthesized_app.stack.functions.items()}
    consumers = {folder: logical_id for folder, logical_id in functions.items()
                 if folder != "order-service"}
    messages = [m for m in failure_messages(sandbox.state)
                if json.loads(m["body"]).get("requestPayload", {}).get("id") in event_ids]
    assert len(messages) == 3 * len(WITHOUT_ID) + len(WITHOUT_ID)  # order_created: 3 consumers
    tries: dict[str, int] = {}
    for record in history(sandbox.state, "invocation"):
        if record.event_id in event_ids:
            tries[record.request_id] = tries.get(record.request_id, 0) + 1
    for message in messages:
        record = json.loads(message["body"])
        function_arn = record["requestContext"]["functionArn"]
        [folder] = [f for f, logical_id in consumers.items() if logical_id in function_arn]
        assert message["queue"].endswith(on_failure_queues[consumers[folder]]), folder
        assert "ERROR_CODE" not in message["attributes"], "a Lambda failure, not a delivery one"
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert tries[record["requestContext"]["requestId"]] == 3
        assert record["responsePayload"]["errorType"] == "BadEvent"
        assert "detail.data" in message["reason"] and "ID" in message["reason"], message
    per_queue = {m["queue"] for m in messages}
    assert len(per_queue) == 4, "each consumer has its own queue"


# -- Cloud assemblies the sandbox cannot run ---------------------------------------------------


def template_of(directory: Path) -> Path:
    [template] = directory.glob("*.template.json")
    return template


def edit_template(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        template = json.loads(template_of(directory).read_text())
        change(template)
        template_of(directory).write_text(json.dumps(template, indent=1))
    return edit


def first(template: dict[str, Any], resource_type: str) -> str:
    return next(logical_id for logical_id, resource in template["Resources"].items()
                if resource["Type"] == resource_type)


def no_type(template: dict[str, Any]) -> None:
    del template["Resources"][first(template, "AWS::SQS::Queue")]["Type"]


def unknown_ref(template: dict[str, Any]) -> None:
    function = template["Resources"][first(template, "AWS::Lambda::Function")]
    function["Properties"]["Environment"]["Variables"]["TABLE_NAME"] = {"Ref": "NoSuchTable"}


def bad_json(directory: Path) -> None:
    lines = template_of(directory).read_text().splitlines()
    lines.insert(3, "oops")  # line 4
    template_of(directory).write_text("\n".join(lines))


def no_asset(directory: Path) -> None:
    template = json.loads(template_of(directory).read_text())
    function = template["Resources"][first(template, "AWS::Lambda::Function")]
    shutil.rmtree(directory / function["Metadata"]["aws:asset:path"])


@pytest.mark.parametrize(("break_it", "what", "where"), [
    (lambda d: (d / "manifest.json").unlink(), "no manifest.json", ""),
    (bad_json, "malformed JSON", ".template.json: line 4 column 1"),
    (lambda d: template_of(d).unlink(), "does not exist", "manifest.json: artifacts."),
    (edit_template(no_type), "the resource has no Type", ".template.json: Resources."),
    (edit_template(unknown_ref), "unknown logical id 'NoSuchTable'",
     ".Properties.Environment.Variables.TABLE_NAME"),
    (no_asset, "does not exist or cannot be read", ".Properties.Code"),
], ids=["no manifest", "bad JSON", "template missing", "resource without Type", "unknown Ref",
        "function code missing"])
def test_an_assembly_the_sandbox_cannot_run_exits_2_saying_what_and_where(
    assembly: Path, tmp_path: Path, break_it: Callable[[Path], None], what: str, where: str,
) -> None:
    broken = tmp_path / "cdk.out"
    shutil.copytree(assembly, broken)
    break_it(broken)
    answer = subprocess.run(
        [sys.executable, "-m", "sandbox", "up", "--assembly", str(broken),
         "--state", str(tmp_path / "state"), "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 2, answer.stdout + answer.stderr
    [line] = answer.stderr.splitlines()
    assert line.startswith(f"sandbox: {broken}"), line
    assert what in line and where in line, line
    assert "Traceback" not in answer.stdout + answer.stderr
    assert not processes_mentioning(str(tmp_path / "state")), "nothing is left running"


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# -- Random PutEvents bodies -------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
SIZES = st.sampled_from([0, 1, 256 * 1024, MAX_REQUEST_BYTES - 100, MAX_REQUEST_BYTES + 1])


REMOVE = object()
FIELDS = ("EventBusName", "Source", "DetailType", "Detail", "Resources", "Time", "TraceHeader")


def mutate(entry: dict[str, Any], mutations: list[tuple[str, Any]]) -> dict[str, Any]:
    entry = dict(entry)
    for field, value in mutations:
        if value is REMOVE:
            entry.pop(field, None)
        else:
            entry[field] = value
    return entry


def bodies(bus: str) -> st.SearchStrategy[bytes]:
    """PutEvents requests from valid to junk. Most are well formed, with entries that match one
    of the app's rules and then take up to two mutations (a field removed, or made junk of any
    JSON type); details name an order or not, are no object, or are huge. The rest are bodies
    that are not a request at all: other JSON, bytes, nesting too deep, lone surrogates."""
    details = st.builds(
        lambda order_id, size: json.dumps({"metadata": {"service": "demo-eventbridge"},
                                           "data": {"ID": order_id}, "pad": "x" * size}),
        st.uuids().map(str) | JSON,
        st.just(0) | SIZES,
    )
    entries = st.builds(
        lambda bus_name, kind, detail, extra: {"EventBusName": bus_name, "Source": kind[0],
                                               "DetailType": kind[1], "Detail": detail, **extra},
        st.sampled_from([bus, f"arn:aws:events:us-east-1:000000000000:event-bus/{bus}"]),
        st.sampled_from([("order_service", "order_created"),
                         ("fulfilment_service", "fulfilment_completed")]),
        details,
        st.fixed_dictionaries({}, optional={
            "Resources": st.lists(st.text(max_size=30), max_size=3),
            "Time": st.integers(0, 2**32) | st.datetimes().map(lambda at: at.isoformat()),
            "TraceHeader": st.text(max_size=30),
        }),
    )
    junk = st.one_of(st.just(REMOVE), JSON, st.text(max_size=40),
                     st.sampled_from(["", "aws.events", "default", "no-such-bus", "{}", "[]"]))
    mutated = st.builds(mutate, entries, st.lists(st.tuples(st.sampled_from(FIELDS), junk),
                                                  max_size=2))
    requests = st.builds(lambda entries, extra: json.dumps({"Entries": entries, **extra}).encode(),
                         st.lists(entries | entries | mutated, min_size=1, max_size=12),
                         st.fixed_dictionaries({}, optional={"EndpointId": JSON}))
    not_requests = st.one_of(
        JSON.map(lambda body: json.dumps(body).encode()),
        st.fixed_dictionaries({}, optional={"Entries": JSON | st.lists(JSON, max_size=3)}).map(
            lambda body: json.dumps(body).encode()),
        st.binary(max_size=100),
        st.integers(1, 5000).map(lambda depth: b'{"Entries": ' + b"[" * depth),
        st.sampled_from([b'{"Entries": [{"Source": "\\ud800", "DetailType": "d", "Detail": "{}"}]}',
                         b'{"Entries": [{"Source": "s", "DetailType": "d", '
                         b'"Detail": "{\\"a\\": \\"\\udfff\\"}"}]}']),
    )
    return st.one_of(requests, requests, requests, not_requests)


def test_random_put_events_bodies_never_crash_the_sandbox_nor_lose_an_event(
    sandbox: SandboxProcess, bus: str,
) -> None:
    """Never a 5xx, never a dead sandbox; every EventId answered is written down before the
    answer; and once the sandbox is idle, every accepted event that matched a rule was delivered
    to each target, whose invocation succeeded or sits in a failure queue."""
    accepted: list[str] = []

    @settings(max_examples=100, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=bodies(bus))
    def one(body: bytes) -> None:
        status, _, answer = call(sandbox, body)
        assert status < 500, answer
        assert sandbox.process is not None and alive(sandbox.process.pid)
        if status != 200:
            assert isinstance(answer["__type"], str) and answer["message"]
            return
        entries = json.loads(body)["Entries"]
        assert len(answer["Entries"]) == len(entries)
        assert answer["FailedEntryCount"] == sum("ErrorCode" in r for r in answer["Entries"])
        ids = [result["EventId"] for result in answer["Entries"] if "EventId" in result]
        assert set(ids) <= set(recorded_events(sandbox)), "written down before the answer"
        accepted.extend(ids)

    one()
    wait_idle(sandbox)
    events = recorded_events(sandbox)
    delivered = {(r.event_id, r.target) for r in history(sandbox.state, "delivery") if r.ok}
    ran = {(r.event_id, r.target_id) for r in history(sandbox.state, "invocation")
           if r.ok and r.event_id}
    failed = {(r.event_id, r.target_id) for r in history(sandbox.state, "dead-letter")
              if r.source == "lambda"}
    matched = 0
    for event_id in accepted:
        for rule in events[event_id].rules:
            targets = sandbox.client("events").list_targets_by_rule(
                Rule=rule, EventBusName=bus)["Targets"]
            for target in targets:
                matched += 1
                assert (event_id, target["Arn"]) in delivered
                assert (event_id, target["Id"]) in ran | failed
    report(f"bad input/random PutEvents: 100 bodies, {len(accepted)} events accepted, "
          f"{matched} deliveries to rule targets, lost 0")
