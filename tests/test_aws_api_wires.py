"""Lambda's REST-JSON API, CloudFormation's and STS's query APIs, and SQS's query protocol, in
process over the real app's assembly: the shapes and errors botocore parses (read with
botocore's own parsers and service models, as the CLI and boto3 read them)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import HeadersDict
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.parsers import create_parser

from sandbox.assembly import Stack, read_assembly
from sandbox.cloudformation.wire import CloudFormationWire
from sandbox.core.state import State
from sandbox.core.targets import Targets
from sandbox.core.wire import Response
from sandbox.lambda_.backend import LambdaService
from sandbox.lambda_.wire import LambdaWire, is_lambda_api, parse_name, tail
from sandbox.settings import Settings
from sandbox.sqs.wire import _flattened, _xml_answer, query_request
from sandbox.sts.wire import StsWire

URL = "http://127.0.0.1:4000"


def parsed(service: str, operation: str, response: Response) -> dict[str, Any]:
    """The answer as botocore parses it for `operation` (an error: its Error dict)."""
    model = ServiceModel(Loader().load_service_model(service, "service-2"), service)
    op = model.operation_model(operation)
    status, headers, body = response
    parser = create_parser(model.metadata["protocol"])
    return parser.parse({"status_code": status, "headers": HeadersDict(headers), "body": body},
                        op.output_shape)


@pytest.fixture(scope="module")
def stacks(assembly: Path) -> list[Stack]:
    return read_assembly(assembly, URL)


@pytest.fixture
def lambda_wire(stacks: list[Stack], tmp_path: Path) -> LambdaWire:
    state = State(tmp_path / "state.db")
    service = LambdaService(stacks, state, Targets(), Settings(), {},
                            on_log=lambda *_: None)
    return LambdaWire(stacks, service, state, lambda request_id: [],
                      lambda function: f"/aws/lambda/{function}")


def order_service(wire: LambdaWire) -> str:
    return next(name for name in wire.lambda_.configs if "OrderService" in name)


# Lambda


@pytest.mark.parametrize(("given", "qualifier", "expected"), [
    ("my-function", None, ("my-function", None)),
    ("my-function:$LATEST", None, ("my-function", "$LATEST")),
    ("arn:aws:lambda:us-east-1:000000000000:function:my-function", None, ("my-function", None)),
    ("arn:aws:lambda:us-east-1:000000000000:function:my-function:7", None, ("my-function", "7")),
    ("000000000000:function:my-function", "$LATEST", ("my-function", "$LATEST")),
])
def test_function_names_as_lambda_reads_them(given: str, qualifier: str | None,
                                             expected: tuple[str, str | None]) -> None:
    assert parse_name(given, qualifier) == expected


def test_lambda_api_paths_are_not_rest_api_stages() -> None:
    assert is_lambda_api("/2015-03-31/functions/f/invocations")
    assert is_lambda_api("/2019-09-25/functions/f/event-invoke-config")
    assert not is_lambda_api("/prod/order")


def test_the_log_tail_is_the_last_4_kb_in_base64() -> None:
    lines = ["START RequestId: r", "x" * 5000, "REPORT RequestId: r"]
    tail_text = base64.b64decode(tail(lines)).decode()
    assert len(tail_text.encode()) == 4096
    assert tail_text.endswith("x\nREPORT RequestId: r\n")


def test_an_unknown_function_is_404_with_its_arn(lambda_wire: LambdaWire) -> None:
    answer = lambda_wire.handle("POST", "/2015-03-31/functions/nope/invocations", {}, b"{}")
    assert answer[0] == 404
    error = parsed("lambda", "Invoke", answer)["Error"]
    assert error["Code"] == "ResourceNotFoundException"
    assert error["Message"] == \
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"
    name = order_service(lambda_wire)
    answer = lambda_wire.handle("GET", f"/2015-03-31/functions/{name}?Qualifier=prod", {}, b"")
    assert parsed("lambda", "GetFunction", answer)["Error"]["Message"] == \
        f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}:prod"


def test_payloads_over_the_limits_are_413(lambda_wire: LambdaWire) -> None:
    path = f"/2015-03-31/functions/{order_service(lambda_wire)}/invocations"
    big = b'"' + b"x" * 6_291_455 + b'"'
    answer = lambda_wire.handle("POST", path, {}, big)
    assert answer[0] == 413
    assert parsed("lambda", "Invoke", answer)["Error"]["Code"] == \
        "RequestEntityTooLargeException"
    answer = lambda_wire.handle("POST", path, {"x-amz-invocation-type": "Event"},
                                b'"' + b"x" * 1_048_575 + b'"')
    assert parsed("lambda", "Invoke", answer)["Error"]["Message"] == \
        "Request must be smaller than 1048576 bytes for the InvokeAsync operation"


def test_event_and_dry_run_invocations(lambda_wire: LambdaWire) -> None:
    path = f"/2015-03-31/functions/{order_service(lambda_wire)}/invocations"
    assert lambda_wire.handle("POST", path, {"x-amz-invocation-type": "DryRun"}, b"{}")[0] == 204
    assert lambda_wire.handle("POST", path, {"x-amz-invocation-type": "Event"}, b"{}")[0] == 202
    assert lambda_wire.state.pending_jobs() == 1  # accepted durably, run by the job runner
    answer = lambda_wire.handle("POST", path, {}, b"{not json")
    assert parsed("lambda", "Invoke", answer)["Error"]["Code"] == \
        "InvalidRequestContentException"


def test_list_and_get_functions(lambda_wire: LambdaWire) -> None:
    first = parsed("lambda", "ListFunctions",
                   lambda_wire.handle("GET", "/2015-03-31/functions/?MaxItems=2", {}, b""))
    rest = parsed("lambda", "ListFunctions", lambda_wire.handle(
        "GET", f"/2015-03-31/functions/?Marker={first['NextMarker']}", {}, b""))
    names = [f["FunctionName"] for f in first["Functions"] + rest["Functions"]]
    assert sorted(names) == sorted(lambda_wire.lambda_.configs) and len(names) == 5
    name = order_service(lambda_wire)
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    described = parsed("lambda", "GetFunction", lambda_wire.handle(
        "GET", f"/2015-03-31/functions/{arn.replace(':', '%3A')}", {}, b""))
    config = described["Configuration"]
    assert (config["FunctionArn"], config["Version"], config["Runtime"]) == (
        arn, "$LATEST", lambda_wire.lambda_.configs[name].runtime)
    assert config["Role"].startswith("arn:aws:iam::000000000000:role/")
    assert config["Environment"]["Variables"] == lambda_wire.lambda_.configs[name].environment


def test_event_invoke_config_and_mappings(lambda_wire: LambdaWire) -> None:
    name = next(n for n in lambda_wire.lambda_.configs if "InvoiceService" in n)
    config = parsed("lambda", "GetFunctionEventInvokeConfig", lambda_wire.handle(
        "GET", f"/2019-09-25/functions/{name}/event-invoke-config", {}, b""))
    assert config["MaximumRetryAttempts"] == 2
    assert ":sqs:" in config["DestinationConfig"]["OnFailure"]["Destination"]
    mappings = parsed("lambda", "ListEventSourceMappings", lambda_wire.handle(
        "GET", "/2015-03-31/event-source-mappings/", {}, b""))
    assert mappings["EventSourceMappings"] == []  # the app has none


# CloudFormation and STS


def test_describe_stacks_answers_the_local_outputs(stacks: list[Stack]) -> None:
    wire = CloudFormationWire(stacks)
    answer = parsed("cloudformation", "DescribeStacks", wire.handle(
        "DescribeStacks", {"StackName": "OrderChoreography"}))
    [stack] = answer["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["OrderUrl"] == f"{URL}/prod/order"
    assert outputs["TableName"] == stacks[0].ref(
        next(r.logical_id for r in stacks[0].of_type("AWS::DynamoDB::Table")))
    assert outputs["InvoiceServiceOnFailureQueueUrl"].startswith(f"{URL}/000000000000/")


def test_stack_resources_logical_to_physical(stacks: list[Stack]) -> None:
    wire = CloudFormationWire(stacks)
    table = next(r.logical_id for r in stacks[0].of_type("AWS::DynamoDB::Table"))
    detail = parsed("cloudformation", "DescribeStackResource", wire.handle(
        "DescribeStackResource", {"StackName": "OrderChoreography",
                                  "LogicalResourceId": table}))["StackResourceDetail"]
    assert detail["PhysicalResourceId"] == stacks[0].ref(table)
    assert detail["ResourceType"] == "AWS::DynamoDB::Table"
    summaries = parsed("cloudformation", "ListStackResources", wire.handle(
        "ListStackResources", {"StackName": "OrderChoreography"}))["StackResourceSummaries"]
    assert len(summaries) == len(stacks[0].resources)
    template = parsed("cloudformation", "GetTemplate", wire.handle(
        "GetTemplate", {"StackName": "OrderChoreography"}))["TemplateBody"]
    assert "Resources" in (template if isinstance(template, dict) else json.loads(template))


def test_unknown_stack_and_resource_are_validation_errors(stacks: list[Stack]) -> None:
    wire = CloudFormationWire(stacks)
    answer = wire.handle("DescribeStacks", {"StackName": "Nope"})
    error = parsed("cloudformation", "DescribeStacks", answer)["Error"]
    assert (answer[0], error["Code"], error["Message"]) == (
        400, "ValidationError", "Stack with id Nope does not exist")
    error = parsed("cloudformation", "DescribeStackResource", wire.handle(
        "DescribeStackResource", {"StackName": "OrderChoreography",
                                  "LogicalResourceId": "Nope"}))["Error"]
    assert error["Message"] == "Resource Nope does not exist for stack OrderChoreography"


def test_caller_identity_is_the_local_account() -> None:
    answer = parsed("sts", "GetCallerIdentity", StsWire().handle("GetCallerIdentity", {}))
    assert (answer["Account"], answer["Arn"], answer["UserId"]) == (
        "000000000000", "arn:aws:iam::000000000000:root", "000000000000")


# SQS's query protocol


def test_sqs_query_requests_become_json_requests() -> None:
    request = query_request({
        "QueueUrl": "u", "MaxNumberOfMessages": "10", "AttributeName": {"1": "All"},
        "MessageAttribute": {"1": {"Name": "why", "Value": {"DataType": "String",
                                                            "StringValue": "x"}}},
        "SendMessageBatchRequestEntry": {"2": {"Id": "b"}, "1": {"Id": "a",
                                                                 "DelaySeconds": "5"}}})
    assert request == {
        "QueueUrl": "u", "MaxNumberOfMessages": 10, "AttributeNames": ["All"],
        "MessageAttributes": {"why": {"DataType": "String", "StringValue": "x"}},
        "Entries": [{"Id": "a", "DelaySeconds": 5}, {"Id": "b"}]}


def test_sqs_query_answers_flatten_lists_and_maps() -> None:
    result = {"Messages": [{"MessageId": "m", "Body": "b", "Attributes": {"SenderId": "0"},
                            "MessageAttributes": {"why": {"StringValue": "x",
                                                          "DataType": "String"}}}]}
    status, _, body = _xml_answer("ReceiveMessage", _flattened("ReceiveMessage", result))
    text = body.decode()
    assert status == 200
    assert "<Message><MessageId>m</MessageId><Body>b</Body>" in text
    assert "<Attribute><Name>SenderId</Name><Value>0</Value></Attribute>" in text
    assert ("<MessageAttribute><Name>why</Name><Value><StringValue>x</StringValue>"
            "<DataType>String</DataType></Value></MessageAttribute>") in text
