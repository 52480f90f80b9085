"""CloudWatch Logs filter patterns, as `FilterLogEvents` and `aws logs tail --filter-pattern`
apply them to each log event's message.

From the CloudWatch Logs user guide ("Filter pattern syntax for metric filters, subscription
filters, filter log events, and Live Tail"):
- an empty pattern matches every event;
- terms: every term must occur in the message, case-sensitively; a term with characters other
  than letters, digits and underscores goes in double quotes (`"Order created"`), which also
  makes a phrase one term;
- `-term` excludes events holding it; `?term ?other` matches events holding any of the `?`
  terms (with plain terms beside them, those must all occur too);
- JSON: `{ $.ID = "abc" }` matches events whose message is a JSON object with that value at
  that selector (`$.a.b`, `$.a[0]`); `=` and `!=` compare strings (quoted or not, `*` a
  wildcard) or numbers, `<`, `<=`, `>`, `>=` numbers; `IS TRUE`, `IS FALSE`, `IS NULL`,
  `NOT EXISTS`; conditions joined by `&&` and `||`, grouped with parentheses;
- space-delimited patterns (`[ip, user, ...]`) are not emulated: the sandbox says so.

A pattern AWS cannot parse is refused with `InvalidParameterException` "Invalid filter pattern".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[str], bool]
_JSON_TOKEN = re.compile(r"""\s*(\|\||&&|\(|\)|!=|<=|>=|=|<|>|"(?:[^"\\]|\\.)*"|[^\s()=!<>&|"]+)""")
_SELECTOR = re.compile(r"^\$(\.[A-Za-z0-9_@-]+|\[\d+\])*$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_MISSING = object()


class PatternError(ValueError):
    """A filter pattern CloudWatch Logs refuses."""


def matcher(pattern: str | None) -> Matcher:
    """A test of one message against `pattern`; raises `PatternError` when it is invalid."""
    text = (pattern or "").strip()
    if not text:
        return lambda _: True
    if text.startswith("{"):
        if not text.endswith("}"):
            raise PatternError("Invalid filter pattern")
        condition = _JsonParser(text[1:-1]).parse()
        return lambda message: _json_match(condition, message)
    if text.startswith("["):
        raise PatternError("Invalid filter pattern: the sandbox does not emulate "
                           "space-delimited patterns ([...]); use terms or a JSON pattern")
    return _terms(text)


# Terms


def _terms(text: str) -> Matcher:
    required: list[str] = []
    excluded: list[str] = []
    optional: list[str] = []
    for sign, quoted, bare in re.findall(r'([-?]?)(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))', text):
        term = quoted if quoted or not bare else bare
        if bare and not re.fullmatch(r"[A-Za-z0-9_.:/@*-]+", bare):
            raise PatternError("Invalid filter pattern")
        term = term.replace('\\"', '"')
        {"": required, "-": excluded, "?": optional}[sign].append(term)
    if not (required or excluded or optional):
        raise PatternError("Invalid filter pattern")
    if '"' in re.sub(r'"((?:[^"\\]|\\.)*)"', "", text):
        raise PatternError("Invalid filter pattern")  # an unclosed quote

    def match(message: str) -> bool:
        return (all(t in message for t in required)
                and not any(t in message for t in excluded)
                and (not optional or any(t in message for t in optional)))

    return match


# JSON patterns: a small recursive-descent parser into nested tuples


class _JsonParser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def parse(self) -> tuple:
        condition = self._or()
        if self.at != len(self.tokens):
            raise PatternError("Invalid filter pattern")
        return condition

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise PatternError("Invalid filter pattern")
        self.at += 1
        return token

    def _or(self) -> tuple:
        left = self._and()
        while self._peek() == "||":
            self._take()
            left = ("or", left, self._and())
        return left

    def _and(self) -> tuple:
        left = self._term()
        while self._peek() == "&&":
            self._take()
            left = ("and", left, self._term())
        return left

    def _term(self) -> tuple:
        if self._peek() == "(":
            self._take()
            inner = self._or()
            if self._take() != ")":
                raise PatternError("Invalid filter pattern")
            return inner
        selector = self._take()
        if not _SELECTOR.match(selector):
            raise PatternError("Invalid filter pattern")
        operator = self._take()
        if operator.upper() in ("IS", "NOT"):
            word = self._take().upper()
            if operator.upper() == "NOT" and word == "EXISTS":
                return ("missing", selector)
            if operator.upper() == "IS" and word in ("TRUE", "FALSE", "NULL"):
                return ("is", selector, {"TRUE": True, "FALSE": False, "NULL": None}[word])
            raise PatternError("Invalid filter pattern")
        if operator not in ("=", "!=", "<", "<=", ">", ">="):
            raise PatternError("Invalid filter pattern")
        value = self._take()
        if value in ("(", ")", "&&", "||"):
            raise PatternError("Invalid filter pattern")
        if value.startswith('"'):
            return ("cmp", selector, operator, json.loads(value))
        if _NUMBER.match(value):
            return ("cmp", selector, operator, float(value))
        if operator not in ("=", "!="):
            raise PatternError("Invalid filter pattern")  # only numbers are ordered
        return ("cmp", selector, operator, value)


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    at = 0
    while text[at:].strip():
        found = _JSON_TOKEN.match(text, at)
        if not found:
            raise PatternError("Invalid filter pattern")
        tokens.append(found.group(1))
        at = found.end()
    return tokens


def _json_match(condition: tuple, message: str) -> bool:
    try:
        document = json.loads(message)
    except (ValueError, RecursionError):
        return False
    return isinstance(document, (dict, list)) and _holds(condition, document)


def _holds(condition: tuple, document: Any) -> bool:
    kind = condition[0]
    if kind == "or":
        return _holds(condition[1], document) or _holds(condition[2], document)
    if kind == "and":
        return _holds(condition[1], document) and _holds(condition[2], document)
    value = _select(document, condition[1])
    if kind == "missing":
        return value is _MISSING
    if kind == "is":
        return value is not _MISSING and value is condition[2]
    return _compare(value, condition[2], condition[3])


def _select(document: Any, selector: str) -> Any:
    value = document
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", selector[1:]):
        if name and isinstance(value, dict) and name in value:
            value = value[name]
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return _MISSING
    return value


def _compare(value: Any, operator: str, wanted: str | float) -> bool:
    if value is _MISSING or isinstance(value, (dict, list)):
        return False
    if isinstance(wanted, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return {"=": value == wanted, "!=": value != wanted, "<": value < wanted,
                "<=": value <= wanted, ">": value > wanted, ">=": value >= wanted}[operator]
    text = value if isinstance(value, str) else json.dumps(value)
    pattern = "^" + ".*".join(re.escape(part) for part in wanted.split("*")) + "$"
    equal = re.match(pattern, text, re.DOTALL) is not None
    return equal if operator == "=" else not equal
