"""EventBridge PutEvents semantics: whole-request errors, per-entry errors, the envelope."""

from datetime import UTC, datetime

import pytest

from sandbox.events.put_events import (
    MAX_ENTRIES,
    MAX_REQUEST_BYTES,
    PutEventsRequestError,
    bus_name,
    check_entry,
    check_request,
    entry_size,
    envelope,
)

ENTRY = {
    "Source": "order_service",
    "DetailType": "order_created",
    "Detail": '{"metadata": {"service": "demo-eventbridge"}, "data": {"ID": "42"}}',
    "EventBusName": "orders",
}
NOW = datetime(2026, 11, 24, 14, 27, 32, 123000, tzinfo=UTC)


def refused(body: dict) -> PutEventsRequestError:
    with pytest.raises(PutEventsRequestError) as error:
        check_request(body)
    return error.value


# -- the whole request ------------------------------------------------------------------------


def test_a_valid_request_gives_its_entries() -> None:
    entries = [ENTRY, {"Source": "x"}]  # per-entry problems are not the request's
    assert check_request({"Entries": entries}) == entries


def test_missing_entries() -> None:
    error = refused({})
    assert (error.code, error.message) == (
        "ValidationException",
        "1 validation error detected: Value null at 'entries' failed to satisfy constraint: "
        "Member must not be null",
    )
    assert str(error) == error.message


def test_no_entries() -> None:
    error = refused({"Entries": []})
    assert (error.code, error.message) == (
        "ValidationException",
        "1 validation error detected: Value '[]' at 'entries' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    )


def test_more_than_ten_entries_lists_them_as_aws_does() -> None:
    entry = {
        "Source": "core.update-account-command",
        "DetailType": "core.update-account-command",
        "Detail": '{"command": "update-account"}',
        "EventBusName": "orders",
    }
    # As AWS recorded it (test_put_events_exceed_limit_ten_entries, localstack snapshots).
    shown = (
        "PutEventsRequestEntry(time=null, source=core.update-account-command, resources=null, "
        'detailType=core.update-account-command, detail={"command": "update-account"}, '
        "eventBusName=orders, traceHeader=null, kmsKeyIdentifier=null, internalMetadata=null)"
    )
    assert MAX_ENTRIES == 10
    check_request({"Entries": [entry] * 10})
    error = refused({"Entries": [entry] * 11})
    assert (error.code, error.message) == (
        "ValidationException",
        f"1 validation error detected: Value '[{', '.join([shown] * 11)}]' at 'entries' "
        "failed to satisfy constraint: Member must have length less than or equal to 10",
    )


def test_requests_over_the_size_limit_are_refused() -> None:
    assert MAX_REQUEST_BYTES == 1024 * 1024  # AWS's limit since 2026-01-29 (was 256 KB)
    padding = MAX_REQUEST_BYTES - entry_size({**ENTRY, "Detail": '{"p": ""}'})
    at_limit = {**ENTRY, "Detail": '{"p": "' + "x" * padding + '"}'}
    assert entry_size(at_limit) == MAX_REQUEST_BYTES
    check_request({"Entries": [at_limit]})
    over = {**at_limit, "Resources": ["r"]}
    error = refused({"Entries": [over]})
    assert (error.code, error.message) == (
        "ValidationException",
        "Total size of the entries in the request is over the limit.",
    )
    half = {**ENTRY, "Detail": '{"p": "' + "x" * (padding // 2) + '"}'}
    assert refused({"Entries": [half, half, half]}).message.startswith("Total size")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"Source": "x"}, "Entries must be a list"),
        (["x"], "Entries[0] is not an object"),
        ([ENTRY, {**ENTRY, "Detail": {"a": 1}}], "Entries[1].Detail must be a string"),
        ([{**ENTRY, "Resources": "arn:x"}], "Entries[0].Resources must be a list of strings"),
        ([{**ENTRY, "Time": "yesterday"}], "Entries[0].Time must be a timestamp"),
    ],
)
def test_entries_of_the_wrong_shape_fail_the_request(entries: object, message: str) -> None:
    error = refused({"Entries": entries})
    assert error.code == "SerializationException"
    assert error.message.startswith(message)


