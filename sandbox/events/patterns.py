"""EventBridge event patterns: validate a pattern once, then match events against it quickly.

EventBridge runs AWS's event-ruler (aws/event-ruler on GitHub), so this follows its rule compiler
(`JsonRuleCompiler`: the checks, their order and their messages, which are what AWS answers) and
its array-consistent matcher (`ACFinder`). Both sides are flattened to dot-joined paths, so
`{"a": {"b": ...}}` and `{"a.b": ...}` name the same field. A leaf of the event is a string,
number, boolean or null; objects and arrays are only ways to reach leaves, which is why
`exists` only sees leaves. Two fields of one match must come from the same element of any array
they share. Numbers compare as event-ruler's ComparableNumber does: within -5e9..5e9, to six
decimal places.
"""

from __future__ import annotations

import ipaddress
import json
import math
import operator
import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

Test = Callable[[Any], bool]

_PREFIX = "Event pattern is not valid. Reason: "
_ONE_KEY = "Only one key allowed in match expression"
_TOO_MANY = "Too many elements in numeric expression"
_END = object()  # the end of a JSON array, as a token
_ABSENT = object()  # what {"exists": false} compiles to: a condition on the name, not a value
_LIMIT = Decimal("5E9")  # ComparableNumber's range
_COMPLEXITY_LIMIT = 10  # wildcard prefixes one value may keep alive at once (see _complexity)
_OR = "$or"
# EventPattern's length constraint in the service model (PutRule, TestEventPattern). Accounts
# start with an adjustable quota of 2,048 characters below it, which the sandbox does not apply.
MAX_PATTERN_LENGTH = 4096
# What TestEventPattern's Event must carry, or AWS answers `ValidationException: Parameter Event
# is not valid.` (recorded against AWS for a plain string, an array, and an object without them).
# The API reference also lists `resources`, yet AWS matched an event without it (recorded).
EVENT_FIELDS = ("id", "account", "source", "time", "region", "detail-type")
_COMPARISONS = {"=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt,
                ">=": operator.ge}
_RESERVED_IN_OR = {
    "exactly", "equals-ignore-case", "prefix", "suffix", "anything-but", "exists", "wildcard",
    "numeric", "cidr", "=", "<", "<=", ">", ">=", "regex", "not-wildcard",
    "not-equals-ignore-case", "date-after", "date-on-or-after", "date-before",
    "date-on-or-before", "in-date-range", "ip-address-in-range", "ip-address-not-in-range",
}
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6 = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")
_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")  # what Jackson quotes as an unrecognized token


