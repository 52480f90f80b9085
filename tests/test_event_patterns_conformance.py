"""The 156 cases recorded against real EventBridge (TestEventPattern), run on our pattern engine.

A case named `*_NEG` did not match on AWS, `*_EXC` was refused as an invalid pattern (we must
say what AWS said, first line), any other matched. AWS received each pattern as JSON text, so
that is what we give compile_pattern too.
"""

import json

import pytest
from eventbridge_corpus import AWS_ERRORS, CASES, CORPUS, EXPECTED_CASES, MISSING, PRESENT, load

from sandbox.events.patterns import InvalidEventPatternError, compile_pattern, matches

pytestmark = pytest.mark.skipif(not PRESENT, reason=MISSING)


def test_the_corpus_is_whole() -> None:
    assert len(CASES) == EXPECTED_CASES
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
    if not PRESENT:
        return []
    snapshot = json.loads((CORPUS / "aws-recorded-errors.snapshot.json").read_text())
    return [(key.partition("::test_invalid_json_event_pattern[")[2].removesuffix("]"),
             recording["recorded-content"]["invalid-pattern"]["Error"]["Message"].splitlines()[0])
            for key, recording in snapshot.items() if "::test_invalid_json_event_pattern[" in key]


@pytest.mark.parametrize(("text", "aws_message"), malformed_texts())
def test_aws_answer_to_a_pattern_that_is_not_a_json_object(text: str, aws_message: str) -> None:
    with pytest.raises(InvalidEventPatternError) as refused:
        compile_pattern(text)
    assert str(refused.value) == aws_message
