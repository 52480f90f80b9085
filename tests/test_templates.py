"""No traceback from any template: whatever a template holds, reading it and wiring every
service ends in a sandbox ready to start or in one `AssemblyError` that names the file, the
resource and the property.

The schema is checked in-process on small templates, with CloudFormation's leniency; then
Hypothesis mutates the breadth stack, which uses every building block the sandbox runs: one
property of one resource, or one value inside it (down to three levels), is removed or replaced
by a value of another type or shape. Nothing
is started (`Sandbox.wire`), so each example costs milliseconds.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_assembly import only_stack, write_assembly

from sandbox.assembly import AssemblyError, read_assembly
from sandbox.sandbox import Sandbox, not_emulated

ROOT = Path(__file__).resolve().parents[1]
QUEUE = {"Type": "AWS::SQS::Queue", "Properties": {}}


def properties(tmp_path: Path, kind: str, props: dict) -> dict:
    stack = only_stack(write_assembly(tmp_path / "a", {"R": {"Type": kind, "Properties": props},
                                                       "Q": QUEUE}))
    return stack.properties("R")


def refusal(tmp_path: Path, kind: str, props: dict) -> str:
    with pytest.raises(AssemblyError) as refused:
        properties(tmp_path, kind, props)
    return str(refused.value).split("S.template.json: ")[1]


def test_numbers_and_booleans_given_as_text_are_taken_as_cloudformation_takes_them(
        tmp_path: Path) -> None:
    assert properties(tmp_path, "AWS::SQS::Queue", {
        "VisibilityTimeout": "45", "FifoQueue": "true", "QueueName": 12,
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Q", "Arn"]},
                          "maxReceiveCount": "3"}, "Tags": "left as written",
    }) == {"VisibilityTimeout": 45, "FifoQueue": True, "QueueName": "12",
           "RedrivePolicy": {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:S-Q",
                             "maxReceiveCount": "3"}, "Tags": "left as written"}


def test_a_wrong_type_names_the_resource_and_the_path_in_cloudformations_words(
        tmp_path: Path) -> None:
    assert refusal(tmp_path, "AWS::Lambda::Function", {"Code": {}, "Timeout": "soon"}) == (
        "Resources.R.Properties.Timeout: Properties validation failed for resource R with "
        "message: #/Timeout: expected type: Integer, found: String")
    assert refusal(tmp_path, "AWS::Events::Rule", {
        "EventPattern": {"source": ["a"]}, "Targets": [{"Id": "T", "Arn": "a"},
                                                       {"Id": "U", "Arn": "b",
                                                        "RetryPolicy": []}]}) == (
        "Resources.R.Properties.Targets[1].RetryPolicy: Properties validation failed for "
        "resource R with message: #/Targets/1/RetryPolicy: expected type: JSONObject, found: "
        "JSONArray")
    assert refusal(tmp_path, "AWS::Lambda::Function", {"Code": {}, "Environment": {
        "Variables": {"A": {"Ref": "AWS::NoValue"}, "B": None}}}).endswith(
        "#/Environment/Variables/B: 'null' values are not allowed in templates")


def test_a_missing_required_property_is_named(tmp_path: Path) -> None:
    assert refusal(tmp_path, "AWS::SNS::Subscription", {"Protocol": "sqs"}) == (
        "Resources.R.Properties.TopicArn: Properties validation failed for resource R with "
        "message: #: required key [TopicArn] not found")
    assert refusal(tmp_path, "AWS::Events::Rule", {"Targets": [{"Arn": "a"}]}).endswith(
        "#/Targets/0: required key [Id] not found")


def test_what_is_not_emulated_is_named_with_its_logical_ids(tmp_path: Path) -> None:
    flow = {"Type": "AWS::StepFunctions::StateMachine", "Properties": {}}
    stack = only_stack(write_assembly(tmp_path / "a", {
        "Flow": flow, "Other": flow, "Q": QUEUE, "Role": {"Type": "AWS::IAM::Role"},
        "Topic": {"Type": "AWS::Kinesis::Stream"}}))
    assert not_emulated([stack]) == ["AWS::Kinesis::Stream (Topic)",
                                     "AWS::StepFunctions::StateMachine (Flow, Other)"]


@pytest.mark.parametrize(("resource", "said"), [
    ({"Type": "AWS::SQS::Queue", "Properties": {"DelaySeconds": [5]}},
     "Resources.R.Properties.DelaySeconds: Properties validation failed for resource R with "
     "message: #/DelaySeconds: expected type: Integer, found: JSONArray"),
    ({"Type": "AWS::SQS::Queue", "Properties": {"RedrivePolicy": "{not json"}},
     "Resources.R.Properties.RedrivePolicy: InvalidParameterValue: Value {not json for "
     "parameter RedrivePolicy is invalid. Reason: Redrive policy is not a valid JSON map."),
])
def test_sandbox_up_on_a_template_it_cannot_run_exits_2_with_one_line(
        tmp_path: Path, resource: dict, said: str) -> None:
    assembly = write_assembly(tmp_path / "a", {"R": resource})
    answer = subprocess.run(
        [sys.executable, "-m", "sandbox", "up", "--assembly", str(assembly),
         "--state", str(tmp_path / "state")], cwd=ROOT, capture_output=True, text=True,
        timeout=60)
    assert answer.returncode == 2
    assert answer.stderr == f"sandbox: {assembly / 'S.template.json'}: {said}\n"

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 100_000), st.text(max_size=12),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.just({"Ref": "NoSuchResource"}), st.just({"Fn::GetAtt": ["NoSuch", "Arn"]}),
    st.just({"Fn::Join": ["", 5]}),
)


class Seed:
    """The breadth assembly copied to a folder of its own, and its template (kept out of
    Hypothesis's reports)."""

    def __init__(self, assembly: Path) -> None:
        self.assembly = assembly
        self.template = json.loads((assembly / TEMPLATE).read_text())

    def __repr__(self) -> str:
        return f"Seed({self.assembly})"


TEMPLATE = "Breadth.template.json"
# One line: the template file, then the resource and property (or the output) it is about.
NAMED = re.compile(rf"\S*{re.escape(TEMPLATE)}: (Resources\.\w+\.Properties"
                   r"(\.[^\s\[]+|\[[^\]]*\])*|Outputs\.\S+): \S")


@pytest.fixture(scope="module")
def seed(breadth_assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Seed:
    copy = tmp_path_factory.mktemp("mutated") / "assembly"
    shutil.copytree(breadth_assembly, copy)
    return Seed(copy)


def paths(value: Any, depth: int = 3) -> list[tuple[str | int, ...]]:
    """Every key and list index in `value`, down to `depth` levels."""
    if depth == 0 or not isinstance(value, dict | list):
        return []
    steps = value.items() if isinstance(value, dict) else enumerate(value)
    return [path for step, inner in steps
            for path in [(step,), *((step, *below) for below in paths(inner, depth - 1))]]


def properties_of(template: dict) -> list[tuple[str, tuple[str | int, ...]]]:
    return [(lid, path) for lid, resource in template["Resources"].items()
            for path in paths(resource.get("Properties") or {})]


def wire(assembly: Path, state: Path) -> None:
    sandbox = Sandbox(assembly, state, port=0)
    try:
        sandbox.wire(read_assembly(assembly, sandbox.url))
    finally:
        sandbox.stop()


@pytest.mark.slow  # synthesizes the breadth stack
def test_the_breadth_stack_itself_wires(seed: Seed, tmp_path: Path) -> None:
    wire(seed.assembly, tmp_path / "state")


def first_of_each(template: dict) -> list[tuple[str, tuple[str | int, ...]]]:
    """(logical id, path) for the first resource of each type holding each path (a property
    or a value inside it, two levels down)."""
    seen: dict[tuple[str, tuple[str | int, ...]], str] = {}
    for logical_id, resource in template["Resources"].items():
        for path in paths(resource.get("Properties") or {}, depth=2):
            seen.setdefault((resource["Type"], path), logical_id)
    return [(logical_id, path) for (_, path), logical_id in seen.items()]


def mutated_wires(seed: Seed, state: Path, logical_id: str, path: tuple[str | int, ...],
                  value: Any) -> str | None:
    """Wire the template with the value at `path` in a resource's properties removed (REMOVE)
    or replaced; None if it wires, else the AssemblyError's message."""
    mutated = json.loads(json.dumps(seed.template))
    holder = mutated["Resources"][logical_id]["Properties"]
    for step in path[:-1]:
        holder = holder[step]
    if value is REMOVE:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    (seed.assembly / TEMPLATE).write_text(json.dumps(mutated))
    try:
        wire(seed.assembly, state)
    except AssemblyError as error:
        assert NAMED.match(str(error)) and "\n" not in str(error), str(error)
        return str(error)
    return None


REMOVE = object()


@pytest.mark.slow
def test_each_property_of_each_type_removed_or_of_another_type_starts_or_names_it(
        seed: Seed, tmp_path: Path) -> None:
    """Every property the breadth stack sets and what is directly inside it, once per
    resource type: a regression in a reader fails here, whatever Hypothesis draws below."""
    for logical_id, path in first_of_each(seed.template):
        for value in (REMOVE, "x", [], {}):
            mutated_wires(seed, tmp_path / "state", logical_id, path, value)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_template_starts_or_names_what_is_wrong(
        seed: Seed, tmp_path: Path, data: Any) -> None:
    logical_id, path = data.draw(st.sampled_from(properties_of(seed.template)))
    value = REMOVE if data.draw(st.booleans()) else data.draw(ODD_VALUES)
    mutated_wires(seed, tmp_path / "state", logical_id, path, value)


def test_a_pattern_matched_at_each_request_is_compiled_at_start(tmp_path: Path) -> None:
    assembly = write_assembly(tmp_path / "a", {
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "a"}},
        "Get": {"Type": "AWS::ApiGateway::Method", "Properties": {
            "RestApiId": {"Ref": "Api"}, "ResourceId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
            "HttpMethod": "GET", "MethodResponses": [{"StatusCode": "200"}],
            "Integration": {"Type": "MOCK", "IntegrationResponses": [
                {"StatusCode": "200", "SelectionPattern": "5(\\d"}]}}},
        "Stage": {"Type": "AWS::ApiGateway::Deployment", "Properties": {
            "RestApiId": {"Ref": "Api"}, "StageName": "test"}}})
    with pytest.raises(AssemblyError, match=r"Resources\.Get\.Properties\.Integration\."
                                            r"IntegrationResponses\[0\]\.SelectionPattern: "):
        wire(assembly, tmp_path / "state")
