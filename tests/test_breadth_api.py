"""API Gateway end to end in the breadth stack (tests/breadth/api.py): each answer a client
gets over HTTP from the CORS preflight, an API key's method, the TOKEN and REQUEST authorizers,
an AWS_IAM method, a stage variable's function and binary media types."""
# ruff: noqa: F811  (pytest fixtures imported from breadth_sandbox are parameters here)

import json
import urllib.request
from typing import Any

import pytest
from breadth.api import API_KEY, QUOTA, STAGE
from breadth_sandbox import breadth, received, wait_received  # noqa: F401
from sandbox_process import SandboxProcess

from sandbox.core.history import AuthorizerRan
from sandbox.core.state import State

pytestmark = pytest.mark.slow


def call(sandbox: SandboxProcess, path: str, method: str = "GET", body: bytes | None = None,
         **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"{sandbox.url}/{STAGE}{path}", data=body, method=method,
                                     headers={k.replace("_", "-"): v for k, v in headers.items()})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def event(sandbox: SandboxProcess, path: str, **headers: str) -> dict[str, Any]:
    status, _, body = call(sandbox, path, **headers)
    assert status == 200, body
    return json.loads(body)


def authorizer_runs(sandbox: SandboxProcess, request_id: str) -> list[AuthorizerRan]:
    state = State(sandbox.state / "sandbox.db")
    try:
        return [e.record for e in state.history(kind=AuthorizerRan.KIND)
                if e.record.api_request_id == request_id]
    finally:
        state.close()


def test_the_cdk_cors_preflight_answers_its_headers(breadth: SandboxProcess) -> None:
    status, headers, body = call(breadth, "/open", "OPTIONS", Origin="https://b.example")
    assert (status, body) == (204, b"")
    assert {k: v for k, v in headers.items() if k.startswith("Access-Control")} == {
        "Access-Control-Allow-Headers": "Content-Type,X-Amz-Date,Authorization,X-Api-Key,"
                                        "X-Amz-Security-Token,X-Amz-User-Agent",
        "Access-Control-Allow-Origin": "https://b.example",  # the VTL echoes an allowed origin
        "Access-Control-Allow-Methods": "GET,POST",
        "Access-Control-Max-Age": "600",
    }
    assert headers["Vary"] == "Origin"
    _, other, _ = call(breadth, "/open", "OPTIONS", Origin="https://evil.example")
    assert other["Access-Control-Allow-Origin"] == "https://a.example"


def test_an_api_key_method_wants_a_key_of_its_plan_within_the_quota(
        breadth: SandboxProcess) -> None:
    assert call(breadth, "/keyed")[0::2] == (403, b'{"message":"Forbidden"}')
    assert call(breadth, "/keyed", x_api_key="not-a-key")[0] == 403
    answers = [call(breadth, "/keyed", x_api_key=API_KEY) for _ in range(QUOTA + 1)]
    assert [status for status, _, _ in answers] == [200] * QUOTA + [429]
    _, headers, body = answers[-1]
    assert (body, headers["x-amzn-ErrorType"]) == (b'{"message":"Limit Exceeded"}',
                                                   "LimitExceededException")
    identity = json.loads(answers[0][2])["requestContext"]["identity"]
    assert identity["apiKey"] == API_KEY
    assert "API key breadth-generated: " in breadth.output()  # a generated key is printed


def test_a_token_authorizer_decides_and_its_context_reaches_the_function(
        breadth: SandboxProcess) -> None:
    assert call(breadth, "/token")[0::2] == (401, b'{"message":"Unauthorized"}')
    assert call(breadth, "/token", Authorization="Basic x")[0] == 401  # fails the regex
    got = event(breadth, "/token", Authorization="Bearer allow-ann")
    authorizer = got["requestContext"]["authorizer"]
    assert {k: v for k, v in authorizer.items() if k != "integrationLatency"} == {
        "principalId": "ann", "user": "ann", "level": "7", "admin": "false"}
    sent = wait_received(breadth, "ApiTokenAuthorizerFn",
                         lambda e: e["authorizationToken"] == "Bearer allow-ann")
    api_id = got["requestContext"]["apiId"]
    assert sent == {"type": "TOKEN", "authorizationToken": "Bearer allow-ann",
                    "methodArn": f"arn:aws:execute-api:us-east-1:000000000000:{api_id}/"
                                 f"{STAGE}/GET/token"}
    (ran,) = authorizer_runs(breadth, got["requestContext"]["requestId"])
    assert (ran.effect, ran.cached, ran.principal_id) == ("Allow", False, "ann")
    again = event(breadth, "/token", Authorization="Bearer allow-ann")  # from the cache
    (ran,) = authorizer_runs(breadth, again["requestContext"]["requestId"])
    assert (ran.effect, ran.cached) == ("Allow", True)
    assert [e["authorizationToken"] for e in received(breadth, "ApiTokenAuthorizerFn")
            ].count("Bearer allow-ann") == 1


