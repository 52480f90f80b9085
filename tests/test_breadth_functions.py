"""Functions as templates declare them, end to end in the breadth stack
(tests/breadth/functions_as_declared.py): inline code importing a layer's module runs behind an
alias that an API integration and a rule target invoke, as version 1; a handler missing from
inline code is Lambda's Runtime.HandlerNotFound."""
# ruff: noqa: F811  (pytest fixtures imported from breadth_sandbox are parameters here)

import json
import urllib.request
from typing import Any

import boto3
import pytest
from breadth.functions_as_declared import ALIAS, SOURCE, STAGE
from breadth_sandbox import breadth, received, wait_received  # noqa: F401
from sandbox_process import SandboxProcess

pytestmark = pytest.mark.slow


def client(sandbox: SandboxProcess, service: str) -> Any:
    return boto3.client(service, endpoint_url=sandbox.url, region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def test_an_alias_behind_an_api_runs_the_inline_code_with_its_layer(
        breadth: SandboxProcess) -> None:
    with urllib.request.urlopen(f"{breadth.url}/{STAGE}/live", timeout=60) as answer:
        ran = json.loads(answer.read())
    assert ran["greeting"] == "hello from the layer"
    assert ran["version"] == ran["context_version"] == "1"
    assert ran["invoked_arn"].endswith(f":function:{ran['invoked_arn'].split(':')[6]}:{ALIAS}")
    assert wait_received(breadth, "FunctionsInline", lambda event: "httpMethod" in event)


def test_a_rule_target_naming_the_alias_delivers_to_the_function(
        breadth: SandboxProcess) -> None:
    bus = next(name for name in (b["Name"] for b in client(breadth, "events")
                                 .list_event_buses()["EventBuses"]) if "FunctionsBus" in name)
    client(breadth, "events").put_events(Entries=[{
        "EventBusName": bus, "Source": SOURCE, "DetailType": "ping",
        "Detail": json.dumps({"id": "alias-1"})}])
    event = wait_received(breadth, "FunctionsInline",
                          lambda event: event.get("detail", {}).get("id") == "alias-1")
    assert event["source"] == SOURCE


def test_a_handler_missing_from_inline_code_is_lambdas_answer(breadth: SandboxProcess) -> None:
    lambda_ = client(breadth, "lambda")
    name = next(f["FunctionName"] for f in lambda_.list_functions()["Functions"]
                if "FunctionsNoHandler" in f["FunctionName"])
    answer = lambda_.invoke(FunctionName=name, Payload=b"{}")
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "Runtime.HandlerNotFound"
    assert "absent" in error["errorMessage"]
    assert received(breadth, "FunctionsNoHandler") == []


def test_aws_lambda_invoke_through_an_alias_runs_its_version(breadth: SandboxProcess) -> None:
    lambda_ = client(breadth, "lambda")
    name = next(f["FunctionName"] for f in lambda_.list_functions()["Functions"]
                if "FunctionsInline" in f["FunctionName"])
    answer = lambda_.invoke(FunctionName=name, Qualifier=ALIAS, Payload=b'{"from": "cli"}')
    assert (answer["StatusCode"], answer["ExecutedVersion"]) == (200, "1")
    assert "FunctionError" not in answer
    with pytest.raises(lambda_.exceptions.ResourceNotFoundException) as missing:
        lambda_.invoke(FunctionName=f"{name}:nosuchalias", Payload=b"{}")
    assert missing.value.response["Error"]["Message"].endswith(f":{name}:nosuchalias")
