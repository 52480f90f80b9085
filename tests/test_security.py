"""Security: what the sandbox exposes on the network, and who may write to which queue.

The template's IAM is also checked statement by statement in test_stack.py (no statement names
a `*` action, each role's exact grants, each dead-letter queue's policy); here the question is
the one a reviewer asks of the whole: who can send a message to each queue?
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
from conftest import report
from sandbox_process import Orders, SandboxProcess, create_order, descendants

pytestmark = pytest.mark.slow

TCP_LISTEN = "0A"
UDP_CLOSE = "07"  # the state of a bound, unconnected UDP socket


def address(hex_address: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """An address of /proc/net/{tcp,udp}{,6}: host-order 32-bit words in hex, then the port."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words), int(port, 16)


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def listening_sockets(pids: set[int]) -> list[tuple[int, str, Any, int]]:
    """(pid, protocol, address, port) of every TCP socket listening and every UDP socket bound
    that one of `pids` holds. Each process's own /proc/<pid>/net tables are read, so a process
    in another network namespace is seen in its own."""
    found = []
    for pid in pids:
        try:
            inodes = socket_inodes(pid)
            for protocol in ("tcp", "tcp6", "udp", "udp6"):
                lines = Path(f"/proc/{pid}/net/{protocol}").read_text().splitlines()[1:]
                for line in lines:
                    fields = line.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    wanted = UDP_CLOSE if protocol.startswith("udp") else TCP_LISTEN
                    if state == wanted and inode in inodes:
                        found.append((pid, protocol, *address(local)))
        except OSError:  # the process ended meanwhile
            continue
    return found


