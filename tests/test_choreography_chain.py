"""One order through all five services, wired only by what the synthesized template says.

The handlers are imported from the assets the assembly staged (the code that deploys), each
with the environment its function declares. Every event a service publishes goes to the
targets of the rules on its bus whose pattern matches it: the rules, patterns and targets are
read from the template, not restated here, and matched by the sandbox's implementation of
EventBridge's pattern language. DynamoDB and the PutEvents calls go to moto.
"""

import json
import uuid
from collections import deque
from typing import Any

import boto3
import pytest
from conftest import SynthesizedApp, import_path

from sandbox.events.patterns import matches

ACCOUNT, REGION = "123456789012", "us-east-1"


def envelope(entry: dict[str, Any]) -> dict[str, Any]:
    """What EventBridge hands a Lambda target for one PutEvents entry."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"],
            "source": entry["Source"], "account": ACCOUNT, "time": "2026-11-24T14:27:32Z",
            "region": REGION, "resources": [], "detail": json.loads(entry["Detail"])}


class Deployment:
    """The template's table, bus and functions, made real enough to run in moto."""

    def __init__(self, app: SynthesizedApp, monkeypatch: pytest.MonkeyPatch) -> None:
        self.resources = app.template["Resources"]
        self.physical_names = {}  # what a Ref to the logical ID resolves to
        for logical_id, resource in self.of_type("AWS::DynamoDB::Table").items():
            self.physical_names[logical_id] = f"table-{logical_id}"
            boto3.client("dynamodb").create_table(
                TableName=f"table-{logical_id}", **{
                    key: resource["Properties"][key]
                    for key in ("KeySchema", "AttributeDefinitions", "BillingMode")})
        for logical_id in self.of_type("AWS::Events::EventBus"):
            self.physical_names[logical_id] = f"bus-{logical_id}"
            boto3.client("events").create_event_bus(Name=f"bus-{logical_id}")
        self.published: deque[dict[str, Any]] = deque()
        self.handlers = {logical_id: self._handler(app, logical_id, function, monkeypatch)
                         for logical_id, function in
                         self.of_type("AWS::Lambda::Function").items()}
        self.invoked: list[str] = []

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.resources.items() if value["Type"] == cfn_type}

    def _handler(self, app: SynthesizedApp, logical_id: str, function: dict[str, Any],
                 monkeypatch: pytest.MonkeyPatch) -> Any:
        """Imports the function's staged code with its declared environment; watches its
        PutEvents calls (they still go to moto)."""
        properties = function["Properties"]
        with monkeypatch.context() as env:
            for name in ("TABLE_NAME", "EVENTBUS_NAME"):
                env.delenv(name, raising=False)
            for name, value in properties["Environment"]["Variables"].items():
                env.setenv(name, self.physical_names[value["Ref"]])
            module_name, handler_name = properties["Handler"].split(".")
            code = app.assembly_dir / function["Metadata"]["aws:asset:path"]
            module = import_path(f"{module_name}_{logical_id}", code / f"{module_name}.py")
        for client in vars(module).values():
            if hasattr(client, "meta") and client.meta.service_model.service_name == "events":
                service_id = client.meta.service_model.service_id.hyphenize()
                client.meta.events.register(f"provide-client-params.{service_id}.PutEvents",
                                            self._watch_put_events)
        return getattr(module, handler_name)

    def _watch_put_events(self, params: dict[str, Any], **_: Any) -> None:
        self.published.extend(params["Entries"])

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        self.invoked.append(logical_id)
        return self.handlers[logical_id](event, None)

    def deliver_published(self) -> None:
        """Hands every published event, and the events those handlers publish, to the
        targets of the rules on its bus that match it."""
        while self.published:
            entry = self.published.popleft()
            event = envelope(entry)
            for rule in self.of_type("AWS::Events::Rule").values():
                bus = self.physical_names[rule["Properties"]["EventBusName"]["Ref"]]
                if bus == entry["EventBusName"] and matches(
                        rule["Properties"]["EventPattern"], event):
                    for target in rule["Properties"]["Targets"]:
                        self.invoke(target["Arn"]["Fn::GetAtt"][0], event)


def test_one_order_ends_with_five_stamps_in_causal_order(
        synthesized_app: SynthesizedApp, mocked_aws: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = Deployment(synthesized_app, monkeypatch)
    [method] = deployment.of_type("AWS::ApiGateway::Method").values()
    [entry_point] = [part["Fn::GetAtt"][0]
                     for part in method["Properties"]["Integration"]["Uri"]["Fn::Join"][1]
                     if isinstance(part, dict) and "Fn::GetAtt" in part]

    answer = deployment.invoke(entry_point, {"httpMethod": "GET", "path": "/order"})
    assert answer["statusCode"] == 200
    order_id = json.loads(answer["body"])["ID"]
    deployment.deliver_published()

    assert sorted(deployment.invoked) == sorted(deployment.handlers)  # each function once
    [table] = deployment.of_type("AWS::DynamoDB::Table")
    items = boto3.client("dynamodb").scan(TableName=deployment.physical_names[table])["Items"]
    [item] = [{key: value["S"] for key, value in item.items()} for item in items]
    assert item.keys() == {"ID", "time_order_service", "time_invoice_service",
                           "time_fulfilment_service", "time_forecasting_service",
                           "time_logistic_service"}
    assert item["ID"] == order_id
    assert (item["time_order_service"] <= item["time_fulfilment_service"]
            <= item["time_logistic_service"])
    assert item["time_order_service"] <= item["time_invoice_service"]
    assert item["time_order_service"] <= item["time_forecasting_service"]

