"""SNS filter policies, in-process: AWS's documented example message against its documented
policies, each operator, both scopes, and the words SNS refuses a bad policy with (as AWS
recorded them)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.sns.filter_policy import FilterPolicy, FilterPolicyError

# "Amazon SNS example filter policies": the transaction message's attributes, and its body form.
ATTRIBUTES = {
    "customer_interests": {"Type": "String.Array", "Value": '["soccer", "rugby", "hockey"]'},
    "store": {"Type": "String", "Value": "example_corp"},
    "event": {"Type": "String", "Value": "order_placed"},
    "price_usd": {"Type": "Number", "Value": "210.75"},
}
BODY = json.dumps({"customer_interests": ["soccer", "rugby", "hockey"], "store": "example_corp",
                   "event": "order_placed", "price_usd": 210.75})
ACCEPTS = {"store": ["example_corp"], "event": [{"anything-but": "order_cancelled"}],
           "customer_interests": ["rugby", "football", "baseball"],
           "price_usd": [{"numeric": [">=", 100]}]}
REJECTS = {"store": ["example_corp"], "event": ["order_cancelled"], "encrypted": [False],
           "customer_interests": ["basketball", "baseball"]}


def matches(policy: dict[str, Any], attributes: dict[str, Any] | None = None,
            body: str = "message", scope: str = "MessageAttributes") -> bool:
    return FilterPolicy.parse(policy, scope).matches(
        ATTRIBUTES if attributes is None else attributes, body)


def test_the_documented_policies_accept_and_reject_the_documented_message() -> None:
    assert matches(ACCEPTS)
    assert not matches(REJECTS)
    assert matches(ACCEPTS, {}, BODY, "MessageBody")
    assert not matches(REJECTS, {}, BODY, "MessageBody")


@pytest.mark.parametrize(("condition", "expected"), [
    (["example_corp"], True), (["Example_Corp"], False),
    ([{"prefix": "exa"}], True), ([{"suffix": "_corp"}], True), ([{"suffix": "corp_"}], False),
    ([{"equals-ignore-case": "EXAMPLE_CORP"}], True),
    ([{"anything-but": ["example_corp", "other"]}], False),
    ([{"anything-but": {"prefix": "exa"}}], False), ([{"anything-but": {"suffix": "x"}}], True),
    ([{"exists": True}], True), ([{"exists": False}], False),
])
def test_string_operators_on_an_attribute(condition: list[Any], expected: bool) -> None:
    assert matches({"store": condition}) is expected


@pytest.mark.parametrize(("condition", "expected"), [
    ([210.75], True), ([210], False), ([{"numeric": ["=", 210.75]}], True),
    ([{"numeric": [">", 0, "<=", 150]}], False), ([{"numeric": [">", 200, "<", 300]}], True),
    ([{"anything-but": [100, 200]}], True), (["210.75"], False),
])
def test_numbers_match_a_number_attribute_by_value(condition: list[Any], expected: bool) -> None:
    assert matches({"price_usd": condition}) is expected


def test_a_string_array_attribute_matches_when_any_element_does() -> None:
    assert matches({"customer_interests": ["hockey"]})
    assert matches({"customer_interests": [{"prefix": "rug"}]})
    assert not matches({"customer_interests": ["tennis"]})
    assert not matches({"customer_interests": [{"anything-but": ["rugby"]}]})


def test_an_absent_attribute_matches_only_exists_false_and_null() -> None:
    assert matches({"encrypted": [{"exists": False}]})
    assert matches({"encrypted": [None]})
    assert not matches({"encrypted": [{"anything-but": "x"}]})
    assert not matches({"encrypted": [{"prefix": ""}]})


def test_binary_attributes_are_never_compared() -> None:
    binary = {"blob": {"Type": "Binary", "Value": "AQID"}}
    assert not matches({"blob": [{"exists": True}]}, binary)
    assert matches({"blob": [{"exists": False}]}, binary)


def test_cidr_matches_an_ip_address_in_the_block() -> None:
    source = {"source_ip": {"Type": "String", "Value": "10.0.0.7"}}
    assert matches({"source_ip": [{"cidr": "10.0.0.0/24"}]}, source)
    assert not matches({"source_ip": [{"cidr": "10.0.1.0/24"}]}, source)


def test_or_matches_any_alternative_beside_the_other_keys() -> None:
    policy = {"store": ["example_corp"],
              "$or": [{"event": ["order_cancelled"]}, {"price_usd": [{"numeric": [">", 100]}]}]}
    assert matches(policy)
    policy["$or"][1] = {"price_usd": [{"numeric": ["<", 100]}]}
    assert not matches(policy)


def test_a_body_policy_reaches_nested_keys_and_arrays_of_objects() -> None:
    body = json.dumps({"order": {"kind": "big", "lines": [{"sku": "a-1"}, {"sku": "b-2"}]},
                       "flag": True, "note": None})
    assert matches({"order": {"kind": ["big"], "lines": {"sku": [{"prefix": "b-"}]}}},
                   {}, body, "MessageBody")
    assert not matches({"order": {"lines": {"sku": ["c-3"]}}}, {}, body, "MessageBody")
    assert matches({"flag": [True], "note": [None]}, {}, body, "MessageBody")
    assert not matches({"order": {"kind": ["big"]}}, {}, "not json", "MessageBody")


def test_an_empty_policy_matches_everything() -> None:
    assert matches({}, {})


def invalid(policy: Any, scope: str = "MessageAttributes") -> str:
    with pytest.raises(FilterPolicyError) as error:
        FilterPolicy.parse(policy, scope)
    return str(error.value)


PREFIX = "Invalid parameter: FilterPolicy: "


@pytest.mark.parametrize(("policy", "reason"), [
    # As AWS answered each (LocalStack's snapshots recorded against AWS, 2024).
    ({"key": [["value"]]}, "Match value must be String, number, true, false, or null"),
    ({"key": [{"wrong-operator": True}]}, "Unrecognized match type wrong-operator"),
    ({"key": [{"suffix": "value", "prefix": "value2"}]},
     "Only one key allowed in match expression"),
    ({"key": [{"suffix": 100}]}, "suffix match pattern must be a string"),
    ({"key": [{"suffix": None}]}, "suffix match pattern must be a string"),
    ({"key": {"suffix": "value"}}, '"suffix" must be an object or an array'),
    ({"key_a": "value_one"}, '"key_a" must be an object or an array'),
    ({"key": [{"numeric": []}]}, "Invalid member in numeric match: ]"),
    ({"key": [{"numeric": ["operator"]}]}, "Unrecognized numeric range operator: operator"),
    ({"key": [{"numeric": [1, "<="]}]}, "Invalid member in numeric match: 1"),
    ({"key": [{"numeric": ["=", "000"]}]}, "Value of equals must be numeric"),
    ({"key": [{"numeric": [">="]}]}, "Value of >= must be numeric"),
    ({"key": [{"numeric": ["<", 100, ">", 10]}]}, "Too many elements in numeric expression"),
    ({"key": [{"numeric": [">=", 1, ">", 2]}]}, "Bad numeric range operator: >"),
    ({"key": [{"numeric": [">", 3, "<", 1]}]}, "Bottom must be less than top"),
    ({"key": [{"numeric": [">", 20, "<="]}]}, "Value of <= must be numeric"),
    ({"key": [{"numeric": [">", 20, 30]}]}, "Bad value in numeric range: 30"),
    ({"key": [{"numeric": [">", 20, "test"]}]}, "Bad numeric range operator: test"),
    ({"key": [{"numeric": [">", "20", "<", "30"]}]}, "Value of > must be numeric"),
    ({"key": [{"numeric": [">", 20, "<", 30, "<", 50]}]},
     "Too many terms in numeric range expression"),
    ({"key": [{"exists": None}]}, "exists match pattern must be either true or false."),
    ({"key": [{"exists": "no"}]}, "exists match pattern must be either true or false."),
    ({f"key{i}": ["v"] for i in range(6)}, "Filter policy can not have more than 5 keys"),
    ({"a": list(range(10)), "b": list(range(16))}, "Filter policy is too complex"),
    ("{invalidjson}", "failed to parse JSON."),
])
def test_a_bad_policy_gets_sns_own_words(policy: Any, reason: str) -> None:
    assert invalid(policy) == PREFIX + reason


def test_complexity_adds_up_over_or_branches_and_nesting_needs_the_body_scope() -> None:
    assert invalid({"$or": [{"a": list(range(100))}, {"b": list(range(51))}]}) == (
        PREFIX + "Filter policy is too complex")
    FilterPolicy.parse({"$or": [{"a": list(range(100))}, {"b": list(range(50))}]})
    assert invalid({"object": {"key": [{"prefix": "auto-"}]}}) == (
        "Invalid parameter: Filter policy scope MessageAttributes does not support nested "
        "filter policy")
    FilterPolicy.parse({"object": {"key": [{"prefix": "auto-"}]}}, "MessageBody")
    assert invalid({}, "RandomValue") == (
        "Invalid parameter: FilterPolicyScope: Invalid value [RandomValue]. Please use either "
        "MessageBody or MessageAttributes")