class InvalidEventPatternError(ValueError):
    """A pattern AWS would refuse; `message` is AWS's InvalidEventPatternException message."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.message = _PREFIX + reason
        super().__init__(self.message)


class _Obj(list):
    """A JSON object read from text, as its (key, value) pairs in order. AWS reads patterns with
    a streaming parser, so a repeated key is seen twice: a later array replaces the earlier one,
    and two objects under one key both count."""


def _pairs(value: Any) -> list[tuple[str, Any]]:
    return list(value.items()) if isinstance(value, dict) else list(value)


def _is_obj(value: Any) -> bool:
    return isinstance(value, (dict, _Obj))


def _is_array(value: Any) -> bool:
    return isinstance(value, list) and not isinstance(value, _Obj)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(token: Any) -> str:
    """The token's text as AWS's JSON parser shows it in a message."""
    if token is _END:
        return "]"
    if _is_obj(token):
        return "{"
    if isinstance(token, list):
        return "["
    return token if isinstance(token, str) else json.dumps(token)


# --- numbers and IP addresses -------------------------------------------------------------

def _comparable(number: Any) -> int | None:
    """The number in millionths, or None where event-ruler cannot compare it numerically."""
    if isinstance(number, float) and not math.isfinite(number):
        return None
    exact = Decimal(number if isinstance(number, int) else repr(number))
    return math.floor(exact * 1_000_000) if abs(exact) <= _LIMIT else None


def _pattern_number(number: Any) -> int:
    key = _comparable(number)
    if key is None:
        raise InvalidEventPatternError("Value must be between -5.0E9 and 5.0E9, inclusive")
    return key


def _ip(text: str) -> tuple[int, int] | None:
    """(version, address) if text is an IP address literal as event-ruler reads one."""
    if not (_IPV4.fullmatch(text) or _IPV6.fullmatch(text)):
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.version, int(address)


def _ip_range(low: tuple[int, int], high: int) -> Test:
    version, bottom = low

    def test(value: Any) -> bool:
        address = _ip(value) if isinstance(value, str) else None
        return address is not None and address[0] == version and bottom <= address[1] <= high
    return test


# --- one function per operator ------------------------------------------------------------

def _exact_strings(strings: set[str]) -> Test:
    return lambda value: isinstance(value, str) and value in strings


def _exact_number(number: Any) -> Test:
    """A number in a pattern matches equal numbers, and (outside the comparable range) the
    same JSON text, as AWS matches an account number written as a number."""
    key, text = _comparable(number), json.dumps(number)
    return lambda value: _is_num(value) and (
        (key is not None and _comparable(value) == key) or json.dumps(value) == text)


def _exactly(value: Any, extra: bool) -> Test:
    if not isinstance(value, str):
        raise InvalidEventPatternError("exact match pattern must be a string")
    _no_extra(extra, _ONE_KEY)
    return _exact_strings({value})


def _affix(kind: str) -> Callable[[Any, bool], Test]:
    """`prefix` or `suffix`: of a string, or of `{"equals-ignore-case": "..."}` ignoring case."""
    def compile_affix(value: Any, extra: bool) -> Test:
        fold = _is_obj(value)
        if fold:
            value = _ignore_case_operand(value, kind.capitalize()).lower()
        elif not isinstance(value, str):
            raise InvalidEventPatternError(f"{kind} match pattern must be a string")
        _no_extra(extra, _ONE_KEY)
        has = str.startswith if kind == "prefix" else str.endswith
        return lambda v: isinstance(v, str) and has(v.lower() if fold else v, value)
    return compile_affix


def _ignore_case_operand(value: Any, kind: str) -> str:
    """The string of `{"prefix"|"suffix": {"equals-ignore-case": "..."}}`."""
    pairs = _pairs(value)
    if not pairs:
        raise InvalidEventPatternError(f"{kind} expression name not found")
    name, text = pairs[0]
    if name != "equals-ignore-case":
        raise InvalidEventPatternError(f"Unsupported {kind.lower()} pattern: {name}")
    if not isinstance(text, str):
        raise InvalidEventPatternError("equals-ignore-case match pattern must be a string")
    _no_extra(len(pairs) > 1, _ONE_KEY)
    return text


def _equals_ignore_case(value: Any, extra: bool) -> Test:
    if not isinstance(value, str):
        raise InvalidEventPatternError("equals-ignore-case match pattern must be a string")
    _no_extra(extra, _ONE_KEY)
    text = value.lower()
    return lambda v: isinstance(v, str) and v.lower() == text


def _wildcard_parts(text: str) -> list[str]:
    """The literal parts between unescaped `*`s. Positions in messages count UTF-8 bytes of the
    value in quotes, as AWS reports them; `\\*` is a star and `\\\\` a backslash."""
    raw, parts, part, i = f'"{text}"'.encode(errors="surrogatepass"), [], bytearray(), 0
    while i < len(raw):
        byte, following = raw[i], raw[i + 1] if i + 1 < len(raw) else None
        if byte == ord("*"):
            if following == ord("*"):
                raise InvalidEventPatternError(f"Consecutive wildcard characters at pos {i}")
            parts.append(part)
            part = bytearray()
        elif byte == ord("\\"):
            if following not in (ord("*"), ord("\\")):
                raise InvalidEventPatternError(f"Invalid escape character at pos {i}")
            part.append(following)
            i += 1
        else:
            part.append(byte)
        i += 1
    parts.append(part)
    decoded = [bytes(p).decode(errors="surrogatepass") for p in parts]
    decoded[0] = decoded[0][1:]  # the quotes (first and last may be the same part)
    decoded[-1] = decoded[-1][:-1]
    return decoded


def _wildcard_matches(parts: list[str], value: str) -> bool:
    """Leftmost-first placement of each literal part is exact for `*`-only patterns."""
    first, last = parts[0], parts[-1]
    if len(parts) == 1:
        return value == first
    if len(value) < len(first) + len(last) or not (
            value.startswith(first) and value.endswith(last)):
        return False
    position, end = len(first), len(value) - len(last)
    for middle in parts[1:-1]:
        found = value.find(middle, position, end)
        if found < 0:
            return False
        position = found + len(middle)
    return True


def _wildcard(value: Any, extra: bool) -> Test:
    if not isinstance(value, str):
        raise InvalidEventPatternError("wildcard match pattern must be a string")
    parts = _wildcard_parts(value)
    _no_extra(extra, _ONE_KEY)
    return lambda v: isinstance(v, str) and _wildcard_matches(parts, v)


def _numeric(value: Any, extra: bool) -> Test:
    """`{"numeric": [op, n]}` or `[">"|">=", n, "<"|"<=", m]`; only JSON numbers match."""
    if not _is_array(value):
        raise InvalidEventPatternError("Value of numeric must be an array.")
    tokens = iter([*value, _END])
    op = next(tokens)
    if not isinstance(op, str):
        raise InvalidEventPatternError(f"Invalid member in numeric match: {_text(op)}")
    if op not in _COMPARISONS:
        raise InvalidEventPatternError(f"Unrecognized numeric range operator: {op}")
    bounds = [(op, next(tokens))]
    if not _is_num(bounds[0][1]):
        raise InvalidEventPatternError(f"Value of {'equals' if op == '=' else op} must be numeric")
    top_op = next(tokens)
    if top_op is not _END:
        _no_extra(op not in (">", ">="), _TOO_MANY)
        if not isinstance(top_op, str):
            raise InvalidEventPatternError(f"Bad value in numeric range: {_text(top_op)}")
        if top_op not in ("<", "<="):
            raise InvalidEventPatternError(f"Bad numeric range operator: {top_op}")
        bounds.append((top_op, next(tokens)))
        if not _is_num(bounds[1][1]):
            raise InvalidEventPatternError(f"Value of {top_op} must be numeric")
        _no_extra(next(tokens) is not _END, "Too many terms in numeric range expression")
    checks = [(_COMPARISONS[op], _pattern_number(number)) for op, number in bounds]
    if len(checks) == 2 and checks[0][1] >= checks[1][1]:
        raise InvalidEventPatternError("Bottom must be less than top")
    _no_extra(extra, _TOO_MANY)

    def test(v: Any) -> bool:
        key = _comparable(v) if _is_num(v) else None
        return key is not None and all(check(key, bound) for check, bound in checks)
    return test


def _cidr(value: Any, extra: bool) -> Test:
    if not isinstance(value, str):
        raise InvalidEventPatternError("prefix match pattern must be a string")  # sic, as AWS
    parts = value.split("/")
    while parts and not parts[-1]:
        parts.pop()  # Java's split drops trailing empty strings
    if len(parts) != 2:
        raise InvalidEventPatternError("Malformed CIDR, one '/' required")
    if not re.fullmatch(r"[+-]?[0-9]+", parts[1]) or abs(int(parts[1])) >= 2**31:  # Java int
        raise InvalidEventPatternError("Malformed CIDR, mask bits must be an integer")
    mask = int(parts[1])
    if mask < 0:
        raise InvalidEventPatternError("Malformed CIDR, mask bits must not be negative")
    if not (_IPV4.fullmatch(parts[0]) or _IPV6.fullmatch(parts[0])):
        raise InvalidEventPatternError(f"Nonstandard IP address: {parts[0]}")
    base = _ip(parts[0])
    if base is None:
        raise InvalidEventPatternError(f"Invalid IP address: {parts[0]}")
    bits = 32 if base[0] == 4 else 128
    if mask > bits - 1:
        raise InvalidEventPatternError(f"IPv{base[0]} mask bits must be < {bits}")
    _no_extra(extra, _ONE_KEY)
    host = (1 << (bits - mask)) - 1  # the masked network: 10.1.2.3/16 is 10.1.0.0-10.1.255.255
    network = base[1] & ~host
    return _ip_range((base[0], network), network | host)


def _exists(value: Any, extra: bool) -> Any:
    if not isinstance(value, bool):
        raise InvalidEventPatternError("exists match pattern must be either true or false.")
    _no_extra(extra, _ONE_KEY)
    return (lambda v: True) if value else _ABSENT


def _anything_but(value: Any, extra: bool) -> Test:
    """Matches any leaf except the ones named: also null, booleans and the other type."""
    kind = None
    if _is_obj(value):
        pairs = _pairs(value)
        if not pairs:
            raise InvalidEventPatternError("Anything-But expression name not found")
        kind, value = pairs[0]
        if kind not in ("equals-ignore-case", "prefix", "suffix", "wildcard"):
            raise InvalidEventPatternError(f"Unsupported anything-but pattern: {kind}")
        extra = extra or len(pairs) > 1
    if not (_is_array(value) or isinstance(value, str) or _is_num(value)):
        raise InvalidEventPatternError(
            "Value of anything-but must be an array or single string/number value.")
    items = value if _is_array(value) else [value]
    excluded = _anything_but_values(items, _is_array(value)) if kind is None else (
        _anything_but_strings(kind, items))
    _no_extra(extra, _TOO_MANY)
    return lambda v: not excluded(v)


def _anything_but_values(items: list[Any], is_list: bool) -> Test:
    strings, numbers = set(), set()
    for item in items:
        if isinstance(item, str):
            strings.add(item)
        elif _is_num(item):
            numbers.add(_pattern_number(item))
        else:
            raise InvalidEventPatternError(
                "Inside anything but list, start|null|boolean is not supported.")
    if is_list and bool(strings) == bool(numbers):
        raise InvalidEventPatternError("Inside anything but list, either all values are number "
                                       "or string, mixed type is not supported")
    if strings:
        return _exact_strings(strings)
    return lambda v: _is_num(v) and _comparable(v) in numbers


def _anything_but_strings(kind: str, items: list[Any]) -> Test:
    for item in items:
        if not isinstance(item, str):
            raise InvalidEventPatternError({
                "equals-ignore-case": "Inside anything-but/equals-ignore-case list, "
                                      "number|start|null|boolean is not supported.",
                "wildcard": "wildcard match pattern must be a string",
            }.get(kind, "prefix/suffix match pattern must be a string"))
        if kind in ("prefix", "suffix") and not item:
            raise InvalidEventPatternError("Null prefix/suffix not allowed")
    if kind == "equals-ignore-case":
        lowered = {item.lower() for item in items}
        return lambda v: isinstance(v, str) and v.lower() in lowered
    if kind == "wildcard":
        parts = [_wildcard_parts(item) for item in items]
        return lambda v: isinstance(v, str) and any(_wildcard_matches(p, v) for p in parts)
    texts = tuple(items)
    if kind == "prefix":
        return lambda v: isinstance(v, str) and v.startswith(texts)
    return lambda v: isinstance(v, str) and v.endswith(texts)


_OPERATORS: dict[str, Callable[[Any, bool], Any]] = {
    "exactly": _exactly, "prefix": _affix("prefix"), "suffix": _affix("suffix"),
    "numeric": _numeric,
    "anything-but": _anything_but, "exists": _exists, "cidr": _cidr,
    "equals-ignore-case": _equals_ignore_case, "wildcard": _wildcard,
}


def _no_extra(extra: bool, reason: str) -> None:
    if extra:
        raise InvalidEventPatternError(reason)


# --- the pattern's structure ----------------------------------------------------------------

class _Field:
    """What one field of a pattern accepts: any of `tests` on a leaf, or (with `absent_ok`)
    no leaf at that path at all. `wildcards` feed the complexity check."""

    def __init__(self, tests: list[Test], absent_ok: bool, wildcards: list[str]) -> None:
        self.tests, self.absent_ok, self.wildcards = tests, absent_ok, wildcards

    def test(self, value: Any) -> bool:
        return any(test(value) for test in self.tests)


def _wildcards_of(name: str, operand: Any) -> list[str]:
    """The wildcard patterns an operator holds: `wildcard`'s, and `anything-but`'s, which
    event-ruler's complexity check counts alike."""
    if name == "wildcard":
        return [operand]
    if name == "anything-but" and _is_obj(operand) and _pairs(operand)[0][0] == "wildcard":
        inner = _pairs(operand)[0][1]
        return list(inner) if _is_array(inner) else [inner]
    return []


