"""The AWS query protocol, shared by the services that speak it (SNS now; CloudFormation and STS
can join by the same door): a form-encoded POST to `/` whose `Action` names the operation,
answered in XML.

From the AWS query protocol as the SDKs implement it (botocore's `query` serializer and parser):
- the request is `application/x-www-form-urlencoded`, with `Action`, `Version` and the input
  flattened into dotted names: a list as `Name.member.N.Field`, a map as `Name.entry.N.key`/
  `.value` (SNS names them `.Name`/`.Value`), N counting from 1;
- the answer is `<ActionResponse xmlns=...><ActionResult>...</ActionResult>
  <ResponseMetadata><RequestId>...</RequestId></ResponseMetadata></ActionResponse>`, a list as
  `<member>` elements, a map as `<entry><key/><value/></entry>`;
- an error is `<ErrorResponse><Error><Type>Sender</Type><Code/><Message/></Error>
  <RequestId/></ErrorResponse>` with the error's HTTP status; an action no service owns is
  `InvalidAction`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Protocol
from urllib.parse import parse_qsl

from sandbox.core import ids
from sandbox.core.state import StorageFull
from sandbox.core.wire import Response

CONTENT_TYPE = "text/xml"
FORM = "application/x-www-form-urlencoded"


class QueryService(Protocol):
    """A service's query-protocol wire: which actions are its own, and how it answers them."""

    def owns(self, action: str) -> bool: ...

    def handle(self, action: str, params: dict[str, str]) -> Response: ...


class Entries(dict):
    """A map the answer spells as `<entry><key/><value/></entry>` elements."""


def form(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, str] | None:
    """The parameters of a query-protocol call; None when the request is not one (a REST API
    is served under its stage path, never at `/`)."""
    if method != "POST" or path.split("?", 1)[0] != "/":
        return None
    if not headers.get("content-type", "").lower().startswith(FORM):
        return None
    params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params if params.get("Action") else None


def dispatch(services: list[QueryService], params: dict[str, str]) -> Response:
    action = params["Action"]
    for service in services:
        if service.owns(action):
            try:
                return service.handle(action, params)
            except StorageFull as full:  # the common error of every AWS API
                return error(500, "InternalFailure", str(full))
    return error(400, "InvalidAction", f"The action {action} is not valid for this web service.")


def unflatten(params: dict[str, str]) -> dict[str, Any]:
    """`A.member.1.B=x` as {"A": {"member": {"1": {"B": "x"}}}}."""
    tree: dict[str, Any] = {}
    for name, value in params.items():
        *path, last = name.split(".")
        node = tree
        for part in path:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # `A=x` and `A.B=y` both given: the tree wins
                child = node[part] = {}
            node = child
        node.setdefault(last, value)
    return tree


def members(node: Any, kind: str = "member") -> list[Any]:
    """The items of a flattened list (`member`) or map (`entry`), in their numbered order."""
    items = node.get(kind) if isinstance(node, dict) else None
    if not isinstance(items, dict):
        return []
    numbered = sorted((int(k), v) for k, v in items.items() if k.isdigit())
    return [value for _, value in numbered]


def answer(action: str, namespace: str, result: dict[str, Any]) -> Response:
    root = ET.Element(f"{action}Response", xmlns=namespace)
    _fill(ET.SubElement(root, f"{action}Result"), result)
    metadata = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(metadata, "RequestId").text = ids.uuid4()
    return 200, [("Content-Type", CONTENT_TYPE)], ET.tostring(root, encoding="utf-8")


def error(status: int, code: str, message: str, namespace: str | None = None) -> Response:
    root = ET.Element("ErrorResponse", **({"xmlns": namespace} if namespace else {}))
    detail = ET.SubElement(root, "Error")
    ET.SubElement(detail, "Type").text = "Sender" if status < 500 else "Receiver"
    ET.SubElement(detail, "Code").text = code
    ET.SubElement(detail, "Message").text = message
    ET.SubElement(root, "RequestId").text = ids.uuid4()
    return status, [("Content-Type", CONTENT_TYPE)], ET.tostring(root, encoding="utf-8")


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, Entries):
        for key, item in value.items():
            entry = ET.SubElement(element, "entry")
            ET.SubElement(entry, "key").text = key
            _fill(ET.SubElement(entry, "value"), item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if item is not None:
                _fill(ET.SubElement(element, key), item)
    elif isinstance(value, list):
        for item in value:
            _fill(ET.SubElement(element, "member"), item)
    elif isinstance(value, bool):
        element.text = str(value).lower()
    else:
        element.text = str(value)
