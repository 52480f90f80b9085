"""What SQS checks and computes about one message, pure: its body's characters, its message
attributes, the MD5 digests it answers with, and the receipt handles it hands out.

From the SQS API reference and developer guide:
- a body may hold only #x9 #xA #xD, #x20-#xD7FF, #xE000-#xFFFD and #x10000-#x10FFFF;
- at most 10 message attributes; a name is up to 256 characters of A-Z a-z 0-9 _ - . , does
  not start or end with a period, has no two periods in a row, and does not start with `AWS.`
  or `Amazon.`; a data type is String, Number or Binary, optionally followed by `.label`;
- `MD5OfMessageAttributes` digests, for each attribute in name order, the name, the data type
  (each as a 4-byte big-endian length and the UTF-8 bytes), a transport byte (1 for String and
  Number, 2 for Binary) and the value (length and bytes);
- the message size counts the body and every attribute's name, type and value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import struct
from typing import Any

MAX_ATTRIBUTES = 10
_NAME = re.compile(r"^[A-Za-z0-9_\-.]{1,256}$")
_TYPE = re.compile(r"^(String|Number|Binary)(\.[^\s]+)?$")
_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class MessageError(ValueError):
    """Bad input SQS refuses: `code` as SQS names it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_body(body: Any) -> str:
    if not isinstance(body, str) or body == "":
        raise MessageError("MissingParameter",
                           "The request must contain the parameter MessageBody.")
    if _INVALID_CHARS.search(body):
        raise MessageError("InvalidMessageContents",
                           "Invalid characters found. Valid unicode characters are #x9 | #xA | "
                           "#xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
    return body


def check_attributes(attributes: Any) -> dict[str, dict[str, str]]:
    """Message attributes as SendMessage takes them, checked; Binary values stay base64."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise MessageError("InvalidParameterValue", "MessageAttributes must be a map.")
    if len(attributes) > MAX_ATTRIBUTES:
        raise MessageError("InvalidParameterValue",
                           f"Number of message attributes [{len(attributes)}] exceeds the "
                           f"allowed maximum [{MAX_ATTRIBUTES}].")
    checked = {}
    for name, value in attributes.items():
        _check_name(name)
        if not isinstance(value, dict) or not isinstance(value.get("DataType"), str):
            raise MessageError("InvalidParameterValue",
                               f"The message attribute '{name}' must contain a non-empty "
                               "message attribute type.")
        kind = value["DataType"]
        if not _TYPE.match(kind):
            raise MessageError("InvalidParameterValue",
                               f"The type of message attribute '{name}' is invalid. You must use "
                               "only the following supported type prefixes: Binary, Number, "
                               "String.")
        key = "BinaryValue" if kind.startswith("Binary") else "StringValue"
        raw = value.get(key)
        if raw in (None, ""):
            raise MessageError("InvalidParameterValue",
                               f"The message attribute '{name}' must contain a non-empty "
                               "message attribute value for message attribute type "
                               f"'{kind.split('.')[0]}'.")
        if kind.startswith("Number") and not _is_number(str(raw)):
            raise MessageError("InvalidParameterValue",
                               f"Can't cast the value of message (user) attribute '{name}' to a "
                               "number.")
        if key == "BinaryValue":
            try:
                base64.b64decode(raw, validate=True)
            except (binascii.Error, TypeError):
                raise MessageError("InvalidParameterValue",
                                   f"The message attribute '{name}' has an invalid binary "
                                   "value.") from None
        elif _INVALID_CHARS.search(raw):
            raise MessageError("InvalidParameterValue",
                               f"Message (user) attribute '{name}' value contains invalid "
                               "characters.")
        checked[name] = {"DataType": kind, key: raw}
    return checked


def _check_name(name: Any) -> None:
    reason = None
    if not isinstance(name, str) or not _NAME.match(name):
        reason = ("can only contain alphanumeric characters, hyphens (-), underscores (_), "
                  "and periods (.), and be at most 256 characters long")
    elif name.startswith(".") or name.endswith(".") or ".." in name:
        reason = "cannot start or end with a period, nor contain two periods in a row"
    elif name.lower().startswith(("aws.", "amazon.")):
        reason = "cannot start with AWS. or Amazon. (reserved)"
    if reason:
        raise MessageError("InvalidParameterValue",
                           f"Message (user) attribute name '{name}' is invalid: it {reason}.")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def size_of(body: str, attributes: dict[str, dict[str, str]]) -> int:
    size = len(body.encode())
    for name, value in attributes.items():
        raw = value.get("StringValue") or value.get("BinaryValue") or ""
        size += len(name.encode()) + len(value["DataType"].encode()) + len(raw.encode())
    return size


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


def md5_of_attributes(attributes: dict[str, dict[str, str]]) -> str | None:
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        value = attributes[name]
        kind = value["DataType"]
        digest.update(_field(name.encode()) + _field(kind.encode()))
        if kind.startswith("Binary"):
            digest.update(b"\x02" + _field(base64.b64decode(value["BinaryValue"])))
        else:
            digest.update(b"\x01" + _field(value["StringValue"].encode()))
    return digest.hexdigest()


def _field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


# Receipt handles: opaque to the caller; here the message and the receive they came from.


def new_token() -> str:
    return secrets.token_urlsafe(12)


def receipt_handle(message_id: str, token: str) -> str:
    return base64.b64encode(f"{message_id} {token}".encode()).decode()


def parse_receipt_handle(handle: Any) -> tuple[str, str]:
    """(message id, token); `ReceiptHandleIsInvalid` for anything the sandbox did not hand out."""
    try:
        message_id, token = base64.b64decode(str(handle), validate=True).decode().split(" ")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise MessageError("ReceiptHandleIsInvalid",
                           f'The input receipt handle "{handle}" is not a valid receipt '
                           "handle.") from None
    return message_id, token