def _field(values: list[Any]) -> _Field:
    tests: list[Test] = []
    strings: set[str] = set()
    wildcards: list[str] = []
    absent_ok = False
    for value in values:
        if _is_obj(value):
            pairs = _pairs(value)
            if not pairs:
                raise InvalidEventPatternError("Match expression name not found")
            name, operand = pairs[0]
            if name not in _OPERATORS:
                raise InvalidEventPatternError(f"Unrecognized match type {name}")
            test = _OPERATORS[name](operand, len(pairs) > 1)
            wildcards += _wildcards_of(name, operand)
            if test is _ABSENT:
                absent_ok = True
            else:
                tests.append(test)
        elif isinstance(value, str):
            address = _ip(value)
            if address:
                tests.append(_ip_range(address, address[1]))
            else:
                strings.add(value)
        elif _is_num(value):
            tests.append(_exact_number(value))
        elif value is None or isinstance(value, bool):
            tests.append(lambda v, literal=value: v is literal)
        else:
            raise InvalidEventPatternError(
                "Match value must be String, number, true, false, or null")
    if not values:
        raise InvalidEventPatternError("Empty arrays are not allowed")
    if strings:
        tests.insert(0, _exact_strings(strings))
    return _Field(tests, absent_ok, wildcards)


def _parse_object(obj: Any, path: list[str], branches: list[dict[str, _Field]],
                  in_or: bool) -> None:
    """Adds obj's fields to every branch, in document order, as AWS's compiler does."""
    pairs = _pairs(obj)
    if not pairs:
        raise InvalidEventPatternError("Empty objects are not allowed")
    for key, value in pairs:
        if key == _OR:
            _parse_or(value, path, branches)
            continue
        if in_or and key in _RESERVED_IN_OR:
            raise InvalidEventPatternError(
                f"{key} is Ruler reserved fieldName which cannot be used inside {_OR}.")
        if _is_obj(value):
            _parse_object(value, [*path, key], branches, in_or)
        elif _is_array(value):
            field = _field(value)
            if not branches:
                branches.append({})
            for branch in branches:
                branch[".".join([*path, key])] = field
        else:
            raise InvalidEventPatternError(f'"{key}" must be an object or an array')


