"""What a rule target receives instead of the event: `Input`, `InputPath` or `InputTransformer`.

Pure: the bus reads a target's properties through `target_input` (raising `InputError` for what
PutTargets refuses, so a bad template stops the sandbox at start), and renders each event through
`TargetInput.render` (raising `InputError` for a payload that cannot be delivered, which the
delivery turns into a non-retryable failure: straight to the target's DLQ with the reason).

Facts, from AWS's documentation ("Amazon EventBridge input transformation", the API reference's
`Target` and `InputTransformer`, the service model's constraints) and from deliveries recorded
against AWS (LocalStack's `test_events_inputs.snapshot.json`, marked validated on AWS):
- At most one of Input, InputPath and InputTransformer; AWS's PutTargets message is recorded.
- Input is JSON text of at most 8,192 characters; InputPath a JSON path of at most 256.
- InputPathsMap: at most 100 entries, keys `[A-Za-z0-9_-]+` of 1-256 characters (so no key can
  take the reserved `aws.events` names), values JSON paths of at most 256 characters. AWS does not
  validate the paths themselves ("There is no validation when creating JSON path"): a path that
  matches nothing defines no variable, and its placeholder becomes an empty string (recorded:
  `"... detail <command>"` gives `"... detail "`, and `"command": <command>` gives
  `"command": ""`).
- InputTemplate: 1-8,192 characters; a placeholder naming neither a key nor a predefined variable
  is refused (recorded: "InputTemplate for target <id> contains invalid placeholder <name>."); in
  a JSON template a placeholder cannot be an object key.
- The paths EventBridge evaluates: dot notation with letters, digits, dashes, underscores and
  slashes, array indices, and `*` wildcards (which give the array of what they match).
- Quoting: outside a JSON string a placeholder becomes the value's JSON (a string in quotes);
  inside one a string goes in as it is ("EventBridge doesn't escape values extracted by Input
  Path"), an object or array as its JSON with the inner quotes removed; in a plain-text template
  (not starting with `{`, `[` or `"`) a string goes in without quotes. A JSON template whose
  filled-in text is not JSON (a value carrying a quote into a string) cannot be delivered.
- A string template is delivered as written, quotes included (recorded: the SQS body is
  `"Event of ... update-account"`); an InputPath matching a string delivers it as JSON (`"baz"`).
- Predefined variables: `aws.events.rule-arn`, `aws.events.rule-name`,
  `aws.events.event.ingestion-time` (ISO 8601), `aws.events.event.json` (the event), and
  `aws.events.event`, the event without `detail` and with `detail-type` spelled `detailType` and
  `time` the ingestion time (recorded).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_INPUT = 8192
MAX_PATH = 256
MAX_PATHS = 100
MAX_KEY = 256
RESERVED_PREFIX = "aws.events"
_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_STEP = re.compile(r"\.([A-Za-z0-9_\-/]+|\*)|\[(\d+|\*)\]")
_MISSING = ""  # what a variable whose path matched nothing stands for


class InputError(ValueError):
    """Refused input: `prop` is the target property at fault, `message` what AWS says."""

    def __init__(self, prop: str, message: str) -> None:
        super().__init__(message)
        self.prop = prop
        self.message = message


@dataclass(frozen=True)
class Delivery:
    """What the predefined variables say about one event's delivery."""

    rule_arn: str
    rule_name: str
    ingested: datetime


def evaluate(path: str, event: Any) -> tuple[bool, Any]:
    """(found, value) of a JSON path in `event`; a wildcard gives the list of its matches."""
    if not path.startswith("$"):
        return False, None
    steps, position = [], 1
    while position < len(path):
        step = _STEP.match(path, position)
        if step is None:
            return False, None
        steps.append(step.group(1) or step.group(2))
        position = step.end()
    values, spread = [event], False
    for step in steps:
        values, spread = _step(values, step), spread or step == "*"
        if not values:
            return spread, [] if spread else None
    return True, values if spread else values[0]


def _step(values: list[Any], step: str) -> list[Any]:
    found = []
    for value in values:
        if step == "*":
            found += list(value.values()) if isinstance(value, dict) else (
                value if isinstance(value, list) else [])
        elif isinstance(value, dict) and step in value:
            found.append(value[step])
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            found.append(value[int(step)])
    return found


class TargetInput:
    """The whole event, as EventBridge sends it when a target says nothing else."""

    def render(self, event: dict[str, Any], delivery: Delivery) -> str:
        return json.dumps(event)


@dataclass(frozen=True)
class ConstantInput(TargetInput):
    text: str

    def render(self, event: dict[str, Any], delivery: Delivery) -> str:
        return self.text


@dataclass(frozen=True)
class PathInput(TargetInput):
    path: str

    def render(self, event: dict[str, Any], delivery: Delivery) -> str:
        return json.dumps(evaluate(self.path, event)[1])


@dataclass(frozen=True)
class Transformer(TargetInput):
    paths: dict[str, str]
    template: str

    def render(self, event: dict[str, Any], delivery: Delivery) -> str:
        variables = {**predefined(event, delivery), **{
            key: value for key, (found, value) in
            ((key, evaluate(path, event)) for key, path in self.paths.items()) if found}}
        text = fill(self.template, lambda name: variables.get(name, _MISSING))
        if _is_json_template(self.template):
            try:
                json.loads(text)
            except ValueError:
                raise InputError("InputTransformer.InputTemplate",
                                 f"the transformed input is not valid JSON: {text}") from None
        return text


