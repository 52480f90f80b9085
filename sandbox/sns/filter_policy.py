"""SNS subscription filter policies, pure: checked when the subscription is read (SNS refuses a
bad policy at Subscribe time) and matched against each message before it is delivered.

From "Amazon SNS message filtering" and "Filter policy constraints" in the SNS developer guide:
- `FilterPolicyScope` `MessageAttributes` (the default) matches the message attributes of type
  String, String.Array (any element) and Number; Binary attributes are never compared. It takes
  no nested objects. `MessageBody` matches the message as a JSON object, nested keys included;
  an array in the body matches when any element does. A body that is not JSON matches nothing.
- A key maps to an array of conditions, any of which may match: an exact string, number,
  true/false or null, or one operator object: `prefix`, `suffix`, `equals-ignore-case`,
  `anything-but` (a value, a list, or a `prefix`/`suffix` object), `numeric` (`=`, or a range of
  `>`/`>=` then `<`/`<=`), `exists` (true/false) and `cidr`. `$or` takes alternatives of the same
  shape. A message lacking a key matches only `exists: false` and null (SNS's recorded answer
  delivers a message without the attribute to `[null, ...]`).
- At most 5 keys and 150 combinations (the product of each key's values, summed over `$or`
  branches), and at most 256 KB of JSON.

Bad policies get SNS's own words, as AWS recorded them (LocalStack's snapshot tests taken against
AWS): "Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys", "... Filter
policy is too complex", "... Unrecognized match type X", "... Value of >= must be numeric" and so
on.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

ATTRIBUTES = "MessageAttributes"
BODY = "MessageBody"
SCOPES = (ATTRIBUTES, BODY)
MAX_KEYS = 5
MAX_COMBINATIONS = 150
MAX_BYTES = 256 * 1024
_LOWER = ("<", "<=")
_UPPER = (">", ">=")
_COMPARE = {
    "=": lambda a, b: a == b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
_ABSENT = object()


class FilterPolicyError(ValueError):
    """A policy SNS refuses; the message is SNS's, "Invalid parameter: ..." included."""