def _parse_or(value: Any, path: list[str], branches: list[dict[str, _Field]]) -> None:
    """Each object of `$or` continues its own copy of the branches so far."""
    if not _is_array(value):
        raise InvalidEventPatternError(f"It must be an Array followed with {_OR}.")
    before = [dict(branch) for branch in branches]
    branches.clear()
    for item in value:
        if not _is_obj(item):
            raise InvalidEventPatternError(
                f"Only JSON object is allowed in array of {_OR} relationship.")
        forked = [dict(branch) for branch in before] or [{}]
        _parse_object(item, path, forked, True)
        branches.extend(forked)
    if len(value) < 2:
        raise InvalidEventPatternError(f"There must have at least 2 Objects in {_OR} relationship.")


def _complexity(patterns: list[str]) -> int:
    """How many wildcard-pattern states one value can keep alive at once, at worst: what
    event-ruler's MachineComplexityEvaluator measures and EventBridge caps. Each pattern is a
    small automaton over its quoted value (None for a star); a walk over every set of states
    some value can reach finds the largest, counting a star's loop as soon as it is enterable.
    """
    tokens = [_wildcard_tokens(text) for text in patterns]
    alphabet = {t for pattern in tokens for t in pattern if t is not None} | {""}

    def step(p: int, k: int, char: str) -> list[tuple[int, int]]:
        pattern, nexts = tokens[p], []
        if k > 0 and pattern[k - 1] is None:
            nexts.append((p, k))  # a star's loop takes any character
        if pattern[k] is None:
            nexts.append((p, k + 1))
            if pattern[k + 1] == char:
                nexts.append((p, k + 2))
        elif pattern[k] == char:
            nexts.append((p, k + 1))
        return nexts

    start = frozenset((p, 0) for p in range(len(tokens)))
    seen, queue, worst = {start}, [start], 0
    while queue and worst <= _COMPLEXITY_LIMIT:
        states = queue.pop()
        for char in alphabet:
            reached = frozenset(s for p, k in states if k < len(tokens[p])
                                for s in step(p, k, char))
            loops = {(p, k + 1) for p, k in reached
                     if k < len(tokens[p]) and tokens[p][k] is None} - reached
            worst = max(worst, len(reached) + len(loops))
            if reached not in seen:
                seen.add(reached)
                queue.append(reached)
    return worst


