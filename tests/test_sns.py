"""SNS topics, in-process: the notification shapes against AWS's documented examples, and a
template's topics fanning a message out to their queues and functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.assembly import AssemblyError, Stack
from sandbox.core.delivery import Failure
from sandbox.core.history import DeadLetter
from sandbox.core.state import State
from sandbox.core.targets import Parcel, Targets
from sandbox.lambda_.backend import INVOKE, LambdaService
from sandbox.settings import Settings
from sandbox.sns.backend import Topics
from sandbox.sns.envelopes import Notification, lambda_event, sqs_body
from sandbox.sqs.backend import Queues

REGION = "us-west-2"
ACCOUNT = "000000000000"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:MyTopic"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:"
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Echo"

# AWS's example ("Fanout to Amazon SQS queues"): what a subscribed queue receives.
SQS_EXAMPLE = {
    "Type": "Notification",
    "MessageId": "63a3f6b6-d533-4a47-aef9-fcf5cf758c76",
    "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
    "Subject": "Testing publish to subscribed queues",
    "Message": "Hello world!",
    "Timestamp": "2012-03-29T05:12:16.901Z",
    "SignatureVersion": "1",
    "Signature": "EXAMPLEnTrFPa3...",
    "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-"
                      "f3ecfb7224c7233fe7bb5f59f96de52f.pem",
    "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
                      "arn:aws:sns:us-west-2:123456789012:MyTopic:"
                      "c7fe3a54-ab0e-4ec2-88e0-db410a0f2bee",
}
# AWS's example ("Using Lambda with Amazon SNS"): what a subscribed function is invoked with.
LAMBDA_EXAMPLE_KEYS = ["EventVersion", "EventSubscriptionArn", "EventSource", "Sns"]
LAMBDA_EXAMPLE_SNS_KEYS = ["SignatureVersion", "Timestamp", "Signature", "SigningCertUrl",
                           "MessageId", "Message", "MessageAttributes", "Type",
                           "UnsubscribeUrl", "TopicArn", "Subject"]


def example_notification(**changes: Any) -> Notification:
    fields: dict[str, Any] = {
        "message_id": SQS_EXAMPLE["MessageId"], "topic_arn": SQS_EXAMPLE["TopicArn"],
        "message": SQS_EXAMPLE["Message"], "timestamp": SQS_EXAMPLE["Timestamp"],
        "subject": SQS_EXAMPLE["Subject"], **changes}
    return Notification(**fields)


SUBSCRIPTION = SQS_EXAMPLE["UnsubscribeURL"].rsplit("=", 1)[1]


def test_a_queue_gets_the_notification_as_aws_documents_it() -> None:
    body = json.loads(sqs_body(example_notification(), SUBSCRIPTION))
    assert list(body) == list(SQS_EXAMPLE)
    assert {k: v for k, v in body.items() if k != "Signature"} == {
        k: v for k, v in SQS_EXAMPLE.items() if k != "Signature"}
    assert body["Signature"] != sqs_body(example_notification(message="other"), SUBSCRIPTION)


def test_without_a_subject_the_queue_notification_has_none_and_attributes_are_typed() -> None:
    typed = {"k": {"Type": "String", "Value": "v"}}
    body = json.loads(sqs_body(example_notification(subject=None, attributes=typed),
                               SUBSCRIPTION))
    assert "Subject" not in body
    assert body["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}
    fifo = json.loads(sqs_body(example_notification(sequence_number="1" * 20), SUBSCRIPTION))
    assert list(fifo)[:3] == ["Type", "MessageId", "SequenceNumber"]


def test_a_function_gets_the_sns_event_as_aws_documents_it() -> None:
    typed = {"Test": {"Type": "String", "Value": "TestString"}}
    event = lambda_event(example_notification(attributes=typed), SUBSCRIPTION)
    [record] = event["Records"]
    assert sorted(record) == sorted(LAMBDA_EXAMPLE_KEYS)
    assert (record["EventSource"], record["EventVersion"]) == ("aws:sns", "1.0")
    assert record["EventSubscriptionArn"] == SUBSCRIPTION
    sns = record["Sns"]
    assert sorted(sns) == sorted(LAMBDA_EXAMPLE_SNS_KEYS)
    assert sns["SigningCertUrl"] == SQS_EXAMPLE["SigningCertURL"]
    assert sns["UnsubscribeUrl"] == SQS_EXAMPLE["UnsubscribeURL"]
    assert sns["MessageAttributes"] == {"Test": {"Type": "String", "Value": "TestString"}}
    bare = lambda_event(example_notification(subject=None), SUBSCRIPTION)["Records"][0]["Sns"]
    assert (bare["Subject"], bare["MessageAttributes"]) == (None, {})


def stack_of(tmp_path: Path, resources: dict[str, Any]) -> Stack:
    (tmp_path / "fn").mkdir(parents=True, exist_ok=True)
    return Stack(name="S", region=REGION, directory=tmp_path,
                 template_file=tmp_path / "S.template.json", template={"Resources": resources},
                 endpoint_url="http://127.0.0.1:1", asset_paths={})


def topic(**props: Any) -> dict[str, Any]:
    return {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "MyTopic", **props}}


def subscription(**props: Any) -> dict[str, Any]:
    return {"Type": "AWS::SNS::Subscription", "Properties": {"TopicArn": {"Ref": "Topic"}, **props}}


def queue(name: str, **props: Any) -> dict[str, Any]:
    return {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name, **props}}


ECHO = {"Type": "AWS::Lambda::Function", "Metadata": {"aws:asset:path": "fn"},
        "Properties": {"FunctionName": "Echo", "Runtime": "python3.12",
                       "Handler": "index.handler", "Code": {"S3Key": "fn.zip"},
                       "Role": f"arn:aws:iam::{ACCOUNT}:role/echo"}}


class World:
    def __init__(self, tmp_path: Path, resources: dict[str, Any]) -> None:
        stack = stack_of(tmp_path, resources)
        self.state = State(tmp_path / "sandbox.db")
        self.targets = Targets()
        Queues([stack], self.state, self.targets)
        LambdaService([stack], self.state, self.targets, Settings(), base_env={},
                      on_log=lambda *_: None)
        self.topics = Topics([stack], self.targets)

    def publish(self, message: str, **parcel: Any) -> None:
        self.state.commit(self.targets.deliver(TOPIC, Parcel(message, **parcel)))

    def bodies(self, name: str) -> list[str]:
        return [m.body for m in self.state.messages(QUEUE + name)]


def test_a_topic_fans_out_to_its_queues_and_functions_in_one_step(tmp_path: Path) -> None:
    world = World(tmp_path, {
        "Topic": topic(Subscription=[{"Protocol": "sqs",
                                      "Endpoint": {"Fn::GetAtt": ["Enveloped", "Arn"]}}]),
        "Enveloped": queue("enveloped"), "Raw": queue("raw"), "Echo": ECHO,
        "RawSub": subscription(Protocol="sqs", Endpoint={"Fn::GetAtt": ["Raw", "Arn"]},
                               RawMessageDelivery="true"),
        "FnSub": subscription(Protocol="lambda", Endpoint={"Fn::GetAtt": ["Echo", "Arn"]})})
    writes = world.targets.deliver(TOPIC, Parcel('{"a": 1}', attributes={"k": "v"}))
    assert (len(writes.messages), len(writes.jobs)) == (2, 1)
    world.state.commit(writes)

    [enveloped] = [json.loads(b) for b in world.bodies("enveloped")]
    assert (enveloped["Type"], enveloped["TopicArn"]) == ("Notification", TOPIC)
    assert enveloped["Message"] == '{"a": 1}'
    assert enveloped["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}
    assert enveloped["UnsubscribeURL"].endswith(f"SubscriptionArn={TOPIC}:" +
                                                enveloped["UnsubscribeURL"].rsplit(":", 1)[1])
    [raw] = world.state.messages(QUEUE + "raw")
    assert (raw.body, raw.strings()) == ('{"a": 1}', {"k": "v"})
    [job] = writes.jobs
    assert (job.kind, job.target) == (INVOKE, FN)
    [record] = json.loads(job.payload["body"])["Records"]
    assert record["Sns"]["MessageId"] == enveloped["MessageId"]  # one message, many deliveries
    assert record["EventSubscriptionArn"].startswith(TOPIC + ":")


def test_a_subscription_keeps_its_arn_across_restarts(tmp_path: Path) -> None:
    resources = {"Topic": topic(), "Q": queue("q"),
                 "Sub": subscription(Protocol="sqs", Endpoint={"Fn::GetAtt": ["Q", "Arn"]})}
    arns = [World(tmp_path / str(i), resources).topics.topics[TOPIC].subscriptions[0].arn
            for i in range(2)]
    assert arns[0] == arns[1]


def test_a_subscriber_that_refuses_sends_it_to_the_subscription_dlq_or_says_why(
        tmp_path: Path) -> None:
    world = World(tmp_path, {
        "Topic": topic(), "Dlq": queue("sub-dlq"),
        "Gone": subscription(Protocol="sqs", Endpoint=f"{QUEUE}gone",
                             RedrivePolicy={"deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}}),
        "Lost": subscription(Protocol="lambda", Endpoint=f"{FN}-gone")})
    world.publish("hello")

    [kept] = [json.loads(b) for b in world.bodies("sub-dlq")]
    assert kept["Message"] == "hello"
    letters = [e.record for e in world.state.history() if isinstance(e.record, DeadLetter)]
    assert sorted((d.queue or "", d.source) for d in letters) == [
        ("", "sns"), (f"{QUEUE}sub-dlq", "sns")]
    assert all("names no resource" in d.attributes["ERROR_MESSAGE"] for d in letters)


def test_a_fifo_topic_needs_a_group_and_passes_it_on(tmp_path: Path) -> None:
    world = World(tmp_path, {
        "Topic": topic(TopicName="MyTopic.fifo", FifoTopic=True),
        "Q": queue("q.fifo", FifoQueue=True),
        "Sub": subscription(Protocol="sqs", Endpoint={"Fn::GetAtt": ["Q", "Arn"]})})
    fifo = TOPIC + ".fifo"
    with pytest.raises(Failure) as failure:
        world.targets.deliver(fifo, Parcel("m"))
    assert failure.value.code == "InvalidParameterException" and not failure.value.retryable
    world.state.commit(world.targets.deliver(fifo, Parcel("m", group_id="g")))
    [message] = world.state.messages(QUEUE + "q.fifo")
    assert message.group_id == "g"
    assert "SequenceNumber" in json.loads(message.body)


@pytest.mark.parametrize(("resources", "where"), [
    ({"Topic": topic(), "Sub": subscription(Protocol="carrier-pigeon", Endpoint="x")},
     "Resources.Sub.Properties.Protocol"),
    ({"Topic": topic(Subscription=[{"Protocol": "lambda", "Endpoint": FN}]), "Echo": ECHO,
      "Sub": subscription(Protocol="lambda", Endpoint=FN, RawMessageDelivery=True)},
     "Resources.Sub.Properties.RawMessageDelivery"),
    ({"Topic": topic(TopicName="T.fifo", FifoTopic="true",
                     Subscription=[{"Protocol": "lambda", "Endpoint": FN}])},
     "Resources.Topic.Properties.Subscription[0].Protocol"),
])
def test_what_sns_refuses_at_subscription_time_stops_the_start(
        tmp_path: Path, resources: dict[str, Any], where: str) -> None:
    with pytest.raises(AssemblyError) as error:
        World(tmp_path, resources)
    assert str(error.value).startswith(f"{tmp_path / 'S.template.json'}: {where}: ")
    assert "\n" not in str(error.value)


def test_what_is_not_delivered_as_on_aws_is_named_at_start(tmp_path: Path) -> None:
    world = World(tmp_path, {
        "Topic": topic(), "Q": queue("q"),
        "Mail": subscription(Protocol="email", Endpoint="ops@example.com"),
        "Elsewhere": subscription(TopicArn=f"{TOPIC}-elsewhere", Protocol="sqs",
                                  Endpoint={"Fn::GetAtt": ["Q", "Arn"]})})
    assert sorted(world.topics.notes) == [
        "S/Elsewhere: topic " + TOPIC + "-elsewhere is not in the assembly",
        "S/Mail: email subscription not delivered"]


def test_a_subscription_gets_only_what_its_filter_policy_matches(tmp_path: Path) -> None:
    world = World(tmp_path, {
        "Topic": topic(), "Big": queue("big"), "Body": queue("body"),
        "BigSub": subscription(Protocol="sqs", Endpoint={"Fn::GetAtt": ["Big", "Arn"]},
                               FilterPolicy={"kind": ["big"]}),
        "BodySub": subscription(Protocol="sqs", Endpoint={"Fn::GetAtt": ["Body", "Arn"]},
                                FilterPolicyScope="MessageBody",
                                FilterPolicy='{"order": {"total": [{"numeric": [">", 100]}]}}')})
    world.publish('{"order": {"total": 250}}', attributes={"kind": "small"})
    world.publish('{"order": {"total": 50}}', attributes={"kind": "big"})
    assert [json.loads(b)["Message"] for b in world.bodies("big")] == ['{"order": {"total": 50}}']
    assert [json.loads(b)["Message"] for b in world.bodies("body")] == [
        '{"order": {"total": 250}}']


@pytest.mark.parametrize(("props", "where", "message"), [
    ({"FilterPolicy": {"kind": [{"numeric": [">="]}]}}, "FilterPolicy",
     "Invalid parameter: FilterPolicy: Value of >= must be numeric"),
    ({"FilterPolicy": {"order": {"kind": ["big"]}}}, "FilterPolicy",
     "Invalid parameter: Filter policy scope MessageAttributes does not support nested filter "
     "policy"),
    ({"FilterPolicy": {"kind": ["big"]}, "FilterPolicyScope": "Body"}, "FilterPolicyScope",
     "Invalid parameter: FilterPolicyScope: Invalid value [Body]. Please use either MessageBody "
     "or MessageAttributes"),
])
def test_a_malformed_filter_policy_stops_the_start_naming_the_subscription(
        tmp_path: Path, props: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(AssemblyError) as error:
        World(tmp_path, {"Topic": topic(), "Q": queue("q"),
                         "Sub": subscription(Protocol="sqs",
                                             Endpoint={"Fn::GetAtt": ["Q", "Arn"]}, **props)})
    assert str(error.value) == (f"{tmp_path / 'S.template.json'}: Resources.Sub.Properties."
                                f"{where}: {message}")
