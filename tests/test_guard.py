"""Who the sandbox answers, pure: this machine's host names, and its own pages' origins."""

from __future__ import annotations

import json

import pytest

from sandbox.core.guard import Guard, hostname


@pytest.mark.parametrize("host", ["localhost", "localhost:4000", "127.0.0.1", "127.0.0.1:4000",
                                  "[::1]", "[::1]:4000", "LOCALHOST:4000"])
def test_this_machines_names_are_answered_with_or_without_a_port(host: str) -> None:
    assert Guard().host_allowed(host)


@pytest.mark.parametrize("host", ["evil.test", "evil.test:4000", "localhost.evil.test",
                                  "127.0.0.1.nip.io:4000", "10.0.0.5:4000", "[::2]:4000"])
def test_other_hosts_are_refused(host: str) -> None:
    assert not Guard().host_allowed(host)


def test_a_host_given_with_allow_host_is_answered() -> None:
    guard = Guard(("dev.box",))
    assert guard.host_allowed("dev.box:4000") and guard.host_allowed("DEV.BOX")
    assert guard.origin_allowed("http://dev.box:4000")


def test_only_this_machines_pages_are_allowed_origins() -> None:
    guard = Guard()
    assert guard.origin_allowed(None), "tools send no Origin"
    for origin in ("http://localhost:4000", "http://127.0.0.1:4000", "http://[::1]:4000",
                   "https://localhost"):
        assert guard.origin_allowed(origin), origin
    for origin in ("http://evil.test", "null", "file://", "http://localhost.evil.test:4000"):
        assert not guard.origin_allowed(origin), origin


def test_a_refusal_names_the_option_and_is_logged_once() -> None:
    lines: list[str] = []
    guard = Guard(log=lines.append)
    status, headers, body = guard.refuse_host("evil.test:4000")
    guard.refuse_host("evil.test:4000")
    guard.refuse_origin("http://evil.test")
    assert status == 403
    assert "--allow-host evil.test" in json.loads(body)["message"]
    assert not any(name.lower().startswith("access-control") for name, _ in headers)
    assert lines == [
        "sandbox: refused a request for host evil.test:4000: not this machine (allow it with "
        "--allow-host evil.test)",
        "sandbox: refused a request from origin http://evil.test: the sandbox's own APIs "
        "answer only this machine's pages",
    ]


def test_the_name_in_a_host_header() -> None:
    assert [hostname(h) for h in ("[::1]:4000", "Localhost:1", "127.0.0.1", "::1")] == [
        "::1", "localhost", "127.0.0.1", "::1"]