def _wildcard_tokens(text: str) -> list[str | None]:
    """The quoted value as characters, with None for each star."""
    parts = _wildcard_parts(text)
    tokens: list[str | None] = ['"', *parts[0]]
    for part in parts[1:]:
        tokens += [None, *part]
    return [*tokens, '"']


# --- compiling and matching -----------------------------------------------------------------

def _loads(text: str) -> Any:
    """Parses pattern text; errors read as AWS's parser (Jackson) words them."""
    stripped = text.lstrip(" \t\r\n")
    if not stripped.startswith("{"):
        word = _WORD.match(stripped)
        if word and word.group() not in ("true", "false", "null"):
            raise InvalidEventPatternError(_unrecognized(word.group()))
        if stripped and stripped[0] not in '["-0123456789tfn':
            raise InvalidEventPatternError(_unexpected(stripped[0], "expected a value"))
        raise InvalidEventPatternError("Filter is not an object")
    try:  # like AWS's streaming parser, stop after the object
        return json.JSONDecoder(object_pairs_hook=_Obj, parse_constant=_non_numeric).raw_decode(
            stripped)[0]
    except json.JSONDecodeError as error:
        raise InvalidEventPatternError(_json_reason(error)) from None


def _non_numeric(name: str) -> Any:
    raise InvalidEventPatternError(f"Non-standard token '{name}': enable "
                                   "`JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow")


