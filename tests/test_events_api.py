"""EventBridge's management API as a client sees it, in-process: ListRules and
ListTargetsByRule paging, targets listed as the template wrote them, TestEventPattern's checks of
the event and of the pattern's length, and a bad target input stopping the start."""

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.assembly import AssemblyError, Stack
from sandbox.core.state import State
from sandbox.core.targets import Targets
from sandbox.events.backend import EventBus
from sandbox.events.wire import handle
from sandbox.settings import Settings

QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:q"
PATTERN = {"source": ["shop"]}
EVENT = {"id": "1", "account": "000000000000", "source": "shop", "time": "2026-11-24T14:27:32Z",
         "region": "us-east-1", "detail-type": "t", "detail": {}}


def rule(name: str, targets: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Type": "AWS::Events::Rule",
            "Properties": {"Name": name, "EventPattern": PATTERN, "Targets": targets}}


def stack(resources: dict[str, Any]) -> Stack:
    return Stack(name="S", region="us-east-1", directory=Path("."),
                 template_file=Path("S.template.json"), template={"Resources": resources},
                 endpoint_url="http://127.0.0.1:1", asset_paths={})


def bus_of(resources: dict[str, Any], tmp_path: Path) -> EventBus:
    return EventBus([stack(resources)], State(tmp_path / "state.db"), Targets(), Settings())