def command_line(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def test_every_listening_socket_is_on_loopback_but_dynamodb_locals(
    synthesized_app: Any, tmp_path: Path,
) -> None:
    """The endpoint and each worker's Runtime API listen on 127.0.0.1. DynamoDB Local cannot be
    told where to listen and takes every interface: it is the one exception, on the random port
    the functions are given, and the README says why and how it is contained."""
    with SandboxProcess(synthesized_app.assembly_dir, tmp_path / "state") as sandbox:
        Orders(sandbox).wait_complete([create_order(sandbox)])  # a worker for each function
        assert sandbox.process is not None
        tree = {sandbox.process.pid} | descendants(sandbox.process.pid)
        sockets = listening_sockets(tree)
        dynamodb_endpoints = {
            variable.split(b"=", 1)[1].decode()
            for pid in tree if b"awslambdaric" in command_line(pid)
            for variable in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if variable.startswith(b"AWS_ENDPOINT_URL_DYNAMODB=")
        }
        commands = {pid: command_line(pid) for pid, _, _, _ in sockets}

    for pid, protocol, host, port in sockets:
        report(f"security: pid {pid} listens on {protocol} {host}:{port}")
    assert any(port == sandbox.port and host.is_loopback for _, _, host, port in sockets)
    exposed = [(pid, protocol, host, port) for pid, protocol, host, port in sockets
               if not host.is_loopback]
    [(pid, protocol, host, port)] = exposed
    assert b"DynamoDBLocal.jar" in commands[pid], f"{pid} listens on {host}:{port}"
    assert protocol.startswith("tcp") and host.is_unspecified
    assert dynamodb_endpoints == {f"http://127.0.0.1:{port}"}
    assert port != 8000, "not DynamoDB Local's well-known default port"
    loopback = len(sockets) - 1
    report(f"security: {len(sockets)} listening sockets, {loopback} on loopback, "
          f"1 on all interfaces (DynamoDB Local, port {port})")


# -- Who may send to each queue -----------------------------------------------------------------


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def may_send(statement: dict[str, Any]) -> bool:
    """An Allow statement whose actions include sqs:SendMessage, wildcards included."""
    return statement.get("Effect") == "Allow" and any(
        fnmatch("sqs:sendmessage", action.lower()) for action in listed(statement.get("Action")))


def queues_named(resource: Any, queues: set[str]) -> set[str]:
    """The queues a statement's Resource names; anything but a queue's own ARN may be any."""
    named = set()
    for item in listed(resource):
        if isinstance(item, dict) and "Fn::GetAtt" in item and item["Fn::GetAtt"][0] in queues:
            named.add(item["Fn::GetAtt"][0])
        elif not (isinstance(item, dict) and "Fn::GetAtt" in item):
            named |= queues  # "*", a pattern, a joined string: count it as every queue
    return named


def senders(resources: dict[str, dict[str, Any]]) -> dict[str, set[Any]]:
    """Queue logical id -> who may send to it: roles by their identity policies (inline or
    attached), principals by the queue's resource policies (with the source ARN they must
    come from)."""
    queues = {lid for lid, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    found: dict[str, set[Any]] = {queue: set() for queue in queues}
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for statement in listed(policy["PolicyDocument"]["Statement"]):
                    if may_send(statement):
                        for queue in queues_named(statement.get("Resource"), queues):
                            found[queue].add(("role", logical_id))
        elif resource["Type"] == "AWS::IAM::Policy":
            roles = [role["Ref"] for role in props.get("Roles", [])]
            for statement in listed(props["PolicyDocument"]["Statement"]):
                if may_send(statement):
                    for queue in queues_named(statement.get("Resource"), queues):
                        found[queue] |= {("role", role) for role in roles}
        elif resource["Type"] == "AWS::SQS::QueuePolicy":
            for statement in listed(props["PolicyDocument"]["Statement"]):
                if may_send(statement):
                    source = statement.get("Condition", {}).get("ArnEquals", {}).get(
                        "aws:SourceArn")
                    for queue_ref in props["Queues"]:
                        principal = statement["Principal"]
                        found[queue_ref["Ref"]].add(
                            ("principal", str(principal), str(source)))
    return found


def test_each_queue_takes_messages_from_its_own_function_or_rule_only(
    synthesized_app: Any,
) -> None:
    """No function can write to another's queue: an on-failure queue takes messages from its
    own function's role only; a rule target's dead-letter queue from EventBridge only, and only
    on behalf of that rule."""
    resources = synthesized_app.template["Resources"]
    expected: dict[str, set[Any]] = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::EventInvokeConfig":
            function = resources[props["FunctionName"]["Ref"]]["Properties"]
            queue = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
            expected[queue] = {("role", function["Role"]["Fn::GetAtt"][0])}
    for rule_id, rule in resources.items():
        if rule["Type"] == "AWS::Events::Rule":
            for target in rule["Properties"]["Targets"]:
                queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
                expected[queue] = {("principal", str({"Service": "events.amazonaws.com"}),
                                    str({"Fn::GetAtt": [rule_id, "Arn"]}))}
    actual = senders(resources)
    assert len(actual) == 8
    assert actual == expected
    roles = [sender for queue_senders in actual.values() for sender in queue_senders
             if sender[0] == "role"]
    assert len(roles) == len(set(roles)) == 4, "each function's role sends to one queue"


# -- Host and Origin: the sandbox answers only this machine's own pages and tools -----------


@pytest.fixture(scope="module")
def guarded(assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with SandboxProcess(assembly, tmp_path_factory.mktemp("guarded"),
                        extra_args=("--allow-host", "dev.box")) as sandbox:
        yield sandbox


def request(sandbox: SandboxProcess, method: str, path: str, headers: dict[str, str],
            body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """A raw request to the sandbox's port, with whatever Host and Origin a page could send."""
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=60)
    try:
        connection.request(method, path, body, headers)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


PUT_EVENTS = {"X-Amz-Target": "AWSEvents.ListEventBuses",
              "Content-Type": "application/x-amz-json-1.1"}


def test_a_foreign_host_is_refused_on_the_rest_api_the_endpoint_and_the_console(
        guarded: SandboxProcess) -> None:
    before = len(Orders(guarded).dynamodb.scan(TableName=Orders(guarded).table)["Items"])
    for method, path, headers in (("GET", "/prod/order", {}),
                                  ("POST", "/", PUT_EVENTS),
                                  ("GET", "/console/api/overview", {})):
        status, answer_headers, body = request(
            guarded, method, path, {"Host": f"evil.test:{guarded.port}", **headers}, b"{}")
        assert status == 403, path
        assert "--allow-host evil.test" in json.loads(body)["message"]
        assert "access-control-allow-origin" not in answer_headers
    after = len(Orders(guarded).dynamodb.scan(TableName=Orders(guarded).table)["Items"])
    assert after == before, "the refused request created no order"
    refusals = [line for line in guarded.lines if "refused a request for host evil.test" in line]
    assert len(refusals) == 1, "each refused host is logged once"


def test_this_machines_names_and_an_allowed_host_are_answered(guarded: SandboxProcess) -> None:
    for host in ("localhost", f"localhost:{guarded.port}", "127.0.0.1",
                 f"127.0.0.1:{guarded.port}", "[::1]", f"[::1]:{guarded.port}",
                 f"dev.box:{guarded.port}"):
        status, _, body = request(guarded, "GET", "/prod/order", {"Host": host})
        assert status == 200, (host, body)
    assert create_order(guarded)
    assert guarded.client("events").list_event_buses()["EventBuses"], "boto3 keeps working"


def test_a_foreign_origin_is_refused_on_the_sandboxs_own_apis(guarded: SandboxProcess) -> None:
    evil = {"Origin": "http://evil.test"}
    publish = {"Content-Type": "application/x-www-form-urlencoded", **evil}
    for method, path, headers, body in (
            ("POST", "/", {**PUT_EVENTS, **evil}, b"{}"),
            ("POST", "/", publish, b"Action=ListTopics&Version=2010-03-31"),  # a simple request
            ("GET", "/console/api/overview", evil, b""),
            ("POST", "/sandbox/schedules/any/fire", evil, b"")):
        status, answer_headers, _ = request(guarded, method, path, headers, body)
        assert status == 403, path
        assert "access-control-allow-origin" not in answer_headers
    assert any("refused a request from origin http://evil.test" in line
               for line in guarded.lines)
    # This machine's own pages keep working.
    status, _, _ = request(guarded, "GET", "/console/api/overview",
                           {"Origin": f"http://127.0.0.1:{guarded.port}"})
    assert status == 200


def test_a_cors_preflight_from_a_foreign_origin_gets_no_grant(guarded: SandboxProcess) -> None:
    status, headers, _ = request(guarded, "OPTIONS", "/", {
        "Origin": "http://evil.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-amz-target,content-type", **PUT_EVENTS})
    assert status == 403
    assert not [name for name in headers if name.startswith("access-control-")]


def test_the_apps_rest_api_answers_any_origin_as_on_aws(guarded: SandboxProcess) -> None:
    status, _, body = request(guarded, "GET", "/prod/order", {"Origin": "http://evil.test"})
    assert status == 200, body
