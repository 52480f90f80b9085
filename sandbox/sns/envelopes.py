"""What an SNS topic hands its subscribers, pure: the notification as JSON for a queue, the
event a function is invoked with, or the bare message (raw message delivery).

Shapes from AWS's documentation:
- To an SQS queue ("Fanout to Amazon SQS queues", "HTTP/HTTPS notification JSON format"): a JSON
  document with `Type` "Notification", `MessageId`, `TopicArn`, `Subject` (absent when the
  publisher gave none), `Message`, `Timestamp` (milliseconds, Z), `SignatureVersion` "1",
  `Signature`, `SigningCertURL`, `UnsubscribeURL`, and `MessageAttributes` (each
  `{"Type", "Value"}`) when there are some. A FIFO topic adds `SequenceNumber`.
- With `RawMessageDelivery`, the queue gets the message itself, and its attributes as the SQS
  message's attributes.
- To a Lambda function ("Using Lambda with Amazon SNS"), invoked asynchronously:
  `{"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn",
  "Sns": {...}}]}` where `Sns` spells the URLs `SigningCertUrl` and `UnsubscribeUrl`, always has
  `Subject` (null without one) and `MessageAttributes` (`{}` without any).

The signature is not an RSA signature: nothing local holds SNS's key, so a subscriber that
verifies signatures cannot verify these. It is a stable digest of the signed fields, in base64.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SIGNATURE_VERSION = "1"
# The certificate named in AWS's own examples; nothing is served there locally.
CERTIFICATE = "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"


@dataclass(frozen=True)
class Notification:
    """One message published to a topic, as every subscriber of it sees it."""

    message_id: str
    topic_arn: str
    message: str
    timestamp: str  # as SNS writes it: 2012-03-29T05:12:16.901Z
    subject: str | None = None
    # Message attributes as subscribers see them: name -> {"Type": "String", "Value": "..."}
    # (a Binary value in base64, a String.Array value as its JSON text).
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    sequence_number: str | None = None  # FIFO topics only


def timestamp(now: datetime) -> str:
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _region(arn: str) -> str:
    return arn.split(":")[3]


def signing_cert_url(topic_arn: str) -> str:
    return f"https://sns.{_region(topic_arn)}.amazonaws.com/{CERTIFICATE}"


def unsubscribe_url(subscription_arn: str) -> str:
    return (f"https://sns.{_region(subscription_arn)}.amazonaws.com/"
            f"?Action=Unsubscribe&SubscriptionArn={subscription_arn}")


def signature(n: Notification) -> str:
    """A stand-in for the signature, over the fields SNS signs, in the order it signs them."""
    fields = [("Message", n.message), ("MessageId", n.message_id), ("Subject", n.subject),
              ("Timestamp", n.timestamp), ("TopicArn", n.topic_arn), ("Type", "Notification")]
    text = "".join(f"{name}\n{value}\n" for name, value in fields if value is not None)
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def string_attributes(attributes: dict[str, str]) -> dict[str, dict[str, str]]:
    """Plain text attributes (what another service hands a topic) as typed ones."""
    return {name: {"Type": "String", "Value": value} for name, value in attributes.items()}


def sqs_body(n: Notification, subscription_arn: str) -> str:
    """The body of the message a subscribed queue receives."""
    document: dict[str, Any] = {"Type": "Notification", "MessageId": n.message_id}
    if n.sequence_number is not None:
        document["SequenceNumber"] = n.sequence_number
    document["TopicArn"] = n.topic_arn
    if n.subject is not None:
        document["Subject"] = n.subject
    document |= {
        "Message": n.message,
        "Timestamp": n.timestamp,
        "SignatureVersion": SIGNATURE_VERSION,
        "Signature": signature(n),
        "SigningCertURL": signing_cert_url(n.topic_arn),
        "UnsubscribeURL": unsubscribe_url(subscription_arn),
    }
    if n.attributes:
        document["MessageAttributes"] = dict(n.attributes)
    return json.dumps(document)


def lambda_event(n: Notification, subscription_arn: str) -> dict[str, Any]:
    """The event a subscribed function is invoked with."""
    return {"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": "Notification",
            "MessageId": n.message_id,
            "TopicArn": n.topic_arn,
            "Subject": n.subject,
            "Message": n.message,
            "Timestamp": n.timestamp,
            "SignatureVersion": SIGNATURE_VERSION,
            "Signature": signature(n),
            "SigningCertUrl": signing_cert_url(n.topic_arn),
            "UnsubscribeUrl": unsubscribe_url(subscription_arn),
            "MessageAttributes": dict(n.attributes),
        },
    }]}
