"""The choreography through the `cdk_sandbox` fixture, as a user of the installed package would
test their own app: a request through `url()`, `settle()` instead of sleeping, and a boto3
client bound to the sandbox."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from sandbox_process import STAMPS

pytestmark = pytest.mark.slow


def test_an_order_through_the_fixture_reaches_its_five_stamps(cdk_sandbox: Any) -> None:
    with urllib.request.urlopen(cdk_sandbox.url("/prod/order"), timeout=60) as answer:
        order_id = json.loads(answer.read())["ID"]
    cdk_sandbox.settle(timeout=60)
    dynamodb = cdk_sandbox.client("dynamodb")
    (table,) = dynamodb.list_tables()["TableNames"]
    item = dynamodb.get_item(TableName=table, Key={"ID": {"S": order_id}},
                             ConsistentRead=True)["Item"]
    assert all(stamp in item for stamp in STAMPS)


def test_settle_names_what_is_still_in_flight(cdk_sandbox: Any) -> None:
    events = cdk_sandbox.client("events")
    bus = next(b["Name"] for b in events.list_event_buses()["EventBuses"]
               if b["Name"] != "default")
    events.put_events(Entries=[{"EventBusName": bus, "Source": "order_service",
                                "DetailType": "order_created",
                                "Detail": json.dumps({"data": {"ID": "never-settles"}})}])
    with pytest.raises(AssertionError, match="still in flight after 0 s: "):
        cdk_sandbox.settle(timeout=0)
    cdk_sandbox.settle(timeout=60)
