"""DynamoDB tables read as plain items, through any boto3 DynamoDB client: DynamoDB Local for
the console, the user's AWS account for `trace --stack`. An item is found by the value of its
partition key alone (a Query, so tables with a sort key work too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.journey import plain_item


@dataclass(frozen=True)
class Table:
    name: str
    key_name: str  # the partition key attribute
    key_type: str  # "S", "N" or "B"


def describe(client: Any, name: str) -> Table:
    table = client.describe_table(TableName=name)["Table"]
    [key_name] = [k["AttributeName"] for k in table["KeySchema"] if k["KeyType"] == "HASH"]
    [key_type] = [a["AttributeType"] for a in table["AttributeDefinitions"]
                  if a["AttributeName"] == key_name]
    return Table(name, key_name, key_type)


def scan(client: Any, table: Table) -> list[dict[str, Any]]:
    """Every item of the table, as plain values."""
    items = []
    for page in client.get_paginator("scan").paginate(TableName=table.name):
        items += [plain_item(item) for item in page["Items"]]
    return items


def find(client: Any, table: Table, key: str) -> dict[str, Any] | None:
    """The first item whose partition key is `key` (given as text), or None."""
    answer = client.query(
        TableName=table.name,
        KeyConditionExpression="#key = :key",
        ExpressionAttributeNames={"#key": table.key_name},
        ExpressionAttributeValues={":key": {table.key_type: key}},
        Limit=1,
    )
    return plain_item(answer["Items"][0]) if answer["Items"] else None
