"""Event-pattern behaviour users rely on beyond the AWS-recorded corpus: our own rules, arrays,
numbers, `$or`, the nested forms, and clear errors for patterns AWS would refuse."""

import pytest

from sandbox.events.patterns import (
    EventPattern,
    InvalidEventPatternError,
    compile_pattern,
    matches,
)

ORDER_CREATED = {"detail-type": ["order_created"], "source": ["order_service"]}
FULFILMENT_COMPLETED = {"detail-type": ["fulfilment_completed"], "source": ["fulfilment_service"]}


def envelope(source: str, detail_type: str, detail: dict | None = None) -> dict:
    """An event as EventBridge delivers it."""
    return {
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": detail_type,
        "source": source, "account": "123456789012", "time": "2026-11-24T14:27:32Z",
        "region": "us-east-1", "resources": [],
        "detail": detail if detail is not None else {
            "metadata": {"service": "demo-eventbridge"}, "data": {"ID": "42"}},
    }


def refusal(pattern: dict | str) -> str:
    """The reason AWS would give for refusing pattern."""
    with pytest.raises(InvalidEventPatternError) as refused:
        compile_pattern(pattern)
    return refused.value.reason


# --- our two rules ----------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "detail_type", "rule", "expected"), [
    ("order_service", "order_created", ORDER_CREATED, True),
    ("fulfilment_service", "fulfilment_completed", ORDER_CREATED, False),
    ("someone_else", "order_created", ORDER_CREATED, False),
    ("fulfilment_service", "fulfilment_completed", FULFILMENT_COMPLETED, True),
    ("order_service", "order_created", FULFILMENT_COMPLETED, False),
    ("fulfilment_service", "Fulfilment_Completed", FULFILMENT_COMPLETED, False),
])
def test_our_rules_route_each_event_to_its_services(
        source: str, detail_type: str, rule: dict, expected: bool) -> None:
    assert compile_pattern(rule).matches(envelope(source, detail_type)) is expected


def test_a_pattern_given_as_json_text_behaves_as_the_same_dict() -> None:
    text = '{"source": ["order_service"], "detail-type": ["order_created"]}'
    event = envelope("order_service", "order_created")
    assert matches(text, event) and matches(ORDER_CREATED, event)
    assert not matches(text, envelope("order_service", "other"))


# --- arrays -------------------------------------------------------------------------------------

def test_an_event_array_matches_when_any_element_matches() -> None:
    event = envelope("s", "t", {"tags": ["blue", "green"]})
    assert matches({"detail": {"tags": ["green"]}}, event)
    assert not matches({"detail": {"tags": ["red"]}}, event)


def test_fields_of_one_match_must_come_from_the_same_array_element() -> None:
    event = envelope("s", "t", {"items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]})
    assert matches({"detail": {"items": {"sku": ["b"], "qty": [2]}}}, event)
    assert not matches({"detail": {"items": {"sku": ["b"], "qty": [1]}}}, event)


def test_an_empty_event_array_has_no_value_to_match() -> None:
    event = envelope("s", "t")  # resources: []
    assert not matches({"resources": [{"prefix": ""}]}, event)
    assert matches({"resources": [{"exists": False}]}, event)


# --- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("condition", "value", "expected"), [
    ([">", 10], 10, False), ([">=", 10], 10, True), (["<", 10], 10, False),
    (["<=", 10], 10, True), (["=", 10], 10.0, True), ([">", 0, "<=", 5], 5, True),
    ([">", 0, "<=", 5], 0, False), ([">=", -1.5, "<", 2.25], -1.5, True),
    (["=", 0.1], 0.100001, False), ([">", 100], "300", False), ([">", 100], True, False),
])
def test_numeric_conditions(condition: list, value: object, expected: bool) -> None:
    pattern = {"detail": {"n": [{"numeric": condition}]}}
    assert matches(pattern, envelope("s", "t", {"n": value})) is expected


def test_a_number_matches_the_same_number_but_not_its_string() -> None:
    pattern = {"detail": {"n": [300]}}
    assert matches(pattern, envelope("s", "t", {"n": 300.0}))
    assert not matches(pattern, envelope("s", "t", {"n": "300"}))
    assert not matches({"detail": {"n": ["300"]}}, envelope("s", "t", {"n": 300}))


def test_a_number_too_large_to_compare_still_matches_exactly() -> None:
    pattern = {"detail": {"account": [123456789012]}}
    assert matches(pattern, envelope("s", "t", {"account": 123456789012}))
    assert not matches(pattern, envelope("s", "t", {"account": 123456789013}))