@pytest.mark.parametrize(("token", "status", "body", "error_type"), [
    ("deny", 403,
     b'{"message":"User is not authorized to access this resource with an explicit deny"}',
     "AccessDeniedException"),
    ("nobody", 401, b'{"message":"Unauthorized"}', "UnauthorizedException"),
    ("crash", 500, b'{"message":null}', "AuthorizerConfigurationException"),
    ("odd", 500, b'{"message":null}', "AuthorizerConfigurationException"),
])
def test_a_token_authorizers_refusals_are_aws_answers(breadth: SandboxProcess, token: str,
                                                     status: int, body: bytes,
                                                     error_type: str) -> None:
    got_status, headers, got_body = call(breadth, "/token", Authorization=f"Bearer {token}")
    assert (got_status, got_body, headers["x-amzn-ErrorType"]) == (status, body, error_type)


def test_a_request_authorizer_gets_the_request_and_its_policy_holds(
        breadth: SandboxProcess) -> None:
    assert call(breadth, "/request")[0] == 401  # no identity source: not called
    assert call(breadth, "/request", x_who="foe")[0] == 403
    got = event(breadth, "/request", x_who="friend")
    assert got["requestContext"]["authorizer"]["who"] == "friend"
    sent = wait_received(breadth, "ApiRequestAuthorizerFn",
                         lambda e: "friend" in e["headers"].values())
    assert sent["type"] == "REQUEST" and sent["methodArn"].endswith(f"/{STAGE}/GET/request")
    assert (sent["resource"], sent["httpMethod"], sent["stageVariables"]["color"]) == (
        "/request", "GET", "blue")


def test_an_iam_method_wants_a_signature(breadth: SandboxProcess) -> None:
    status, _, body = call(breadth, "/iam")
    assert (status, body) == (403, b'{"message":"Missing Authentication Token"}')
    signed = event(breadth, "/iam", Authorization="AWS4-HMAC-SHA256 Credential=AKIDLOCAL/"
                   "20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, "
                   "Signature=00")
    assert signed["requestContext"]["identity"]["accessKey"] == "AKIDLOCAL"


def test_stage_variables_reach_the_event_and_pick_the_function(breadth: SandboxProcess) -> None:
    got = event(breadth, "/staged")  # its URI names ${stageVariables.fn}
    assert got["stageVariables"]["color"] == "blue"
    assert got["resource"] == "/staged"


def test_binary_media_types_as_aws_treats_them(breadth: SandboxProcess) -> None:
    status, _, body = call(breadth, "/open", "POST", b"\x89PNG", Content_Type="image/png")
    got = json.loads(body)
    assert (status, got["body"], got["isBase64Encoded"]) == (200, "iVBORw==", True)
    assert call(breadth, "/open?binary=1")[2] == b"iVBORw0K"  # Accept not binary: base64 text
    status, headers, data = call(breadth, "/open?binary=1", Accept="image/png")
    assert (status, data, headers["Content-Type"]) == (200, b"\x89PNG\r\n", "image/png")


def test_answers_carry_the_headers_api_gateway_adds(breadth: SandboxProcess) -> None:
    _, headers, body = call(breadth, "/open")
    assert headers["x-amzn-RequestId"] == json.loads(body)["requestContext"]["requestId"]
    assert headers["x-amz-apigw-id"] == json.loads(body)["requestContext"]["extendedRequestId"]
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert "Date" in headers
