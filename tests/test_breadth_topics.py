"""SNS end to end through boto3's `sns` client: a publish fans out to each subscriber whose
filter policy it matches (raw and enveloped queues, a function), a FIFO topic delivers once per
deduplication id to its FIFO queue under the group, and bad input gets SNS's answer: at
publish time through boto3, and at start for a malformed filter policy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from breadth_sandbox import breadth, received, wait_received  # noqa: F401
from sandbox_process import ROOT, SandboxProcess, free_port, wait_for

pytestmark = pytest.mark.slow


def topic_arn(sandbox: SandboxProcess, part: str) -> str:
    (arn,) = [t["TopicArn"] for t in sandbox.client("sns").list_topics()["Topics"]
              if part in t["TopicArn"].rsplit(":", 1)[-1]]
    return arn


def queue_url(sandbox: SandboxProcess, part: str) -> str:
    (url,) = [u for u in sandbox.client("sqs").list_queues()["QueueUrls"]
              if part in u.rsplit("/", 1)[-1]]
    return url


def drain(sandbox: SandboxProcess, part: str, count: int) -> list[dict[str, Any]]:
    """The first `count` messages of the queue, received and deleted."""
    sqs = sandbox.client("sqs")
    url = queue_url(sandbox, part)
    got: list[dict[str, Any]] = []

    def more() -> bool:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    MessageAttributeNames=["All"],
                                    MessageSystemAttributeNames=["All"]).get("Messages", [])
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        got.extend(batch)
        return len(got) >= count

    wait_for(more, 60, f"{count} messages in {part}")
    return got


def test_a_publish_reaches_each_subscriber_whose_filter_it_matches(
        breadth: SandboxProcess) -> None:  # noqa: F811
    sns = breadth.client("sns")
    arn = topic_arn(breadth, "TopicsTopic")
    big = sns.publish(TopicArn=arn, Subject="order", Message=json.dumps({"order": {"total": 250}}),
                      MessageAttributes={"kind": {"DataType": "String", "StringValue": "big"},
                                         "units": {"DataType": "Number", "StringValue": "3"}})
    sns.publish(TopicArn=arn, Message=json.dumps({"order": {"total": 50}}),
                MessageAttributes={"kind": {"DataType": "String", "StringValue": "small"}})
    batch = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": "late", "Message": json.dumps({"order": {"total": 101}})},
        {"Id": "empty", "Message": ""}])
    assert [e["Id"] for e in batch["Successful"]] == ["late"]
    assert [(e["Id"], e["Code"]) for e in batch["Failed"]] == [("empty", "InvalidParameter")]

    # The function has no filter: it gets all three, each as AWS's SNS event.
    wait_for(lambda: len(received(breadth, "TopicsEcho")) >= 3, 60, "three SNS events")
    # Asynchronous invocations run side by side, in no set order (as on AWS).
    records = {json.loads(r["Sns"]["Message"])["order"]["total"]: r for r in
               (event["Records"][0] for event in received(breadth, "TopicsEcho"))}
    assert sorted(records) == [50, 101, 250]
    first = records[250]
    assert (first["EventSource"], first["Sns"]["MessageId"], first["Sns"]["Subject"]) == (
        "aws:sns", big["MessageId"], "order")
    assert first["Sns"]["MessageAttributes"]["units"] == {"Type": "Number", "Value": "3"}

    # The raw queue's filter is on the attribute: only the big one, bare, with its attributes.
    [raw] = drain(breadth, "TopicsRawQueue", 1)
    assert json.loads(raw["Body"]) == {"order": {"total": 250}}
    assert raw["MessageAttributes"]["kind"] == {"DataType": "String", "StringValue": "big"}
    assert raw["MessageAttributes"]["units"] == {"DataType": "Number", "StringValue": "3"}
    # The enveloped queue's filter is on the body: totals over 100, in the notification JSON.
    enveloped = [json.loads(m["Body"]) for m in drain(breadth, "TopicsBodyQueue", 2)]
    assert sorted(json.loads(n["Message"])["order"]["total"] for n in enveloped) == [101, 250]
    assert {n["Type"] for n in enveloped} == {"Notification"}
    assert {n["TopicArn"] for n in enveloped} == {arn}
    # Nothing else arrived: each queue held exactly what its filter let through.
    sqs = breadth.client("sqs")
    for part in ("TopicsRawQueue", "TopicsBodyQueue"):
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url(breadth, part),
                                              AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0"


def test_a_fifo_topic_delivers_once_per_deduplication_id_under_the_group(
        breadth: SandboxProcess) -> None:  # noqa: F811
    sns = breadth.client("sns")
    arn = topic_arn(breadth, "TopicsFifoTopic")
    first = sns.publish(TopicArn=arn, Message="one", MessageGroupId="g1")
    repeat = sns.publish(TopicArn=arn, Message="one", MessageGroupId="g1")
    assert repeat["MessageId"] == first["MessageId"]
    sns.publish(TopicArn=arn, Message="two", MessageGroupId="g2")
    messages = drain(breadth, "TopicsFifoQueue", 2)
    assert sorted((m["Body"], m["Attributes"]["MessageGroupId"]) for m in messages) == [
        ("one", "g1"), ("two", "g2")]
    with pytest.raises(ClientError) as error:
        sns.publish(TopicArn=arn, Message="three")
    assert error.value.response["Error"]["Message"] == (
        "Invalid parameter: The MessageGroupId parameter is required for FIFO topics")


@pytest.mark.parametrize(("params", "code", "status", "message"), [
    ({"TopicArn": "arn:aws:sns:us-east-1:000000000000:nowhere", "Message": "m"},
     "NotFound", 404, "Topic does not exist"),
    ({"Message": "x" * 262_145}, "InvalidParameter", 400, "Invalid parameter: Message too long"),
    ({"Message": "m", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "ten"}}},
     "ParameterValueInvalid", 400, "Could not cast message attribute 'n' value to number."),
])
def test_bad_input_gets_sns_answer_through_boto3(
        breadth: SandboxProcess, params: dict[str, Any], code: str, status: int,  # noqa: F811
        message: str) -> None:
    params = {"TopicArn": topic_arn(breadth, "TopicsTopic"), **params}
    with pytest.raises(ClientError) as error:
        breadth.client("sns").publish(**params)
    response = error.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"],
            response["Error"]["Message"]) == (code, status, message)


def test_a_malformed_filter_policy_stops_the_start_naming_subscription_and_property(
        breadth_assembly: Path, tmp_path: Path) -> None:
    broken = tmp_path / "cdk.out"
    shutil.copytree(breadth_assembly, broken)
    [template_file] = broken.glob("*.template.json")
    template = json.loads(template_file.read_text())
    [logical_id] = [key for key, resource in template["Resources"].items()
                    if resource["Type"] == "AWS::SNS::Subscription"
                    and "FilterPolicy" in resource["Properties"]
                    and "FilterPolicyScope" not in resource["Properties"]]
    template["Resources"][logical_id]["Properties"]["FilterPolicy"] = {
        "kind": [{"numeric": [">", 20, "<", "30"]}]}
    template_file.write_text(json.dumps(template))
    answer = subprocess.run(
        [sys.executable, "-m", "sandbox", "up", "--assembly", str(broken),
         "--state", str(tmp_path / "state"), "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 2, answer.stdout + answer.stderr
    assert answer.stderr.splitlines() == [
        f"sandbox: {template_file}: Resources.{logical_id}.Properties.FilterPolicy: Invalid "
        "parameter: FilterPolicy: Value of < must be numeric"]