@pytest.mark.parametrize(("condition", "reason"), [
    ([">", 5e9 + 1], "Value must be between -5.0E9 and 5.0E9, inclusive"),
    ([">", 5, "<", 5], "Bottom must be less than top"),
    (["<", 5, ">", 1], "Too many elements in numeric expression"),
    (["==", 5], "Unrecognized numeric range operator: =="),
    ([5], "Invalid member in numeric match: 5"),
    (["=", "5"], "Value of equals must be numeric"),
])
def test_a_bad_numeric_condition_is_refused_with_aws_reason(condition: list, reason: str) -> None:
    assert refusal({"n": [{"numeric": condition}]}) == reason


# --- $or ----------------------------------------------------------------------------------------

def test_or_matches_when_any_branch_matches_and_keeps_the_fields_beside_it() -> None:
    pattern = {"source": ["order_service"], "$or": [
        {"detail": {"priority": ["high"]}}, {"detail": {"total": [{"numeric": [">", 100]}]}}]}
    assert matches(pattern, envelope("order_service", "t", {"priority": "high", "total": 1}))
    assert matches(pattern, envelope("order_service", "t", {"priority": "low", "total": 101}))
    assert not matches(pattern, envelope("order_service", "t", {"priority": "low", "total": 1}))
    assert not matches(pattern, envelope("other", "t", {"priority": "high"}))


def test_or_needs_two_objects() -> None:
    assert refusal({"$or": [{"a": ["b"]}]}) == (
        "There must have at least 2 Objects in $or relationship.")
    assert refusal({"$or": [{"prefix": ["b"]}, {"a": ["c"]}]}) == (
        "prefix is Ruler reserved fieldName which cannot be used inside $or.")


# --- strings ------------------------------------------------------------------------------------

def test_prefix_and_suffix_ignoring_case() -> None:
    event = envelope("s", "t", {"file": "Reports/Q3.PDF"})
    assert matches({"detail": {"file": [{"prefix": {"equals-ignore-case": "reports/"}}]}}, event)
    assert matches({"detail": {"file": [{"suffix": {"equals-ignore-case": ".pdf"}}]}}, event)
    assert not matches({"detail": {"file": [{"prefix": "reports/"}]}}, event)
    assert not matches({"detail": {"file": [{"suffix": {"equals-ignore-case": ".doc"}}]}}, event)


def test_an_empty_prefix_matches_every_string_and_nothing_else() -> None:
    pattern = {"detail": {"v": [{"prefix": ""}]}}
    assert matches(pattern, envelope("s", "t", {"v": "anything"}))
    assert not matches(pattern, envelope("s", "t", {"v": 7}))


def test_equals_ignore_case_folds_non_ascii_letters() -> None:
    pattern = {"detail": {"city": [{"equals-ignore-case": "ZÜRICH"}]}}
    assert matches(pattern, envelope("s", "t", {"city": "zürich"}))
    assert not matches(pattern, envelope("s", "t", {"city": "zurich"}))


@pytest.mark.parametrize(("wildcard", "value", "expected"), [
    ("arn:aws:events:*:*:event-bus/*", "arn:aws:events:us-east-1:123:event-bus/b", True),
    ("*.png", "image.png", True), ("*.png", "image.png.bak", False),
    ("a*", "a", True),  # a star may match nothing
    ("", "", True), ("", "x", False), ("exact", "exact", True),
    ("a\\*b", "a*b", True), ("a\\*b", "axb", False),  # an escaped star is a star
    ("c:\\\\*", "c:\\dir", True),  # an escaped backslash is a backslash
])
def test_wildcards(wildcard: str, value: str, expected: bool) -> None:
    pattern = {"detail": {"v": [{"wildcard": wildcard}]}}
    assert matches(pattern, envelope("s", "t", {"v": value})) is expected


def test_a_bad_wildcard_is_refused_where_aws_points() -> None:
    # positions count from the quote AWS puts around the value
    assert refusal({"v": [{"wildcard": "a\\b"}]}) == "Invalid escape character at pos 2"
    assert refusal({"v": [{"wildcard": "ab**"}]}) == "Consecutive wildcard characters at pos 3"


# --- anything-but, exists, cidr -----------------------------------------------------------------

def test_anything_but_matches_other_types_and_null_but_not_a_missing_field() -> None:
    pattern = {"detail": {"state": [{"anything-but": ["stopped", "failed"]}]}}
    assert matches(pattern, envelope("s", "t", {"state": "running"}))
    assert matches(pattern, envelope("s", "t", {"state": None}))
    assert matches(pattern, envelope("s", "t", {"state": 3}))
    assert not matches(pattern, envelope("s", "t", {"state": "stopped"}))
    assert not matches(pattern, envelope("s", "t", {}))


def test_anything_but_a_list_must_not_mix_strings_and_numbers() -> None:
    assert refusal({"v": [{"anything-but": ["a", 1]}]}) == (
        "Inside anything but list, either all values are number or string, "
        "mixed type is not supported")


