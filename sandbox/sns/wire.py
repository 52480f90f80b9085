"""SNS's wire protocol as boto3 and the AWS CLI speak it: the AWS query protocol (a form POST,
`Action=Publish&Version=2010-03-31&...`, answered in XML under SNS's namespace; see
`core/query`). It reads the flattened parameters into the shapes the SNS API reference names,
lets `Topics` decide, commits what the call accepted, and wakes the job runner for the Lambda
invocations it queued.

Served: Publish, PublishBatch, ListTopics, ListSubscriptions, ListSubscriptionsByTopic,
GetTopicAttributes, GetSubscriptionAttributes. Topics and subscriptions are the template's, so
the calls that would change them are answered `InvalidAction` naming what the sandbox does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.core import query
from sandbox.core.state import State
from sandbox.core.wire import Response
from sandbox.sns.backend import SnsError, Topics

NAMESPACE = "http://sns.amazonaws.com/doc/2010-03-31/"
# SNS's other actions: owned here so that they get SNS's answer, not another service's.
NOT_SERVED = {
    "AddPermission", "CheckIfPhoneNumberIsOptedOut", "ConfirmSubscription",
    "CreatePlatformApplication", "CreatePlatformEndpoint", "CreateSMSSandboxPhoneNumber",
    "CreateTopic", "DeleteEndpoint", "DeletePlatformApplication", "DeleteSMSSandboxPhoneNumber",
    "DeleteTopic", "GetDataProtectionPolicy", "GetEndpointAttributes",
    "GetPlatformApplicationAttributes", "GetSMSAttributes", "GetSMSSandboxAccountStatus",
    "ListEndpointsByPlatformApplication", "ListOriginationNumbers", "ListPhoneNumbersOptedOut",
    "ListPlatformApplications", "ListSMSSandboxPhoneNumbers", "ListTagsForResource",
    "OptInPhoneNumber", "PutDataProtectionPolicy", "RemovePermission", "SetEndpointAttributes",
    "SetPlatformApplicationAttributes", "SetSMSAttributes", "SetSubscriptionAttributes",
    "SetTopicAttributes", "Subscribe", "TagResource", "Unsubscribe", "UntagResource",
    "VerifySMSSandboxPhoneNumber",
}


def message_request(node: dict[str, Any]) -> dict[str, Any]:
    """A Publish request (or a PublishBatch entry) from its flattened form."""
    request = {key: value for key, value in node.items() if isinstance(value, str)}
    request["MessageAttributes"] = {
        entry.get("Name", ""): entry.get("Value") if isinstance(entry.get("Value"), dict) else {}
        for entry in query.members(node.get("MessageAttributes"), "entry")}
    return request


class SnsWire:
    def __init__(self, topics: Topics, state: State) -> None:
        self.topics = topics
        self.state = state
        self.actions: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "Publish": self.publish,
            "PublishBatch": self.publish_batch,
            "ListTopics": lambda _: {"Topics": [{"TopicArn": arn}
                                                for arn in self.topics.list_topics()]},
            "ListSubscriptions": lambda _: {"Subscriptions": self.topics.list_subscriptions()},
            "ListSubscriptionsByTopic": lambda request: {
                "Subscriptions": self.topics.list_subscriptions(request.get("TopicArn", ""))},
            "GetTopicAttributes": lambda request: {"Attributes": query.Entries(
                self.topics.topic(request.get("TopicArn")).attributes())},
            "GetSubscriptionAttributes": lambda request: {"Attributes": query.Entries(
                self.topics.subscription(request.get("SubscriptionArn")).attributes())},
        }

    def owns(self, action: str) -> bool:
        return action in self.actions or action in NOT_SERVED

    def handle(self, action: str, params: dict[str, str]) -> Response:
        if action in NOT_SERVED:
            return query.error(400, "InvalidAction", f"The sandbox serves the template's topics "
                                                     f"and does not emulate SNS {action}.",
                               NAMESPACE)
        try:
            result = self.actions[action](query.unflatten(params))
        except SnsError as failure:
            return query.error(failure.status, failure.code, failure.message, NAMESPACE)
        return query.answer(action, NAMESPACE, result)

    def publish(self, request: dict[str, Any]) -> dict[str, Any]:
        answer, writes = self.topics.publish(message_request(request))
        self.state.commit(writes)
        return answer

    def publish_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        entries = [message_request(entry) if isinstance(entry, dict) else {}
                   for entry in query.members(request.get("PublishBatchRequestEntries"))]
        answer, writes = self.topics.publish_batch({"TopicArn": request.get("TopicArn"),
                                                    "PublishBatchRequestEntries": entries})
        self.state.commit(writes)
        return answer