def call(bus: EventBus, operation: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, _, body = handle(bus, operation, json.dumps(request).encode())
    return status, json.loads(body)


@pytest.fixture
def bus(tmp_path: Path) -> EventBus:
    rules = {f"Rule{i}": rule(f"rule-{i}", [{"Id": f"t{j}", "Arn": QUEUE_ARN} for j in range(3)])
             for i in range(5)}
    return bus_of(rules, tmp_path)


def all_pages(bus: EventBus, operation: str, key: str, request: dict[str, Any]) -> list[Any]:
    items, token = [], None
    while True:
        paging = {"NextToken": token} if token else {}
        status, answer = call(bus, operation, {**request, **paging})
        assert status == 200
        items += answer[key]
        token = answer.get("NextToken")
        if token is None:
            return items


def test_list_rules_pages_by_limit_and_gives_every_rule_once(bus: EventBus) -> None:
    status, first = call(bus, "ListRules", {"Limit": 2})
    assert status == 200 and [r["Name"] for r in first["Rules"]] == ["rule-0", "rule-1"]
    assert "NextToken" in first
    names = [r["Name"] for r in all_pages(bus, "ListRules", "Rules", {"Limit": 2})]
    assert names == [f"rule-{i}" for i in range(5)]


def test_the_last_page_has_no_next_token(bus: EventBus) -> None:
    status, answer = call(bus, "ListRules", {})
    assert status == 200 and len(answer["Rules"]) == 5 and "NextToken" not in answer


def test_list_targets_by_rule_pages_too(bus: EventBus) -> None:
    status, first = call(bus, "ListTargetsByRule", {"Rule": "rule-0", "Limit": 1})
    assert status == 200 and [t["Id"] for t in first["Targets"]] == ["t0"]
    ids = [t["Id"] for t in all_pages(bus, "ListTargetsByRule", "Targets",
                                      {"Rule": "rule-0", "Limit": 2})]
    assert ids == ["t0", "t1", "t2"]


@pytest.mark.parametrize(("limit", "constraint"), [
    (0, "greater than or equal to 1"), (101, "less than or equal to 100")])
def test_a_limit_out_of_range_is_a_validation_error(bus: EventBus, limit: int,
                                                    constraint: str) -> None:
    status, answer = call(bus, "ListRules", {"Limit": limit})
    assert status == 400 and answer["__type"] == "ValidationException"
    assert answer["message"] == (
        f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
        f"Member must have value {constraint}")


@pytest.mark.parametrize("token", ["nonsense", "", "W10="])
def test_a_next_token_not_given_out_is_refused(bus: EventBus, token: str) -> None:
    status, answer = call(bus, "ListRules", {"NextToken": token})
    assert status == 400 and answer["__type"] == "ValidationException"


def test_a_next_token_of_one_operation_does_not_page_another(bus: EventBus) -> None:
    token = call(bus, "ListRules", {"Limit": 1})[1]["NextToken"]
    status, answer = call(bus, "ListTargetsByRule", {"Rule": "rule-0", "NextToken": token})
    assert status == 400 and answer["__type"] == "ValidationException"


def test_targets_are_listed_as_written_without_an_invented_retry_policy(tmp_path: Path) -> None:
    written = {"Id": "q", "Arn": QUEUE_ARN, "InputPath": "$.detail"}
    bus = bus_of({"R": rule("r", [written])}, tmp_path)
    assert call(bus, "ListTargetsByRule", {"Rule": "r"}) == (200, {"Targets": [written]})


# --- TestEventPattern ---------------------------------------------------------------------------

@pytest.mark.parametrize("event", [
    "plain string",  # the three cases recorded against AWS
    json.dumps(["plain string"]),
    json.dumps({"testEvent": "value"}),
    *[json.dumps({k: v for k, v in EVENT.items() if k != missing})
      for missing in ("id", "account", "source", "time", "region", "detail-type")],
])
def test_an_event_that_is_not_an_object_or_lacks_a_mandatory_field_is_refused(
        bus: EventBus, event: str) -> None:
    status, answer = call(bus, "TestEventPattern",
                          {"Event": event, "EventPattern": json.dumps(PATTERN)})
    assert (status, answer["__type"], answer["message"]) == (
        400, "ValidationException", "Parameter Event is not valid.")


def test_an_event_without_resources_is_tested_as_aws_does(bus: EventBus) -> None:
    assert call(bus, "TestEventPattern", {"Event": json.dumps(EVENT),
                                          "EventPattern": json.dumps(PATTERN)}) == (
        200, {"Result": True})


def test_a_pattern_over_4096_characters_is_a_validation_error(bus: EventBus) -> None:
    pattern = json.dumps({"source": ["x" * 4096]})
    status, answer = call(bus, "TestEventPattern", {"Event": json.dumps(EVENT),
                                                    "EventPattern": pattern})
    assert status == 400 and answer["__type"] == "ValidationException"
    assert answer["message"].endswith(
        "at 'eventPattern' failed to satisfy constraint: Member must have length less than or "
        "equal to 4096")
    fits = json.dumps({"source": ["x" * (4096 - len('{"source": [""]}'))]})
    request = {"Event": json.dumps(EVENT), "EventPattern": fits}
    assert call(bus, "TestEventPattern", request)[0] == 200


# --- target inputs refused at start -------------------------------------------------------------

@pytest.mark.parametrize(("target", "where", "message"), [
    ({"InputTransformer": {"InputPathsMap": {"a": "$.detail"},
                           "InputTemplate": '"<a> and <b>"'}},
     "InputTransformer.InputTemplate",
     "InputTemplate for target t contains invalid placeholder b."),
    ({"Input": "{}", "InputPath": "$.detail"}, "InputPath",
     "Only one of Input, InputPath, or InputTransformer must be provided for target t."),
    ({"InputTransformer": {"InputPathsMap": {"aws.events.x": "$.detail"},
                           "InputTemplate": "<aws.events.x>"}},
     "InputTransformer.InputPathsMap.aws.events.x", "is reserved"),
])
def test_a_target_input_aws_refuses_stops_the_start_naming_file_rule_target_and_property(
        tmp_path: Path, target: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(AssemblyError) as refused:
        bus_of({"MyRule": rule("r", [{"Id": "t", "Arn": QUEUE_ARN, **target}])}, tmp_path)
    assert str(refused.value).startswith(
        f"S.template.json: Resources.MyRule.Properties.Targets[t].{where}: ")
    assert message in str(refused.value)


def test_an_invalid_pattern_in_the_template_stops_the_start_naming_rule_and_property(
        tmp_path: Path) -> None:
    bad = {"Type": "AWS::Events::Rule", "Properties": {
        "EventPattern": {"source": [{"prefix": 5}]}, "Targets": [{"Id": "t", "Arn": QUEUE_ARN}]}}
    with pytest.raises(AssemblyError) as caught:
        bus_of({"Bad": bad}, tmp_path)
    message = str(caught.value)
    assert "Resources.Bad.Properties.EventPattern: InvalidEventPatternException: " in message
    assert "\n" not in message