@pytest.mark.parametrize(("detail", "exists", "expected"), [
    ({"state": "on"}, True, True), ({"state": None}, True, True), ({}, True, False),
    ({"state": {"nested": 1}}, True, False),  # exists looks at leaves only
    ({}, False, True), ({"state": None}, False, False), ({"state": {"nested": 1}}, False, True),
])
def test_exists(detail: dict, exists: bool, expected: bool) -> None:
    pattern = {"detail": {"state": [{"exists": exists}]}}
    assert matches(pattern, envelope("s", "t", detail)) is expected


@pytest.mark.parametrize(("cidr", "address", "expected"), [
    ("10.0.0.0/24", "10.0.0.0", True), ("10.0.0.0/24", "10.0.0.255", True),
    ("10.0.0.0/24", "10.0.1.0", False), ("10.0.0.0/24", "not an address", False),
    ("2001:db8::/32", "2001:0db8:ffff::1", True), ("2001:db8::/32", "10.0.0.1", False),
])
def test_cidr(cidr: str, address: str, expected: bool) -> None:
    pattern = {"detail": {"ip": [{"cidr": cidr}]}}
    assert matches(pattern, envelope("s", "t", {"ip": address})) is expected


def test_an_ip_address_in_a_pattern_matches_the_same_address_written_otherwise() -> None:
    pattern = {"detail": {"ip": ["2001:db8::1"]}}
    assert matches(pattern, envelope("s", "t", {"ip": "2001:0db8:0000:0000:0000:0000:0000:0001"}))
    assert not matches(pattern, envelope("s", "t", {"ip": "2001:db8::2"}))


# --- refusals -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "reason"), [
    ({}, "Empty objects are not allowed"),
    ({"detail": {}}, "Empty objects are not allowed"),
    ({"source": [["nested"]]}, "Match value must be String, number, true, false, or null"),
    ({"source": [{"regex": "a.*"}]}, "Unrecognized match type regex"),
    ({"source": [{"prefix": "a", "suffix": "b"}]}, "Only one key allowed in match expression"),
    ({"source": [{"exists": "yes"}]}, "exists match pattern must be either true or false."),
    ({"source": [{"cidr": "10.0.0.0/32"}]}, "IPv4 mask bits must be < 32"),
    ('["source"]', "Filter is not an object"),
    ('{"source": ["a"],}', "Unexpected character ('}' (code 125)): was expecting double-quote "
                           "to start field name"),
])
def test_a_pattern_aws_refuses_is_refused_with_its_reason(pattern: dict | str, reason: str) -> None:
    assert refusal(pattern) == reason


def test_the_error_carries_aws_full_message() -> None:
    with pytest.raises(InvalidEventPatternError) as refused:
        matches({"source": "order_service"}, envelope("order_service", "t"))
    assert isinstance(refused.value, ValueError)
    assert refused.value.message == str(refused.value) == (
        'Event pattern is not valid. Reason: "source" must be an object or an array')


def test_ordinary_wildcards_are_not_too_complex_but_many_alike_ones_are() -> None:
    assert isinstance(compile_pattern(
        {"resources": [{"wildcard": "arn:aws:s3:::bucket/*/reports/*.csv"}]}), EventPattern)
    alike = [{"wildcard": f"datasync/*/*.{ext}"} for ext in ("jpg", "png", "gif", "jpeg")]
    assert refusal({"detail": {"key": alike}}).startswith("Rule is too complex")


def test_an_event_must_be_a_dict() -> None:
    with pytest.raises(TypeError, match="dict"):
        compile_pattern(ORDER_CREATED).matches('{"source": "order_service"}')  # type: ignore[arg-type]


# --- where the sandbox follows AWS rather than the address as written ----------------------------

@pytest.mark.parametrize(("address", "expected"), [
    ("10.1.0.0", True), ("10.1.2.2", True), ("10.1.255.255", True), ("10.2.0.0", False),
    ("10.0.255.255", False),
])
def test_a_cidr_is_the_masked_network_whatever_host_bits_it_is_written_with(
        address: str, expected: bool) -> None:
    pattern = {"detail": {"ip": [{"cidr": "10.1.2.3/16"}]}}
    assert matches(pattern, envelope("s", "t", {"ip": address})) is expected


def test_anything_but_wildcards_count_in_the_complexity_limit_as_wildcards_do() -> None:
    alike = [f"datasync/*/*.{ext}" for ext in ("jpg", "png", "gif", "jpeg")]
    assert refusal({"detail": {"key": [{"anything-but": {"wildcard": alike}}]}}).startswith(
        "Rule is too complex")
    assert refusal({"detail": {"key": [{"anything-but": {"wildcard": alike[:2]}},
                                       *[{"wildcard": w} for w in alike[2:]]]}}).startswith(
        "Rule is too complex")
    assert isinstance(compile_pattern(
        {"detail": {"key": [{"anything-but": {"wildcard": "arn:*:reports/*.csv"}}]}}),
        EventPattern)
