"""Rule targets end to end in the breadth stack (tests/breadth/targets.py): one event put with
boto3 reaches each target in the shape its input asks for."""
# ruff: noqa: F811  (pytest fixtures imported from breadth_sandbox are parameters here)

import json
from typing import Any

import pytest
from breadth_sandbox import breadth, queue_messages, received, wait_received  # noqa: F401
from sandbox_process import SandboxProcess, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def order(breadth: SandboxProcess) -> dict[str, Any]:
    """The event put on the parts' bus, as PutEvents gave it back."""
    client = breadth.client("events")
    (bus,) = [b["Name"] for b in client.list_event_buses()["EventBuses"]
              if "TargetsBus" in b["Name"]]
    answer = client.put_events(Entries=[{"EventBusName": bus, "Source": "breadth.targets",
                                         "DetailType": "order placed",
                                         "Detail": json.dumps({"id": "o-42", "total": 7})}])
    assert answer["FailedEntryCount"] == 0
    return {"id": answer["Entries"][0]["EventId"], "bus": bus}


def messages(sandbox: SandboxProcess, queue: str, count: int = 1) -> list[dict[str, Any]]:
    return wait_for(lambda: (lambda found: found if len(found) >= count else None)(
        queue_messages(sandbox, queue)), 60, f"{count} message(s) in {queue}")


def test_an_input_transformer_sends_the_json_template_filled_in(
        breadth: SandboxProcess, order: dict[str, Any]) -> None:
    got = wait_received(breadth, "TargetsTransformEcho")
    assert got["order"] == "o-42" and got["summary"] == "order o-42 placed"
    assert got["rule"].startswith("Breadth-TargetsRule")


def test_an_input_path_sends_what_it_selects(breadth: SandboxProcess,
                                             order: dict[str, Any]) -> None:
    assert wait_received(breadth, "TargetsPathEcho") == {"id": "o-42", "total": 7}


def test_a_plain_text_template_reaches_the_queue_as_text(
        breadth: SandboxProcess, order: dict[str, Any]) -> None:
    (message,) = messages(breadth, "TargetsTextQueue")
    assert message["body"] == "order o-42 from breadth.targets"


def test_a_fifo_queue_gets_the_event(breadth: SandboxProcess,
                                     order: dict[str, Any]) -> None:
    (message,) = messages(breadth, "TargetsFifoQueue")
    assert json.loads(message["body"])["id"] == order["id"]


def test_another_bus_routes_the_event_through_its_own_rule(
        breadth: SandboxProcess, order: dict[str, Any]) -> None:
    got = wait_received(breadth, "TargetsCrossEcho")
    assert got["id"] == order["id"] and got["detail"] == {"id": "o-42", "total": 7}


def test_a_target_naming_no_function_puts_the_event_in_its_dlq_with_the_reason(
        breadth: SandboxProcess, order: dict[str, Any]) -> None:
    (message,) = messages(breadth, "TargetsDeadLetters")
    assert json.loads(message["body"])["id"] == order["id"]
    assert message["attributes"]["ERROR_CODE"] == "ResourceNotFoundException"
    assert "breadth-targets-absent" in message["attributes"]["ERROR_MESSAGE"]
    assert not received(breadth, "TargetsAbsent")
