"""What a DynamoDB call passed through the endpoint is recorded as (`up --trace-dynamodb`), pure:
its operation, the table it named however the request names it, and how it ended."""

from __future__ import annotations

import json

import pytest

from sandbox.core.wire import aws_error
from sandbox.dynamodb.wire import call_record, table_of


def headers(operation: str, prefix: str = "DynamoDB_20120810") -> dict[str, str]:
    return {"x-amz-target": f"{prefix}.{operation}"}


@pytest.mark.parametrize("request_, table", [
    ({"TableName": "Orders", "Key": {"ID": {"S": "1"}}}, "Orders"),
    ({"RequestItems": {"Orders": [], "Lines": []}}, "Orders"),
    ({"TransactItems": [{"Update": {"TableName": "Orders", "Key": {}}}]}, "Orders"),
    ({"StreamArn": "arn:aws:dynamodb:ddblocal:000000000000:table/Orders/stream/x"}, None),
    (["not", "an", "object"], None),
])
def test_the_table_is_read_from_wherever_the_request_names_it(request_: object,
                                                              table: str | None) -> None:
    assert table_of(request_) == table


def test_a_call_that_succeeded_is_its_operation_table_and_request_id() -> None:
    answer = (200, [("x-amzn-RequestId", "R1")], b"{}")
    call = call_record(headers("UpdateItem"), json.dumps({"TableName": "Orders"}).encode(),
                       answer)
    assert (call.service, call.operation, call.table, call.status, call.request_id,
            call.error_code) == ("DynamoDB", "UpdateItem", "Orders", 200, "R1", None)


def test_a_refused_call_keeps_the_error_code_without_its_namespace() -> None:
    answer = (400, [], json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#"
                                             "ConditionalCheckFailedException"}).encode())
    call = call_record(headers("PutItem"), b'{"TableName": "Orders"}', answer)
    assert (call.status, call.error_code) == (400, "ConditionalCheckFailedException")


def test_a_stream_call_or_an_unreadable_body_is_still_recorded() -> None:
    call = call_record(headers("GetRecords", "DynamoDBStreams_20120810"), b"not json",
                       aws_error(503, "ServiceUnavailable", "DynamoDB Local is not answering"))
    assert (call.service, call.operation, call.table, call.error_code) == (
        "DynamoDB Streams", "GetRecords", None, "ServiceUnavailable")