def predefined(event: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    ingested = delivery.ingested.strftime("%Y-%m-%dT%H:%M:%SZ")
    summary = {"id": event.get("id"), "account": event.get("account"),
               "detailType": event.get("detail-type"), "time": ingested,
               "source": event.get("source"), "region": event.get("region"),
               "resources": event.get("resources"), "version": event.get("version")}
    return {
        "aws.events.rule-arn": delivery.rule_arn,
        "aws.events.rule-name": delivery.rule_name,
        "aws.events.event.ingestion-time": ingested,
        "aws.events.event": summary,
        "aws.events.event.json": event,
    }


PREDEFINED = frozenset(predefined({}, Delivery("", "", datetime.now())))


def _is_json_template(template: str) -> bool:
    return template.lstrip()[:1] in ("{", "[")


def fill(template: str, value_of: Any) -> str:
    """The template with each placeholder replaced by its value, quoted as its place asks."""
    plain = template.lstrip()[:1] not in ("{", "[", '"')
    out, last = [], 0
    for match, quoted in _placeholders(template):
        out.append(template[last:match.start()])
        out.append(_text(value_of(match.group(1)), quoted, plain))
        last = match.end()
    out.append(template[last:])
    return "".join(out)


def _text(value: Any, quoted: bool, plain: bool) -> str:
    if isinstance(value, str):
        return value if quoted or plain else json.dumps(value)
    text = json.dumps(value)
    return text.replace('"', "") if quoted and isinstance(value, dict | list) else text


def _placeholders(template: str) -> list[tuple[re.Match[str], bool]]:
    """Each placeholder with whether it stands inside a JSON string of the template."""
    found, quoted, escaped, position = [], False, False, 0
    while position < len(template):
        char = template[position]
        match = None if quoted and escaped else _PLACEHOLDER.match(template, position)
        if match:
            found.append((match, quoted))
            position = match.end()
            escaped = False
            continue
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        position += 1
    return found


def target_input(target: dict[str, Any]) -> TargetInput:
    """The target's input as PutTargets accepts it, or InputError as AWS refuses it."""
    given = [name for name in ("Input", "InputPath", "InputTransformer") if name in target]
    if len(given) > 1:
        raise InputError(given[1], "Only one of Input, InputPath, or InputTransformer must be "
                                   f"provided for target {target.get('Id')}.")
    if "Input" in target:
        return ConstantInput(_constant(target["Input"]))
    if "InputPath" in target:
        return PathInput(_path(target["InputPath"], "InputPath"))
    if "InputTransformer" in target:
        return _transformer(target["InputTransformer"], target.get("Id"))
    return TargetInput()


def _constant(text: Any) -> str:
    if not isinstance(text, str) or len(text) > MAX_INPUT:
        raise InputError("Input", f"Input must be a string of at most {MAX_INPUT} characters")
    try:
        json.loads(text)
    except ValueError:
        raise InputError("Input", "Input must be valid JSON text") from None
    return text


def _path(path: Any, prop: str) -> str:
    if not isinstance(path, str) or len(path) > MAX_PATH:
        raise InputError(prop, f"a JSON path is a string of at most {MAX_PATH} characters")
    return path


def _transformer(transformer: Any, target_id: Any) -> Transformer:
    if not isinstance(transformer, dict):
        raise InputError("InputTransformer", "InputTransformer must be an object")
    paths = transformer.get("InputPathsMap", {})
    if not isinstance(paths, dict) or len(paths) > MAX_PATHS:
        raise InputError("InputTransformer.InputPathsMap",
                         f"InputPathsMap must be an object of at most {MAX_PATHS} entries")
    for key, path in paths.items():
        where = f"InputTransformer.InputPathsMap.{key}"
        if key.startswith(RESERVED_PREFIX):
            raise InputError(where, f"InputPathsMap key {key} is reserved: keys cannot start "
                                    f"with {RESERVED_PREFIX}")
        if not _KEY.fullmatch(key) or len(key) > MAX_KEY:
            raise InputError(where, f"InputPathsMap key {key} must match [A-Za-z0-9_-]+ and "
                                    f"have at most {MAX_KEY} characters")
        _path(path, where)
    template = transformer.get("InputTemplate")
    if not isinstance(template, str) or not 1 <= len(template) <= MAX_INPUT:
        raise InputError("InputTransformer.InputTemplate",
                         f"InputTemplate is required: a string of 1 to {MAX_INPUT} characters")
    for match, _ in _placeholders(template):
        if match.group(1) not in paths and match.group(1) not in PREDEFINED:
            raise InputError("InputTransformer.InputTemplate",
                             f"InputTemplate for target {target_id} contains invalid "
                             f"placeholder {match.group(1)}.")
    _check_json_template(template)
    return Transformer(dict(paths), template)


def _check_json_template(template: str) -> None:
    """A JSON template must be JSON whatever its variables hold, so no placeholder as a key."""
    if not _is_json_template(template):
        return
    try:
        json.loads(fill(template, lambda name: 0))
    except ValueError:
        raise InputError("InputTransformer.InputTemplate",
                         "InputTemplate is not valid JSON (a placeholder cannot be an object "
                         "key)") from None
