"""Lambda's asynchronous routes and SNS topics end to end in the breadth stack
(tests/breadth/destinations.py): one event put with boto3 sets off every route, and each
receiver gets the record, notification or event in the shape AWS documents."""
# ruff: noqa: F811  (pytest fixtures imported from breadth_sandbox are parameters here)

import json
from typing import Any

import pytest
from breadth_sandbox import breadth, queue_messages, received, wait_received  # noqa: F401
from sandbox_process import SandboxProcess, wait_for

pytestmark = pytest.mark.slow

FAILS_MESSAGE = "breadth destinations: always fails"
ARN = "arn:aws:{service}:us-east-1:000000000000:"


@pytest.fixture(scope="module")
def event(breadth: SandboxProcess) -> dict[str, Any]:
    """The event put on the part's bus, as the rule's targets receive it."""
    client = breadth.client("events")
    (bus,) = [b["Name"] for b in client.list_event_buses()["EventBuses"]
              if "DestinationsBus" in b["Name"]]
    answer = client.put_events(Entries=[{"EventBusName": bus,
                                         "Source": "breadth.destinations",
                                         "DetailType": "job started",
                                         "Detail": json.dumps({"job": "j-7"})}])
    assert answer["FailedEntryCount"] == 0
    return {"id": answer["Entries"][0]["EventId"], "detail-type": "job started",
            "source": "breadth.destinations", "detail": {"job": "j-7"}}


def one_message(sandbox: SandboxProcess, queue: str) -> dict[str, Any]:
    (message,) = wait_for(lambda: queue_messages(sandbox, queue), 60, f"a message in {queue}")
    return message


def is_event(payload: dict[str, Any], event: dict[str, Any]) -> bool:
    return {key: payload.get(key) for key in event} == event


def check_failure_record(record: dict[str, Any], function: str, event: dict[str, Any],
                         invocations: int) -> None:
    assert set(record) == {"version", "timestamp", "requestContext", "requestPayload",
                           "responseContext", "responsePayload"}
    context = record["requestContext"]
    assert context["functionArn"].startswith(ARN.format(service="lambda") + "function:Breadth-"
                                             + function)
    assert context["functionArn"].endswith(":$LATEST")
    assert (context["condition"], context["approximateInvokeCount"]) == ("RetriesExhausted",
                                                                         invocations)
    assert is_event(record["requestPayload"], event)
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                         "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == FAILS_MESSAGE


def test_a_success_reaches_the_bus_as_a_lambda_event_with_the_record_as_detail(
        breadth: SandboxProcess, event: dict[str, Any]) -> None:
    got = wait_received(breadth, "DestinationsResultEcho",
                        lambda e: is_event(e["detail"]["requestPayload"], event))
    assert set(got) == {"version", "id", "detail-type", "source", "account", "time", "region",
                        "resources", "detail"}
    assert (got["source"], got["detail-type"]) == ("lambda",
                                                   "Lambda Function Invocation Result - Success")
    bus, function = got["resources"]
    assert bus.startswith(ARN.format(service="events") + "event-bus/BreadthDestinationsResults")
    assert function == got["detail"]["requestContext"]["functionArn"]
    assert "DestinationsSucceeds" in function and function.endswith(":$LATEST")
    detail = got["detail"]
    assert detail["requestContext"]["condition"] == "Success"
    assert detail["requestContext"]["approximateInvokeCount"] == 1
    assert detail["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert detail["responsePayload"] == {"handled": {"job": "j-7"}}


def test_a_failure_reaches_the_topic_whose_queue_gets_the_notification(
        breadth: SandboxProcess, event: dict[str, Any]) -> None:
    message = one_message(breadth, "DestinationsTopicQueue")
    notification = json.loads(message["body"])
    assert list(notification) == ["Type", "MessageId", "TopicArn", "Message", "Timestamp",
                                  "SignatureVersion", "Signature", "SigningCertURL",
                                  "UnsubscribeURL"]
    assert notification["Type"] == "Notification"
    assert notification["TopicArn"].startswith(ARN.format(service="sns")
                                                + "Breadth-DestinationsFailures")
    assert notification["UnsubscribeURL"].startswith(
        "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
        + notification["TopicArn"] + ":")
    check_failure_record(json.loads(notification["Message"]), "DestinationsFails", event, 2)


def test_a_failure_reaches_the_topic_whose_function_gets_the_sns_event(
        breadth: SandboxProcess, event: dict[str, Any]) -> None:
    got = wait_received(breadth, "DestinationsTopicEcho")
    (record,) = got["Records"]
    assert (record["EventSource"], record["EventVersion"]) == ("aws:sns", "1.0")
    sns = record["Sns"]
    assert record["EventSubscriptionArn"].startswith(sns["TopicArn"] + ":")
    assert (sns["Type"], sns["Subject"], sns["MessageAttributes"]) == ("Notification", None, {})
    check_failure_record(json.loads(sns["Message"]), "DestinationsFails", event, 2)
    queued = json.loads(one_message(breadth, "DestinationsTopicQueue")["body"])
    assert sns["MessageId"] == queued["MessageId"]  # one notification, fanned out


def test_a_failure_puts_the_event_in_the_dead_letter_queue_with_lambdas_attributes(
        breadth: SandboxProcess, event: dict[str, Any]) -> None:
    message = one_message(breadth, "DestinationsDeadLetters")
    assert is_event(json.loads(message["body"]), event)
    record = json.loads(json.loads(
        one_message(breadth, "DestinationsTopicQueue")["body"])["Message"])
    assert message["attributes"] == {"RequestID": record["requestContext"]["requestId"],
                                     "ErrorCode": "200", "ErrorMessage": FAILS_MESSAGE}


def test_a_failure_reaches_a_function_destination_as_the_record(
        breadth: SandboxProcess, event: dict[str, Any]) -> None:
    got = wait_received(breadth, "DestinationsFailureEcho")
    check_failure_record(got, "DestinationsFailsToLambda", event, 1)


def test_zero_reserved_concurrency_sends_the_event_on_failure_without_running(
        breadth: SandboxProcess, event: dict[str, Any]) -> None:
    record = json.loads(one_message(breadth, "DestinationsZeroQueue")["body"])
    assert set(record) == {"version", "timestamp", "requestContext", "requestPayload"}
    assert record["requestContext"]["condition"] == "ZeroReservedConcurrency"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert is_event(record["requestPayload"], event)
    assert not any("[DestinationsThrottled] START" in line for line in list(breadth.lines))


def test_a_topic_as_rule_target_delivers_the_event_raw_to_its_queue(
        breadth: SandboxProcess, event: dict[str, Any]) -> None:
    message = one_message(breadth, "DestinationsRawQueue")
    assert is_event(json.loads(message["body"]), event)
    assert message["attributes"] == {}