def _unrecognized(word: str) -> str:
    return (f"Unrecognized token '{word}': was expecting (JSON String, Number, Array, Object "
            "or token 'null', 'true' or 'false')")


def _unexpected(char: str, expecting: str) -> str:
    return f"Unexpected character ('{char}' (code {ord(char)})): {expecting}"


def _json_reason(error: json.JSONDecodeError) -> str:
    rest, opened = error.doc[error.pos:], _innermost(error.doc[:error.pos])
    if error.msg.startswith("Unterminated string"):
        return "Unexpected end-of-input: was expecting closing quote for a string value"
    if not rest:
        return f"Unexpected end-of-input: expected close marker for {opened}"
    if error.msg.startswith("Invalid control character"):
        return (f"Illegal unquoted character ((CTRL-CHAR, code {ord(rest[0])})): has to be "
                "escaped using backslash to be included in string value")
    if error.msg.startswith("Invalid \\escape") and len(rest) > 1:
        return f"Unrecognized character escape '{rest[1]}' (code {ord(rest[1])})"
    word = _WORD.match(rest)
    if error.msg == "Expecting value" and word:
        return _unrecognized(word.group())
    return _unexpected(rest[0], {
        "Expecting value": "expected a value",
        "Expecting property name enclosed in double quotes":
            "was expecting double-quote to start field name",
        "Expecting ':' delimiter": "was expecting a colon to separate field name and value",
        "Expecting ',' delimiter": f"was expecting comma to separate {opened} entries",
    }.get(error.msg, error.msg))


def _innermost(text: str) -> str:
    """Whether the JSON text ends inside an "Object" or an "Array"."""
    stack, in_string, escaped = [], False, False
    for char in text:
        if escaped:
            escaped = False
        elif in_string:
            escaped, in_string = char == "\\", char != '"'
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return "Array" if stack and stack[-1] == "[" else "Object"


