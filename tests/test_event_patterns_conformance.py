"""The 156 cases recorded against real EventBridge (TestEventPattern), run on our pattern engine.

A case named `*_NEG` did not match on AWS, `*_EXC` was refused as an invalid pattern (we must
say what AWS said, first line), any other matched. AWS received each pattern as JSON text, so
that is what we give compile_pattern too.
"""

import json
from pathlib import Path

import json5
import pytest

from sandbox.event_patterns import InvalidEventPatternError, compile_pattern, matches

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


def test_the_corpus_is_whole() -> None:
    assert len(CASES) == 156
    assert {name for name in CASES if name.endswith("_EXC")} <= AWS_ERRORS.keys()


@pytest.mark.parametrize("name", CASES)
def test_aws_answer(name: str) -> None:
    pattern_text, event = load(name)
    if name.endswith("_EXC"):
        with pytest.raises(InvalidEventPatternError) as refused:
            compile_pattern(pattern_text)
        assert str(refused.value).splitlines()[0] == AWS_ERRORS[name]
    else:
        assert matches(pattern_text, event) is (not name.endswith("_NEG"))


def malformed_texts() -> list[tuple[str, str]]:
    """(pattern text, first line of AWS's message) AWS recorded for patterns that are not a
    JSON object; the text is the test id in the snapshot's key."""
    snapshot = json.loads((CORPUS / "aws-recorded-errors.snapshot.json").read_text())
    return [(key.partition("::test_invalid_json_event_pattern[")[2].removesuffix("]"),
             recording["recorded-content"]["invalid-pattern"]["Error"]["Message"].splitlines()[0])
            for key, recording in snapshot.items() if "::test_invalid_json_event_pattern[" in key]


@pytest.mark.parametrize(("text", "aws_message"), malformed_texts())
def test_aws_answer_to_a_pattern_that_is_not_a_json_object(text: str, aws_message: str) -> None:
    with pytest.raises(InvalidEventPatternError) as refused:
        compile_pattern(text)
    assert str(refused.value) == aws_message
