"""The AWS-recorded EventBridge pattern cases (LocalStack's recordings against real EventBridge):
read by the pattern engine's conformance test and by the sandbox endpoint's.

They are not part of this repository: they are read from the folder `EVENTBRIDGE_CORPUS` names,
or from ../shared/conformance/eventbridge-patterns beside the repository. Without them the
tests that need them skip, each saying why; nothing else is skipped.
"""

import json
import os
from pathlib import Path

import json5
import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("EVENTBRIDGE_CORPUS")
              or REPO.parent / "shared" / "conformance" / "eventbridge-patterns")
PAIR = "complex_multi_key_event"  # an event file and a pattern file naming a key twice
EXPECTED_CASES = 156
MISSING = (f"the AWS-recorded pattern corpus is not at {CORPUS} (set EVENTBRIDGE_CORPUS to "
           "its folder, or put ../shared/conformance/eventbridge-patterns beside the repository)")
PRESENT = CORPUS.is_dir()

CASES = [*sorted(path.stem for path in CORPUS.glob("*.json5")), PAIR] if PRESENT else []


def needs_corpus() -> None:
    """Skip the calling test, saying why, when the corpus is not there."""
    if not PRESENT:
        pytest.skip(MISSING)


def aws_errors() -> dict[str, str]:
    """The first line of AWS's message for each `_EXC` case, from the recorded snapshot."""
    if not PRESENT:
        return {}
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