class EventPattern:
    """A compiled pattern: the alternatives `$or` makes, each a sorted list of fields."""

    def __init__(self, branches: list[dict[str, _Field]]) -> None:
        self._branches = [sorted(branch.items()) for branch in branches]

    def matches(self, event: dict) -> bool:
        if not isinstance(event, dict):
            raise TypeError(f"an event is a dict, not {type(event).__name__}")
        leaves = _flatten(event)
        return any(_match(branch, 0, leaves, {}) for branch in self._branches)


def compile_pattern(pattern: dict | str) -> EventPattern:
    """Validates pattern as AWS does (raising InvalidEventPatternError) and compiles it."""
    if isinstance(pattern, str):
        pattern = _loads(pattern)
    if not _is_obj(pattern):
        raise InvalidEventPatternError("Filter is not an object")
    branches: list[dict[str, _Field]] = []
    _parse_object(pattern, [], branches, False)
    by_path: dict[str, set[str]] = {}
    for branch in branches:
        for path, field in branch.items():
            by_path.setdefault(path, set()).update(field.wildcards)
    if any(_complexity(sorted(w)) > _COMPLEXITY_LIMIT for w in by_path.values() if w):
        raise InvalidEventPatternError(
            "Rule is too complex - try using fewer wildcard characters or fewer repeating "
            "character sequences after a wildcard character")
    return EventPattern(branches)


def is_test_event(event: Any) -> bool:
    """Whether TestEventPattern accepts `event` as an event."""
    return isinstance(event, dict) and all(name in event for name in EVENT_FIELDS)


def length_error(text: str) -> str | None:
    """AWS's ValidationException message for a pattern over the length limit, else None."""
    if len(text) <= MAX_PATTERN_LENGTH:
        return None
    return (f"1 validation error detected: Value '{text}' at 'eventPattern' failed to satisfy "
            f"constraint: Member must have length less than or equal to {MAX_PATTERN_LENGTH}")


@lru_cache(maxsize=1024)
def _compiled(text: str) -> EventPattern:
    return compile_pattern(text)


def matches(pattern: dict | str, event: dict) -> bool:
    """Compiles (cached by the pattern's JSON text) and matches in one call."""
    return _compiled(pattern if isinstance(pattern, str) else json.dumps(pattern)).matches(event)


Membership = dict[int, int]  # array id -> element index on the way to a leaf


def _flatten(event: dict) -> dict[str, list[tuple[Any, Membership]]]:
    """Every leaf of the event by dot-joined path, with the array elements it sits in."""
    leaves: dict[str, list[tuple[Any, Membership]]] = {}
    arrays = 0

    def walk(value: Any, path: str, membership: Membership) -> None:
        nonlocal arrays
        if isinstance(value, dict):
            for key, child in value.items():
                walk(child, f"{path}.{key}" if path else key, membership)
        elif isinstance(value, list):
            arrays += 1
            array = arrays
            for index, child in enumerate(value):
                walk(child, path, {**membership, array: index})
        else:
            leaves.setdefault(path, []).append((value, membership))
    walk(event, "", {})
    return leaves


def _join(a: Membership, b: Membership) -> Membership | None:
    """Both memberships together, or None if they name different elements of one array."""
    if not b:
        return a
    if not a:
        return b
    if any(a.get(array, index) != index for array, index in b.items()):
        return None
    return {**a, **b}


def _match(fields: list[tuple[str, _Field]], i: int,
           leaves: dict[str, list[tuple[Any, Membership]]], membership: Membership) -> bool:
    """Fields in sorted path order, as event-ruler walks them; `exists: false` holds when no
    leaf at the path is consistent with the array elements matched so far."""
    if i == len(fields):
        return True
    path, field = fields[i]
    found = leaves.get(path, ())
    if field.absent_ok and all(_join(membership, m) is None for _, m in found) and (
            _match(fields, i + 1, leaves, membership)):
        return True
    for value, leaf_membership in found:
        joined = _join(membership, leaf_membership)
        if joined is not None and field.test(value) and _match(fields, i + 1, leaves, joined):
            return True
    return False
