"""Rule target input, in-process: AWS's documented input-transformation examples (the EC2 event
and templates of "Amazon EventBridge input transformation") and deliveries recorded against AWS
(InputPath, string and JSON templates, missing paths, predefined variables)."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.events.transform import (
    Delivery,
    InputError,
    TargetInput,
    evaluate,
    target_input,
)

# The example event of AWS's input-transformation page.
EC2_EVENT = {
    "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
    "account": "123456789012", "time": "2015-11-11T21:29:54Z", "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {"instance-id": "i-0123456789", "state": "RUNNING"},
}
EC2_PATHS = {"timestamp": "$.time", "instance": "$.detail.instance-id", "state": "$.detail.state"}
DELIVERY = Delivery("arn:aws:events:us-east-2:123456789012:rule/example", "example",
                    datetime(2015, 11, 11, 21, 29, 55, tzinfo=UTC))


def render(target: dict[str, Any], event: dict[str, Any] = EC2_EVENT) -> str:
    return target_input(target).render(event, DELIVERY)


def transformed(template: str, paths: dict[str, str] = EC2_PATHS,
                event: dict[str, Any] = EC2_EVENT) -> str:
    return render({"Id": "t", "InputTransformer": {"InputPathsMap": paths,
                                                   "InputTemplate": template}}, event)


# --- AWS's documented examples ------------------------------------------------------------------

@pytest.mark.parametrize(("template", "output"), [
    ('"instance <instance> is in <state>"', '"instance i-0123456789 is in RUNNING"'),
    ('"instance \\"<instance>\\" is in <state>"', '"instance \\"i-0123456789\\" is in RUNNING"'),
    ('"<aws.events.rule-name> triggered"', '"example triggered"'),
])
def test_aws_string_template_examples(template: str, output: str) -> None:
    assert transformed(template) == output


@pytest.mark.parametrize(("template", "output"), [
    ('{"instance" : <instance>, "state": <state>}',
     {"instance": "i-0123456789", "state": "RUNNING"}),
    ('{"instance" : <instance>, "state": "<state>", '
     '"instanceStatus": "instance \\"<instance>\\" is in <state>"}',
     {"instance": "i-0123456789", "state": "RUNNING",
      "instanceStatus": 'instance "i-0123456789" is in RUNNING'}),
    ('{"instance" : <instance>, "state": [ 9, <state>, true ], "Transformed" : "Yes"}',
     {"instance": "i-0123456789", "state": [9, "RUNNING", True], "Transformed": "Yes"}),
])
def test_aws_json_template_examples(template: str, output: dict[str, Any]) -> None:
    assert json.loads(transformed(template)) == output


def test_aws_reserved_variables_in_json_example() -> None:
    template = ('{"instance" : <instance>, "state": <state>, "ruleArn" : <aws.events.rule-arn>, '
                '"ruleName" : <aws.events.rule-name>, "originalEvent" : <aws.events.event>}')
    output = json.loads(transformed(template))
    assert output["ruleArn"] == "arn:aws:events:us-east-2:123456789012:rule/example"
    assert output["ruleName"] == "example" and output["state"] == "RUNNING"
    assert output["originalEvent"]["id"] == EC2_EVENT["id"]


def test_aws_api_reference_plain_text_template() -> None:
    paths = {"instance": "$.detail.instance-id", "status": "$.detail.state"}
    assert transformed("<instance> is in state <status>", paths) == (
        "i-0123456789 is in state RUNNING")


# --- deliveries recorded against AWS ------------------------------------------------------------

RECORDED_EVENT = {**EC2_EVENT, "detail-type": "core.update-account-command",
                  "source": "core.update-account-command",
                  "detail": {"command": "update-account",
                             "payload": {"acc_id": "0a787ecb-4015", "sf_id": "baz"}}}
RECORDED_PATHS = {"detail-type": "$.detail-type", "timestamp": "$.time",
                  "command": "$.detail.command"}
MISSING_PATHS = {**RECORDED_PATHS, "command": "$.detail.notinmessage"}


@pytest.mark.parametrize(("path", "body"), [
    ("$.detail", RECORDED_EVENT["detail"]),
    ("$.detail.payload", {"acc_id": "0a787ecb-4015", "sf_id": "baz"}),
    ("$.detail.payload.sf_id", "baz"),
])
def test_input_path_delivers_the_json_it_selects(path: str, body: Any) -> None:
    assert json.loads(render({"Id": "t", "InputPath": path}, RECORDED_EVENT)) == body


def test_a_string_template_is_delivered_with_its_quotes_and_a_missing_path_as_nothing() -> None:
    template = ('"Event of <detail-type> type, at time <timestamp>, '
                'info extracted from detail <command>"')
    assert transformed(template, RECORDED_PATHS, RECORDED_EVENT) == (
        '"Event of core.update-account-command type, at time 2015-11-11T21:29:54Z, '
        'info extracted from detail update-account"')
    assert transformed(template, MISSING_PATHS, RECORDED_EVENT).endswith('from detail "')


def test_a_json_template_gives_a_missing_path_as_an_empty_string() -> None:
    template = '{"detailType": <detail-type>,  "time": <timestamp>, "command": <command>}'
    assert json.loads(transformed(template, MISSING_PATHS, RECORDED_EVENT)) == {
        "detailType": "core.update-account-command", "time": "2015-11-11T21:29:54Z",
        "command": ""}


def test_predefined_variables_in_a_string() -> None:
    template = ('"Message containing all pre defined variables <aws.events.rule-arn> '
                '<aws.events.rule-name> <aws.events.event.ingestion-time>"')
    assert transformed(template, {}) == (
        '"Message containing all pre defined variables '
        'arn:aws:events:us-east-2:123456789012:rule/example example 2015-11-11T21:29:55Z"')


def test_the_event_variables_are_the_event_summary_and_the_whole_event() -> None:
    template = '{"originalEvent": <aws.events.event>, "originalEventJson": <aws.events.event.json>}'
    output = json.loads(transformed(template, {}, RECORDED_EVENT))
    assert output["originalEventJson"] == RECORDED_EVENT
    assert output["originalEvent"] == {
        "id": EC2_EVENT["id"], "account": "123456789012",
        "detailType": "core.update-account-command", "time": "2015-11-11T21:29:55Z",
        "source": "core.update-account-command", "region": "us-east-1",
        "resources": EC2_EVENT["resources"], "version": "0"}


# --- quoting, paths, run-time failure -----------------------------------------------------------

def test_an_object_inside_a_string_loses_its_inner_quotes() -> None:
    assert transformed('"Detail is <d>"', {"d": "$.detail"}) == (
        '"Detail is {instance-id: i-0123456789, state: RUNNING}"')


def test_a_value_outside_quotes_goes_in_as_its_json() -> None:
    event = {**EC2_EVENT, "detail": {"n": 3, "ok": False, "tags": ["a", "b"], "none": None}}
    paths = {k: f"$.detail.{k}" for k in ("n", "ok", "tags", "none")}
    assert json.loads(transformed('{"n": <n>, "ok": <ok>, "tags": <tags>, "none": <none>}',
                                  paths, event)) == event["detail"]


@pytest.mark.parametrize(("path", "found", "value"), [
    ("$", True, EC2_EVENT),
    ("$.resources[0]", True, EC2_EVENT["resources"][0]),
    ("$.resources[5]", False, None),
    ("$.detail.*", True, ["i-0123456789", "RUNNING"]),
    ("$.detail.absent", False, None),
    ("detail", False, None),
    ("$['detail']", False, None),  # bracket notation is not EventBridge's
])
def test_json_paths_as_eventbridge_evaluates_them(path: str, found: bool, value: Any) -> None:
    assert evaluate(path, EC2_EVENT) == (found, value)


def test_a_value_that_breaks_a_json_template_cannot_be_delivered() -> None:
    event = {**EC2_EVENT, "detail": {"note": 'say "hi"'}}
    with pytest.raises(InputError, match="not valid JSON"):
        transformed('{"note": "<note>"}', {"note": "$.detail.note"}, event)


def test_no_input_property_delivers_the_event_and_input_delivers_itself() -> None:
    assert json.loads(render({"Id": "t"})) == EC2_EVENT
    assert isinstance(target_input({"Id": "t"}), TargetInput)
    assert render({"Id": "t", "Input": '{"fixed": 1}'}) == '{"fixed": 1}'


# --- what PutTargets refuses ----------------------------------------------------------------------

@pytest.mark.parametrize(("target", "prop", "message"), [
    ({"Input": "not json"}, "Input", "valid JSON"),
    ({"InputPath": "$." + "a" * 300}, "InputPath", "at most 256"),
    ({"InputTransformer": {"InputPathsMap": {f"k{i}": "$" for i in range(101)},
                           "InputTemplate": "x"}},
     "InputTransformer.InputPathsMap", "at most 100"),
    ({"InputTransformer": {"InputPathsMap": {"a b": "$"}, "InputTemplate": "x"}},
     "InputTransformer.InputPathsMap.a b", "[A-Za-z0-9_-]+"),
    ({"InputTransformer": {"InputPathsMap": {}, "InputTemplate": ""}},
     "InputTransformer.InputTemplate", "1 to 8192"),
    ({"InputTransformer": {"InputPathsMap": {"k": "$.source"}, "InputTemplate": '{<k>: 1}'}},
     "InputTransformer.InputTemplate", "cannot be an object key"),
    ({"InputTransformer": {"InputTemplate": '"<aws.events.rule-nam>"'}},
     "InputTransformer.InputTemplate",
     "InputTemplate for target t contains invalid placeholder aws.events.rule-nam."),
])
def test_what_put_targets_refuses(target: dict[str, Any], prop: str, message: str) -> None:
    with pytest.raises(InputError) as refused:
        target_input({"Id": "t", **target})
    assert refused.value.prop == prop and message in refused.value.message