def _bad(reason: str) -> FilterPolicyError:
    return FilterPolicyError(f"Invalid parameter: FilterPolicy: {reason}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class FilterPolicy:
    policy: dict[str, Any]
    scope: str = ATTRIBUTES

    @classmethod
    def parse(cls, policy: Any, scope: Any = None) -> FilterPolicy:
        """The policy as the template or the API gives it (a JSON string or an object)."""
        scope = scope or ATTRIBUTES
        if scope not in SCOPES:
            raise FilterPolicyError(f"Invalid parameter: FilterPolicyScope: Invalid value "
                                    f"[{scope}]. Please use either MessageBody or "
                                    "MessageAttributes")
        text = policy if isinstance(policy, str) else json.dumps(policy)
        if len(text.encode()) > MAX_BYTES:
            raise _bad("Filter policy is too long")
        if isinstance(policy, str):
            try:
                policy = json.loads(policy)
            except ValueError:
                raise _bad("failed to parse JSON.") from None
        if not isinstance(policy, dict):
            raise _bad("Filter policy must be a JSON object")
        nested = _check_object(policy)
        if nested and scope == ATTRIBUTES:
            raise FilterPolicyError("Invalid parameter: Filter policy scope MessageAttributes "
                                    "does not support nested filter policy")
        _check_limits(policy)
        return cls(policy, scope)

    def matches(self, attributes: dict[str, dict[str, str]], message: str) -> bool:
        """Whether a message with these attributes ({name: {"Type", "Value"}}) is delivered."""
        if not self.policy:
            return True
        if self.scope == ATTRIBUTES:
            return _object_matches(self.policy, attribute_document(attributes))
        try:
            body = json.loads(message)
        except ValueError:
            return False
        return isinstance(body, dict) and _object_matches(self.policy, body)


def attribute_document(attributes: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The attributes as values the policy compares: a Number as a number, a String.Array as
    its elements; Binary left out."""
    document: dict[str, Any] = {}
    for name, attribute in attributes.items():
        kind, value = attribute["Type"].split(".")[0], attribute["Value"]
        if attribute["Type"] == "String.Array":
            try:
                document[name] = json.loads(value)
            except ValueError:
                document[name] = value
        elif kind == "Number":
            document[name] = float(value)
        elif kind == "String":
            document[name] = value
    return document


# Checking


def _check_object(policy: dict[str, Any]) -> bool:
    """Checks every rule; True when the policy nests objects."""
    nested = False
    for key, rule in policy.items():
        if key == "$or":
            if not isinstance(rule, list) or len(rule) < 2 or not all(
                    isinstance(alternative, dict) for alternative in rule):
                raise _bad('"$or" must be an array of at least two objects')
            nested = any([_check_object(alternative) for alternative in rule]) or nested
        elif isinstance(rule, list):
            for condition in rule:
                _check_condition(condition)
        elif isinstance(rule, dict):
            _check_object(rule)
            nested = True
        else:
            raise _bad(f'"{key}" must be an object or an array')
    return nested


def _check_condition(condition: Any) -> None:
    if condition is None or isinstance(condition, str | bool) or _is_number(condition):
        return
    if not isinstance(condition, dict):
        raise _bad("Match value must be String, number, true, false, or null")
    if len(condition) != 1:
        raise _bad("Only one key allowed in match expression")
    [(operator, value)] = condition.items()
    check = _OPERATORS.get(operator)
    if check is None:
        raise _bad(f"Unrecognized match type {operator}")
    check(operator, value)


def _string_pattern(operator: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _bad(f"{operator} match pattern must be a string")


def _exists(operator: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _bad("exists match pattern must be either true or false.")


def _anything_but(operator: str, value: Any) -> None:
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in ("prefix", "suffix"):
            raise _bad("Unsupported anything-but pattern: " + ", ".join(value))
        [(inner, pattern)] = value.items()
        _string_pattern(inner, pattern)
        return
    values = value if isinstance(value, list) else [value]
    if not values or not (all(isinstance(v, str) for v in values)
                          or all(_is_number(v) for v in values)):
        raise _bad("Value of anything-but must be an array or single string/number value.")


def _numeric(operator: str, value: Any) -> None:
    """SNS's checks in SNS's order, with its messages."""
    terms = value if isinstance(value, list) else None
    if not terms:
        raise _bad("Invalid member in numeric match: ]")
    first = terms[0]
    if not isinstance(first, str):
        raise _bad(f"Invalid member in numeric match: {_show(first)}")
    if first not in _COMPARE:
        raise _bad(f"Unrecognized numeric range operator: {first}")
    if len(terms) < 2 or not _is_number(terms[1]):
        raise _bad(f"Value of {'equals' if first == '=' else first} must be numeric")
    if first not in _UPPER:
        if len(terms) > 2:
            raise _bad("Too many elements in numeric expression")
        return
    if len(terms) == 2:
        return
    second = terms[2]
    if not isinstance(second, str):
        raise _bad(f"Bad value in numeric range: {_show(second)}")
    if second not in _LOWER:
        raise _bad(f"Bad numeric range operator: {second}")
    if len(terms) < 4 or not _is_number(terms[3]):
        raise _bad(f"Value of {second} must be numeric")
    if len(terms) > 4:
        raise _bad("Too many terms in numeric range expression")
    if terms[1] >= terms[3]:
        raise _bad("Bottom must be less than top")


def _cidr(operator: str, value: Any) -> None:
    if not isinstance(value, str) or "/" not in value:
        raise _bad("Malformed CIDR, one '/' required")
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise _bad(f"Nonstandard IP address: {value.split('/')[0]}") from None


_OPERATORS = {"prefix": _string_pattern, "suffix": _string_pattern,
              "equals-ignore-case": _string_pattern, "exists": _exists,
              "anything-but": _anything_but, "numeric": _numeric, "cidr": _cidr}


def _branches(policy: dict[str, Any]) -> list[list[list[Any]]]:
    """Each way through the policy's `$or`s, as the condition arrays it must all match."""
    branches: list[list[list[Any]]] = [[]]
    for key, rule in policy.items():
        if key == "$or":
            choices = [branch for alternative in rule for branch in _branches(alternative)]
        elif isinstance(rule, dict):
            choices = _branches(rule)
        else:
            choices = [[rule]]
        branches = [branch + choice for branch in branches for choice in choices]
        if len(branches) > MAX_COMBINATIONS:
            raise _bad("Filter policy is too complex")
    return branches


def _check_limits(policy: dict[str, Any]) -> None:
    combinations = 0
    for branch in _branches(policy):
        if len(branch) > MAX_KEYS:
            raise _bad(f"Filter policy can not have more than {MAX_KEYS} keys")
        product = 1
        for conditions in branch:
            product *= max(len(conditions), 1)
        combinations += product
    if combinations > MAX_COMBINATIONS:
        raise _bad("Filter policy is too complex")


# Matching


def _object_matches(policy: dict[str, Any], document: dict[str, Any]) -> bool:
    for key, rule in policy.items():
        if key == "$or":
            matched = any(_object_matches(alternative, document) for alternative in rule)
        elif isinstance(rule, dict):
            value = document.get(key, _ABSENT)
            candidates = value if isinstance(value, list) else [value]
            matched = any(isinstance(c, dict) and _object_matches(rule, c) for c in candidates)
        else:
            matched = _key_matches(rule, document.get(key, _ABSENT))
        if not matched:
            return False
    return True


def _key_matches(conditions: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(_condition_matches(condition, values) for condition in conditions)


def _condition_matches(condition: Any, values: list[Any]) -> bool:
    present = values != [_ABSENT]
    if condition is None:
        return not present or None in values
    if isinstance(condition, dict):
        [(operator, argument)] = condition.items()
        if operator == "exists":
            return present == argument
        return present and _MATCHERS[operator](argument, values)
    if isinstance(condition, bool):
        return any(v is condition for v in values)
    if _is_number(condition):
        return any(_is_number(v) and v == condition for v in values)
    return condition in [v for v in values if isinstance(v, str)]


def _strings(values: list[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str)]


def _anything_but_matches(argument: Any, values: list[Any]) -> bool:
    if isinstance(argument, dict):
        [(inner, pattern)] = argument.items()
        hit = str.startswith if inner == "prefix" else str.endswith
        return all(not (isinstance(v, str) and hit(v, pattern)) for v in values)
    excluded = argument if isinstance(argument, list) else [argument]
    return all(v not in excluded for v in values)


def _numeric_matches(terms: list[Any], values: list[Any]) -> bool:
    pairs = list(zip(terms[::2], terms[1::2], strict=True))
    return any(_is_number(v) and all(_COMPARE[op](v, bound) for op, bound in pairs)
               for v in values)


def _cidr_matches(network: str, values: list[Any]) -> bool:
    block = ipaddress.ip_network(network, strict=False)
    for value in _strings(values):
        try:
            if ipaddress.ip_address(value) in block:
                return True
        except ValueError:
            continue
    return False


_MATCHERS = {
    "prefix": lambda p, values: any(v.startswith(p) for v in _strings(values)),
    "suffix": lambda p, values: any(v.endswith(p) for v in _strings(values)),
    "equals-ignore-case": lambda p, values: any(v.lower() == p.lower() for v in _strings(values)),
    "anything-but": _anything_but_matches,
    "numeric": _numeric_matches,
    "cidr": _cidr_matches,
}
