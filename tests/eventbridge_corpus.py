"""The AWS-recorded EventBridge pattern cases in ../shared/conformance/eventbridge-patterns/:
read by the pattern engine's conformance test and by the sandbox endpoint's."""

import json
from pathlib import Path

import json5
import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "conformance" / "eventbridge-patterns"
PAIR = "complex_multi_key_event"  # an event file and a pattern file naming a key twice

if not CORPUS.is_dir():
    pytest.skip(f"the AWS-recorded corpus is missing: expected it at {CORPUS} "
                "(../shared/conformance/eventbridge-patterns beside the repository)",
                allow_module_level=True)

CASES = [*sorted(path.stem for path in CORPUS.glob("*.json5")), PAIR]


def aws_errors() -> dict[str, str]:
    """The first line of AWS's message for each `_EXC` case, from the recorded snapshot."""
    snapshot = json.loads((CORPUS / "aws-recorded-errors.snapshot.json").read_text())
    errors = {}
    for key, recording in snapshot.items():
        name = key.partition("::test_event_pattern[")[2].removesuffix("]")
        content = recording["recorded-content"].get(name, {})
        if "exception_message" in content:
            errors[name] = content["exception_message"]["Error"]["Message"].splitlines()[0]
    return errors


AWS_ERRORS = aws_errors()


def load(name: str) -> tuple[str, dict]:
    """(pattern as JSON text, event) of one case."""
    if name == PAIR:
        return ((CORPUS / f"{PAIR}_pattern.json").read_text(),
                json.loads((CORPUS / f"{PAIR}.json").read_text()))
    case = json5.loads((CORPUS / f"{name}.json5").read_text())
    return json.dumps(case["EventPattern"]), case["Event"]
