"""The sandbox's random ids: AWS's shapes, and no two alike."""

import re
import uuid

from sandbox.core import ids


def test_request_and_message_ids_are_distinct_version_4_uuids() -> None:
    many = [ids.uuid4() for _ in range(10_000)]
    assert len(set(many)) == len(many)
    for text in many[:100]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)


def test_hex_ids_have_the_asked_bits_leading_zeros_kept() -> None:
    spans = [ids.hex_id(64) for _ in range(1_000)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", span) for span in spans)
    assert any(span.startswith("0") for span in spans)  # 1 in 16: 1,000 draws all but ensure it
    assert re.fullmatch(r"[0-9a-f]{24}", ids.hex_id(96))
