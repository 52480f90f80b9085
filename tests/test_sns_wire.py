"""SNS's API in the query protocol, in-process: form-encoded calls as boto3 sends them, XML
answers and errors as SNS gives them, and what each subscriber gets."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from test_sns import ECHO, QUEUE, TOPIC, World, queue, subscription, topic

from sandbox.core import query
from sandbox.sns.wire import NAMESPACE, SnsWire

NS = {"sns": NAMESPACE}


class Api:
    def __init__(self, tmp_path: Path, resources: dict[str, Any]) -> None:
        self.world = World(tmp_path, resources)
        self.handed: list[list[int]] = []  # the ids each commit hands to the job runner
        self.world.state.on_jobs.append(lambda due, _later: self.handed.append(due))
        self.wire = SnsWire(self.world.topics, self.world.state)

    def call(self, action: str, **params: str) -> tuple[int, ET.Element]:
        body = urlencode({"Action": action, "Version": "2010-03-31", **params}).encode()
        form = query.form("POST", "/", {"content-type": query.FORM + "; charset=utf-8"}, body)
        assert form is not None
        status, headers, data = query.dispatch([self.wire], form)
        assert dict(headers)["Content-Type"] == "text/xml"
        return status, ET.fromstring(data)

    def ok(self, action: str, **params: str) -> ET.Element:
        status, root = self.call(action, **params)
        assert status == 200, ET.tostring(root)
        assert root.tag == f"{{{NAMESPACE}}}{action}Response"
        assert root.find("sns:ResponseMetadata/sns:RequestId", NS) is not None
        result = root.find(f"sns:{action}Result", NS)
        assert result is not None
        return result

    def error(self, action: str, **params: str) -> tuple[int, str, str]:
        status, root = self.call(action, **params)
        error = root.find("sns:Error", NS)
        assert root.tag == f"{{{NAMESPACE}}}ErrorResponse" and error is not None
        assert error.findtext("sns:Type", namespaces=NS) == "Sender"
        return (status, error.findtext("sns:Code", namespaces=NS) or "",
                error.findtext("sns:Message", namespaces=NS) or "")


def attributes(*entries: tuple[str, str, str], prefix: str = "") -> dict[str, str]:
    """MessageAttributes flattened as boto3 sends them."""
    params = {}
    for n, (name, kind, value) in enumerate(entries, start=1):
        key = f"{prefix}MessageAttributes.entry.{n}"
        params[f"{key}.Name"] = name
        params[f"{key}.Value.DataType"] = kind
        field = "BinaryValue" if kind.startswith("Binary") else "StringValue"
        params[f"{key}.Value.{field}"] = value
    return params


FANOUT = {
    "Topic": topic(), "Raw": queue("raw"), "Enveloped": queue("enveloped"), "Echo": ECHO,
    "RawSub": subscription(Protocol="sqs", Endpoint={"Fn::GetAtt": ["Raw", "Arn"]},
                           RawMessageDelivery="true",
                           FilterPolicy={"price": [{"numeric": [">", 100]}]}),
    "EnvSub": subscription(Protocol="sqs", Endpoint={"Fn::GetAtt": ["Enveloped", "Arn"]}),
    "FnSub": subscription(Protocol="lambda", Endpoint={"Fn::GetAtt": ["Echo", "Arn"]}),
}


def test_publish_fans_out_with_typed_attributes_and_answers_the_message_id(
        tmp_path: Path) -> None:
    api = Api(tmp_path, FANOUT)
    blob = base64.b64encode(b"\x01\x02").decode()
    result = api.ok("Publish", TopicArn=TOPIC, Message="hello", Subject="Greeting",
                    **attributes(("price", "Number", "150"), ("tags", "String.Array", '["a"]'),
                                 ("blob", "Binary", blob)))
    message_id = result.findtext("sns:MessageId", namespaces=NS)
    assert message_id and result.find("sns:SequenceNumber", NS) is None

    [enveloped] = [json.loads(b) for b in api.world.bodies("enveloped")]
    assert (enveloped["MessageId"], enveloped["Message"], enveloped["Subject"]) == (
        message_id, "hello", "Greeting")
    assert enveloped["MessageAttributes"] == {
        "price": {"Type": "Number", "Value": "150"},
        "tags": {"Type": "String.Array", "Value": '["a"]'},
        "blob": {"Type": "Binary", "Value": blob}}
    [raw] = api.world.state.messages(QUEUE + "raw")
    assert raw.body == "hello" and raw.strings()["price"] == "150"
    [job] = api.world.state.due_jobs(float("inf"), set(), 10)
    sns = json.loads(job.payload["body"])["Records"][0]["Sns"]
    assert (sns["MessageId"], sns["Subject"]) == (message_id, "Greeting")
    assert sns["MessageAttributes"]["price"] == {"Type": "Number", "Value": "150"}
    assert api.handed == [[job.id]]  # the runner starts it at once


def test_a_filter_policy_keeps_what_it_does_not_match_from_its_subscriber(
        tmp_path: Path) -> None:
    api = Api(tmp_path, FANOUT)
    api.ok("Publish", TopicArn=TOPIC, Message="cheap", **attributes(("price", "Number", "5")))
    api.ok("Publish", TopicArn=TOPIC, Message="plain")
    assert api.world.bodies("raw") == []
    assert len(api.world.bodies("enveloped")) == 2


def test_message_structure_json_sends_each_protocol_its_own_message(tmp_path: Path) -> None:
    api = Api(tmp_path, FANOUT)
    api.ok("Publish", TopicArn=TOPIC, MessageStructure="json",
           Message=json.dumps({"default": "for all", "sqs": "for queues"}))
    [enveloped] = [json.loads(b) for b in api.world.bodies("enveloped")]
    assert enveloped["Message"] == "for queues"
    [job] = api.world.state.due_jobs(float("inf"), set(), 10)
    assert json.loads(job.payload["body"])["Records"][0]["Sns"]["Message"] == "for all"
    assert api.error("Publish", TopicArn=TOPIC, MessageStructure="json",
                     Message='{"sqs": "x"}') == (
        400, "InvalidParameter",
        "Invalid parameter: Message Structure - No default entry in JSON message body")
    assert api.error("Publish", TopicArn=TOPIC, MessageStructure="json", Message="[") == (
        400, "InvalidParameter",
        "Invalid parameter: Message Structure - JSON message body failed to parse")


@pytest.mark.parametrize(("params", "expected"), [
    ({"TopicArn": TOPIC + "-gone", "Message": "m"}, (404, "NotFound", "Topic does not exist")),
    ({"TopicArn": TOPIC, "Message": "x" * 262_145},
     (400, "InvalidParameter", "Invalid parameter: Message too long")),
    ({"TopicArn": TOPIC, "Message": "x" * 262_140, **attributes(("k", "String", "vv"))},
     (400, "InvalidParameter", "Invalid parameter: Message too long")),
    ({"TopicArn": TOPIC, "Message": ""}, (400, "InvalidParameter",
                                          "Invalid parameter: Empty message")),
    ({"TopicArn": TOPIC, "Message": "m", **attributes(("k", "Date", "x"))},
     (400, "ParameterValueInvalid", "The message attribute 'k' has an invalid message attribute "
      "type, the set of supported type prefixes is Binary, Number, and String.")),
    ({"TopicArn": TOPIC, "Message": "m", **attributes(("k", "Number", "ten"))},
     (400, "ParameterValueInvalid", "Could not cast message attribute 'k' value to number.")),
    ({"TopicArn": TOPIC, "Message": "m", **attributes(("k", "String", ""))},
     (400, "ParameterValueInvalid", "The message attribute 'k' must contain non-empty message "
      "attribute value for message attribute type 'String'.")),
    ({"TopicArn": TOPIC, "Message": "m", **attributes(("a b", "String", "v"))},
     (400, "ParameterValueInvalid", "Invalid non-alphanumeric character '#x20' was found in the "
      "message attribute name. Can only include alphanumeric characters, hyphens, "
      "underscores, or dots.")),
    ({"TopicArn": TOPIC, "Message": "m", "MessageDeduplicationId": "d"},
     (400, "InvalidParameter", "Invalid parameter: MessageDeduplicationId Reason: The request "
      "includes MessageDeduplicationId parameter that is not valid for this topic type")),
])
def test_bad_input_gets_sns_answer(tmp_path: Path, params: dict[str, str],
                                   expected: tuple[int, str, str]) -> None:
    api = Api(tmp_path, FANOUT)
    assert api.error("Publish", **params) == expected
    assert api.world.bodies("enveloped") == []


def batch(*entries: dict[str, str]) -> dict[str, str]:
    params = {}
    for n, entry in enumerate(entries, start=1):
        params |= {f"PublishBatchRequestEntries.member.{n}.{k}": v for k, v in entry.items()}
    return params


def test_publish_batch_answers_each_entry(tmp_path: Path) -> None:
    api = Api(tmp_path, FANOUT)
    result = api.ok("PublishBatch", TopicArn=TOPIC, **batch(
        {"Id": "one", "Message": "first",
         **attributes(("price", "Number", "500"), prefix="")},
        {"Id": "two", "Message": ""},
        {"Id": "three", "Message": "third"}))
    ok = [m.findtext("sns:Id", namespaces=NS)
          for m in result.findall("sns:Successful/sns:member", NS)]
    assert ok == ["one", "three"]
    [failed] = result.findall("sns:Failed/sns:member", NS)
    assert [failed.findtext(f"sns:{k}", namespaces=NS) for k in
            ("Id", "Code", "Message", "SenderFault")] == [
        "two", "InvalidParameter", "Invalid parameter: Empty message", "true"]
    assert [json.loads(b)["Message"] for b in api.world.bodies("enveloped")] == [
        "first", "third"]
    assert api.world.bodies("raw") == ["first"]


@pytest.mark.parametrize(("entries", "expected"), [
    ([], ("EmptyBatchRequest", "The batch request doesn't contain any entries.")),
    ([{"Id": f"m{i}", "Message": "m"} for i in range(11)],
     ("TooManyEntriesInBatchRequest",
      "The batch request contains more entries than permissible.")),
    ([{"Id": "same", "Message": "a"}, {"Id": "same", "Message": "b"}],
     ("BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id.")),
    ([{"Id": "bad id!", "Message": "a"}],
     ("InvalidBatchEntryId", "The Id of a batch entry in a batch request doesn't abide by the "
                             "specification.")),
    ([{"Id": "a", "Message": "x" * 200_000}, {"Id": "b", "Message": "x" * 100_000}],
     ("BatchRequestTooLong", "The length of all the messages put together is more than the "
                             "limit.")),
])
def test_a_bad_batch_is_refused_whole(tmp_path: Path, entries: list[dict[str, str]],
                                      expected: tuple[str, str]) -> None:
    api = Api(tmp_path, FANOUT)
    assert api.error("PublishBatch", TopicArn=TOPIC, **batch(*entries)) == (400, *expected)
    assert api.world.bodies("enveloped") == []


FIFO = {
    "Topic": topic(TopicName="MyTopic.fifo", FifoTopic=True, ContentBasedDeduplication=True),
    "Q": queue("q.fifo", FifoQueue=True),
    "Sub": subscription(Protocol="sqs", Endpoint={"Fn::GetAtt": ["Q", "Arn"]},
                        RawMessageDelivery=True)}


def test_a_fifo_topic_needs_a_group_deduplicates_and_passes_the_group_on(
        tmp_path: Path) -> None:
    api = Api(tmp_path, FIFO)
    fifo = TOPIC + ".fifo"
    assert api.error("Publish", TopicArn=fifo, Message="m") == (
        400, "InvalidParameter",
        "Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
    first = api.ok("Publish", TopicArn=fifo, Message="m", MessageGroupId="g")
    again = api.ok("Publish", TopicArn=fifo, Message="m", MessageGroupId="g")
    assert first.findtext("sns:MessageId", namespaces=NS) == again.findtext(
        "sns:MessageId", namespaces=NS)
    assert len(first.findtext("sns:SequenceNumber", namespaces=NS) or "") == 20
    api.ok("Publish", TopicArn=fifo, Message="m", MessageGroupId="g",
           MessageDeduplicationId="other")
    messages = api.world.state.messages(QUEUE + "q.fifo")
    assert [(m.body, m.group_id) for m in messages] == [("m", "g"), ("m", "g")]


def test_a_fifo_topic_without_content_deduplication_needs_an_id(tmp_path: Path) -> None:
    resources = dict(FIFO, Topic=topic(TopicName="MyTopic.fifo", FifoTopic=True))
    api = Api(tmp_path, resources)
    assert api.error("Publish", TopicArn=TOPIC + ".fifo", Message="m", MessageGroupId="g") == (
        400, "InvalidParameter", "Invalid parameter: The topic should either have "
        "ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")


def test_topics_and_subscriptions_are_listed_and_described(tmp_path: Path) -> None:
    api = Api(tmp_path, FANOUT)
    topics = api.ok("ListTopics").findall("sns:Topics/sns:member/sns:TopicArn", NS)
    assert [t.text for t in topics] == [TOPIC]
    subscriptions = api.ok("ListSubscriptionsByTopic", TopicArn=TOPIC).findall(
        "sns:Subscriptions/sns:member", NS)
    assert sorted(s.findtext("sns:Protocol", namespaces=NS) or "" for s in subscriptions) == [
        "lambda", "sqs", "sqs"]
    assert len(api.ok("ListSubscriptions").findall("sns:Subscriptions/sns:member", NS)) == 3

    def entries(result: ET.Element) -> dict[str, str]:
        return {e.findtext("sns:key", namespaces=NS) or "": e.findtext("sns:value", namespaces=NS)
                or "" for e in result.findall("sns:Attributes/sns:entry", NS)}

    described = entries(api.ok("GetTopicAttributes", TopicArn=TOPIC))
    assert (described["TopicArn"], described["SubscriptionsConfirmed"]) == (TOPIC, "3")
    raw = api.world.topics.topics[TOPIC].subscriptions[0]
    sub = entries(api.ok("GetSubscriptionAttributes", SubscriptionArn=raw.arn))
    assert (sub["RawMessageDelivery"], sub["FilterPolicyScope"]) == ("true", "MessageAttributes")
    assert json.loads(sub["FilterPolicy"]) == {"price": [{"numeric": [">", 100]}]}
    assert api.error("GetSubscriptionAttributes", SubscriptionArn=TOPIC + ":nope") == (
        404, "NotFound", "Subscription does not exist")
    assert api.error("GetTopicAttributes", TopicArn=TOPIC + "-gone")[:2] == (404, "NotFound")


def test_actions_are_dispatched_to_the_query_service_that_owns_them(tmp_path: Path) -> None:
    api = Api(tmp_path, FANOUT)
    assert api.error("CreateTopic", Name="t") == (
        400, "InvalidAction", "The sandbox serves the template's topics and does not emulate "
                              "SNS CreateTopic.")
    status, _, data = query.dispatch([api.wire], {"Action": "AssumeRole"})
    root = ET.fromstring(data)
    assert (status, root.findtext("Error/Code"), root.findtext("Error/Message")) == (
        400, "InvalidAction", "The action AssumeRole is not valid for this web service.")
    # A form posted to a REST API (under its stage) or without an Action is not a query call.
    form = {"content-type": query.FORM}
    assert query.form("POST", "/prod/form", form, b"Action=Publish") is None
    assert query.form("POST", "/", form, b"name=x") is None
    assert query.form("GET", "/", form, b"Action=Publish") is None
