"""`python -m sandbox invoke NAME`: one synchronous invocation of a function of the running
sandbox, through Lambda's own API, as `aws lambda invoke --log-type Tail` makes it; printed as
`sam local invoke` prints it (the log, then the answer), for people who know that command.

The function is named by its name or ARN, as on AWS, or by a part of its name found in exactly
one function (`OrderService`, its construct id), since generated names are long.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


class InvokeError(Exception):
    """Why nothing ran: no sandbox, no such function, a refused payload."""


@dataclass(frozen=True)
class Answer:
    result: str
    log: str
    failed: bool


def client(url: str) -> Any:
    return boto3.client("lambda", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local",
                        config=Config(retries={"max_attempts": 1}, read_timeout=960))


def function_name(lambda_: Any, name: str) -> str:
    """`name` itself when a function has it (or it is an ARN), else the one function whose
    name contains it."""
    names = [f["FunctionName"] for page in lambda_.get_paginator("list_functions").paginate()
             for f in page["Functions"]]
    if name in names or name.startswith("arn:") or ":function:" in name:
        return name
    found = [n for n in names if name in n]
    if len(found) == 1:
        return found[0]
    if found:
        raise InvokeError(f"{name} is part of several function names: {', '.join(found)}")
    raise InvokeError(f"no function named {name}; the functions are: {', '.join(names)}")


def invoke(url: str, name: str, payload: bytes) -> Answer:
    try:
        json.loads(payload)
    except ValueError as error:
        raise InvokeError(f"the event is not JSON: {error}") from None
    lambda_ = client(url)
    try:
        answer = lambda_.invoke(FunctionName=function_name(lambda_, name), Payload=payload,
                                LogType="Tail")
    except ClientError as error:
        raise InvokeError(error.response["Error"]["Message"]) from None
    except BotoCoreError as error:
        raise InvokeError(f"no sandbox answering at {url} ({error}): start it with `make run`, "
                          "or say its --port") from None
    log = base64.b64decode(answer.get("LogResult", "")).decode("utf-8", "replace")
    return Answer(answer["Payload"].read().decode("utf-8", "replace"), log,
                  "FunctionError" in answer)
