"""Each service's handler against moto's in-process AWS: what it records, publishes, answers.

Each test imports the service afresh, inside the mock and with its environment set, because
the services create their clients at import (as they do in Lambda).
"""

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from conftest import ROOT, import_path

TABLE_NAME = "orders"
EVENTBUS_NAME = "orders-bus"
CONSUMERS = {  # folder: the attribute it stamps
    "invoice-service": "time_invoice_service",
    "fulfilment-service": "time_fulfilment_service",
    "forecasting-service": "time_forecasting_service",
    "logistic-service": "time_logistic_service",
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
METADATA = {"service": "demo-eventbridge"}


def iso_now(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Aws:
    """The mocked account: the order table, the order bus and a queue catching what the
    services publish on it."""

    dynamodb: Any
    sqs: Any
    published_queue_url: str

    def items(self) -> list[dict[str, str]]:
        scanned = self.dynamodb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
        return [{key: value["S"] for key, value in item.items()} for item in scanned]

    def published(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.published_queue_url,
                                            MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]


@pytest.fixture
def aws(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Aws:
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    monkeypatch.setenv("EVENTBUS_NAME", EVENTBUS_NAME)
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=TABLE_NAME, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "ID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "ID", "AttributeType": "S"}])
    events = boto3.client("events")
    events.create_event_bus(Name=EVENTBUS_NAME)
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="published")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="everything", EventBusName=EVENTBUS_NAME, EventPattern=json.dumps(
        {"source": ["order_service", "fulfilment_service"]}))
    events.put_targets(Rule="everything", EventBusName=EVENTBUS_NAME,
                       Targets=[{"Id": "published", "Arn": queue_arn}])
    return Aws(dynamodb=dynamodb, sqs=sqs, published_queue_url=queue_url)


def load(folder: str) -> ModuleType:
    """The service's app.py, imported now (call it inside the mock, after the environment)."""
    name = f"{folder.replace('-', '_')}_{uuid.uuid4().hex}"
    return import_path(name, ROOT / "lambda-functions" / folder / "app.py")


def delivered(detail: Any, detail_type: str = "order_created",
              source: str = "order_service") -> dict[str, Any]:
    """An event as EventBridge hands it to a Lambda target."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type,
            "source": source, "account": "123456789012", "time": "2026-11-24T14:27:32Z",
            "region": "us-east-1", "resources": [], "detail": detail}


def log_lines(output: str) -> list[dict[str, Any]]:
    """stdout as the services write it: one JSON object a line, nothing else."""
    return [json.loads(line) for line in output.splitlines()]


# --- order-service --------------------------------------------------------------------------

def test_order_service_records_the_order_publishes_it_and_answers_order_created(
        aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    service = load("order-service")
    before = iso_now()
    response = service.lambda_handler({"httpMethod": "GET", "path": "/order"}, None)
    after = iso_now()

    order_id = json.loads(response["body"])["ID"]
    assert uuid.UUID(order_id).version == 4
    assert response["statusCode"] == 200
    assert response["headers"] == {"Content-Type": "application/json"}
    assert response["body"] == json.dumps({"status": "order_created", "ID": order_id})
    [item] = aws.items()
    assert item.keys() == {"ID", "time_order_service"}
    assert item["ID"] == order_id
    assert TIMESTAMP.match(item["time_order_service"])
    assert before <= item["time_order_service"] <= after
    [event] = aws.published()
    assert (event["source"], event["detail-type"]) == ("order_service", "order_created")
    assert event["detail"] == {"metadata": METADATA, "data": {"ID": order_id}}
    assert [line["ID"] for line in log_lines(capsys.readouterr().out)] == [order_id]


def test_order_service_makes_a_new_id_for_every_order(aws: Aws) -> None:
    service = load("order-service")
    answers = [json.loads(service.lambda_handler({}, None)["body"]) for _ in range(3)]
    assert len({answer["ID"] for answer in answers}) == 3
    assert len(aws.items()) == 3


def test_order_service_answers_500_when_the_bus_rejects_the_event(
        aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    service = load("order-service")
    with Stubber(service.events) as bus:
        bus.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]})
        response = service.lambda_handler({}, None)
    assert response["statusCode"] == 500
    assert response["headers"] == {"Content-Type": "application/json"}
    assert response["body"] == json.dumps({"status": "order_creation_failed"})
    [line] = log_lines(capsys.readouterr().out)
    assert line["level"] == "ERROR"
    assert "InternalFailure" in line["error"]


def test_order_service_answers_500_when_the_bus_call_fails(aws: Aws) -> None:
    service = load("order-service")
    with Stubber(service.events) as bus:
        bus.add_client_error("put_events", service_error_code="AccessDeniedException")
        response = service.lambda_handler({}, None)
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"status": "order_creation_failed"}


def test_order_service_answers_500_and_publishes_nothing_when_the_table_write_fails(
        aws: Aws) -> None:
    service = load("order-service")
    aws.dynamodb.delete_table(TableName=TABLE_NAME)
    response = service.lambda_handler({}, None)
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"status": "order_creation_failed"}
    assert aws.published() == []


# --- the four consumers ---------------------------------------------------------------------

@pytest.mark.parametrize(("folder", "stamp"), CONSUMERS.items())
def test_consumer_stamps_its_step_on_the_order(
        aws: Aws, capsys: pytest.CaptureFixture[str], folder: str, stamp: str) -> None:
    service = load(folder)
    before = iso_now()
    service.lambda_handler(delivered({"metadata": METADATA, "data": {"ID": "order-1"}}), None)
    after = iso_now()
    [item] = aws.items()
    assert item.keys() == {"ID", stamp}
    assert item["ID"] == "order-1"
    assert TIMESTAMP.match(item[stamp])
    assert before <= item[stamp] <= after
    assert {line["ID"] for line in log_lines(capsys.readouterr().out)} == {"order-1"}


@pytest.mark.parametrize(("folder", "stamp"), CONSUMERS.items())
def test_a_redelivered_event_keeps_the_first_stamp(
        aws: Aws, folder: str, stamp: str) -> None:
    first = iso_now(-timedelta(minutes=1))
    aws.dynamodb.put_item(TableName=TABLE_NAME,
                          Item={"ID": {"S": "order-1"}, stamp: {"S": first}})
    service = load(folder)
    event = delivered({"metadata": METADATA, "data": {"ID": "order-1"}})
    service.lambda_handler(event, None)
    service.lambda_handler(event, None)
    assert aws.items() == [{"ID": "order-1", stamp: first}]


BAD_EVENTS = {
    "no detail": ({"id": "e1"}, "'detail'"),
    "detail not an object": (delivered("order-1"), "'detail'"),
    "no data": (delivered({"metadata": METADATA}), "'detail.data'"),
    "data not an object": (delivered({"data": ["order-1"]}), "'detail.data'"),
    "no ID": (delivered({"data": {}}), "detail.data.ID"),
    "empty ID": (delivered({"data": {"ID": ""}}), "detail.data.ID"),
    "ID not a string": (delivered({"data": {"ID": 42}}), "detail.data.ID"),
    "not an object": (["order-1"], "'detail'"),
}


@pytest.mark.parametrize("folder", CONSUMERS)
@pytest.mark.parametrize(("event", "named"), BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_a_bad_event_raises_an_error_naming_what_is_missing_and_writes_nothing(
        aws: Aws, folder: str, event: Any, named: str) -> None:
    service = load(folder)
    with pytest.raises(ValueError, match=re.escape(named)) as raised:
        service.lambda_handler(event, None)
    assert "detail.data.ID" in str(raised.value)
    assert aws.items() == []
    assert aws.published() == []


# --- fulfilment-service's re-publish --------------------------------------------------------

def test_fulfilment_publishes_fulfilment_completed_with_what_it_received(aws: Aws) -> None:
    service = load("fulfilment-service")
    detail = {"metadata": METADATA, "data": {"ID": "order-1"}}
    service.lambda_handler(delivered(detail), None)
    [event] = aws.published()
    assert (event["source"], event["detail-type"]) == ("fulfilment_service",
                                                       "fulfilment_completed")
    assert event["detail"] == detail


def test_fulfilment_raises_when_the_bus_rejects_its_event(aws: Aws) -> None:
    service = load("fulfilment-service")
    with Stubber(service.events) as bus, pytest.raises(RuntimeError, match="InternalFailure"):
        bus.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]})
        service.lambda_handler(delivered({"metadata": METADATA, "data": {"ID": "o-1"}}), None)


def test_fulfilment_raises_when_the_bus_call_fails(aws: Aws) -> None:
    service = load("fulfilment-service")
    with Stubber(service.events) as bus, pytest.raises(ClientError, match="AccessDenied"):
        bus.add_client_error("put_events", service_error_code="AccessDeniedException")
        service.lambda_handler(delivered({"metadata": METADATA, "data": {"ID": "o-1"}}), None)