def test_entry_size_is_aws_documented_calculation() -> None:
    entry = {
        "Time": 1795530452,  # 14 bytes whatever its value
        "Source": "shop",  # 4
        "DetailType": "créé",  # 6 UTF-8 bytes
        "Detail": '{"a":1}',  # 7
        "Resources": ["arn:x", "é"],  # 5 + 2
        "EventBusName": "not counted",
    }
    assert entry_size(entry) == 14 + 4 + 6 + 7 + 5 + 2
    assert entry_size({"Source": "s"}) == 1


# -- each entry ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({}, ("InvalidArgument",
              "Parameter Source is not valid. Reason: Source is a required argument.")),
        ({**ENTRY, "Source": ""}, ("InvalidArgument",
              "Parameter Source is not valid. Reason: Source is a required argument.")),
        ({"Source": "s", "Detail": "{}"}, ("InvalidArgument",
              "Parameter DetailType is not valid. Reason: DetailType is a required argument.")),
        ({"Source": "s", "DetailType": "t"}, ("InvalidArgument",
              "Parameter Detail is not valid. Reason: Detail is a required argument.")),
        ({**ENTRY, "Source": "aws.s3"},
         ("NotAuthorizedForSourceException", "Not authorized for the source.")),
        ({**ENTRY, "Detail": "{not json"}, ("MalformedDetail", "Detail is malformed.")),
        ({**ENTRY, "Detail": "[1, 2]"}, ("MalformedDetail", "Detail is malformed.")),
        ({**ENTRY, "Detail": '"a string"'}, ("MalformedDetail", "Detail is malformed.")),
        ({**ENTRY, "Detail": '{"n": NaN}'}, ("MalformedDetail", "Detail is malformed.")),
        (ENTRY, None),
        ({**ENTRY, "Detail": "{}"}, None),
    ],
)
def test_check_entry_answers_as_aws(entry: dict, expected: tuple[str, str] | None) -> None:
    assert check_entry(entry) == expected


# -- what targets receive -------------------------------------------------------------------------


def test_envelope_is_what_a_target_receives() -> None:
    event_id = "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
    assert envelope(ENTRY, "000000000000", "us-east-1", NOW, event_id) == {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "order_created",
        "source": "order_service",
        "account": "000000000000",
        "time": "2026-11-24T14:27:32Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"metadata": {"service": "demo-eventbridge"}, "data": {"ID": "42"}},
    }


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        (1700000000, "2023-11-14T22:13:20Z"),  # epoch seconds, as the SDKs send it
        (1700000000.75, "2023-11-14T22:13:20Z"),
        ("2023-11-14T22:13:20+01:00", "2023-11-14T21:13:20Z"),
    ],
)
def test_envelope_time_is_the_entry_time_when_given(time: object, expected: str) -> None:
    entry = {**ENTRY, "Time": time, "Resources": ["arn:aws:s3:::bucket"]}
    event = envelope(entry, "000000000000", "eu-west-1", NOW, "id")
    assert (event["time"], event["resources"], event["region"]) == (
        expected,
        ["arn:aws:s3:::bucket"],
        "eu-west-1",
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (None, "default"),
        ("", "default"),
        ("orders", "orders"),
        ("arn:aws:events:us-east-1:000000000000:event-bus/orders", "orders"),
        ("arn:aws:events:us-east-1:000000000000:event-bus/default", "default"),
    ],
)
def test_bus_name_takes_a_name_or_an_arn(name: str | None, expected: str) -> None:
    entry = {**ENTRY, "EventBusName": name} if name is not None else {"Source": "s"}
    assert bus_name(entry) == expected
