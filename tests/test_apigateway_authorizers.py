"""Lambda and Cognito authorizers, pure: what API Gateway reads of a request, sends to the
function (AWS's documented TOKEN and REQUEST inputs), and makes of its answer."""

import base64
import json

import pytest

from sandbox.apigateway.authorizers import (
    Authorizer,
    Caller,
    DecisionCache,
    MalformedAnswer,
    authorizer_event,
    decision,
    identity,
    jwt_claims,
    method_arn,
)

ARN = "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/test/GET/request"
TOKEN = Authorizer("a1", "Tok", "TOKEN", "arn:aws:lambda:us-east-1:0:function:f",
                   ("method.request.header.Authorization",), "^Bearer .+$", 300)
REQUEST = Authorizer("a2", "Req", "REQUEST", "arn:aws:lambda:us-east-1:0:function:f",
                     ("method.request.header.HeaderAuth1", "method.request.querystring.q",
                      "stageVariables.StageVar1", "context.stage"), None, 300)


def caller(headers: dict | None = None, query: dict | None = None) -> Caller:
    return Caller({k.lower(): v for k, v in (headers or {}).items()}, query or {},
                  {"StageVar1": "stageValue1"}, {"stage": "test"})


def answer(value: object) -> bytes:
    return json.dumps(value).encode()


def policy(effect: str, resource: object, action: object = "execute-api:Invoke") -> dict:
    return {"principalId": "user", "policyDocument": {"Version": "2012-10-17", "Statement": [
        {"Action": action, "Effect": effect, "Resource": resource}]}}


def test_the_method_arn_is_aws_shape() -> None:
    assert method_arn("us-west-2", "123456789012", "ymy8tbxw7b", "test", "GET",
                      "/request") == ARN
    assert method_arn("us-east-1", "1", "api", "prod", "GET", "/").endswith("api/prod/GET/")


def test_the_token_event_is_awss_documented_input() -> None:
    assert authorizer_event(TOKEN, ARN, "allow", {}) == {
        "type": "TOKEN", "authorizationToken": "allow", "methodArn": ARN}


def test_the_request_event_carries_the_proxy_events_fields() -> None:
    proxy = {"resource": "/request", "path": "/request", "httpMethod": "GET",
             "headers": {"HeaderAuth1": "headerValue1"},
             "multiValueHeaders": {"HeaderAuth1": ["headerValue1"]},
             "queryStringParameters": {"QueryString1": "queryValue1"},
             "multiValueQueryStringParameters": {"QueryString1": ["queryValue1"]},
             "pathParameters": None, "stageVariables": {"StageVar1": "stageValue1"},
             "requestContext": {"stage": "test"}, "body": "not for the authorizer",
             "isBase64Encoded": False}
    event = authorizer_event(REQUEST, ARN, "", proxy)
    assert event["type"] == "REQUEST" and event["methodArn"] == ARN
    assert {k: v for k, v in event.items() if k not in ("type", "methodArn")} == {
        k: v for k, v in proxy.items() if k not in ("body", "isBase64Encoded")}


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Authorization": "Bearer abc"}, ("Bearer abc",)),
    ({"authorization": "Bearer abc"}, ("Bearer abc",)),  # header names are not case-sensitive
    ({}, None),  # missing: 401 without calling the function
    ({"Authorization": ""}, None),
    ({"Authorization": "Basic abc"}, None),  # fails IdentityValidationExpression
])
def test_a_token_identity(headers: dict, expected: tuple | None) -> None:
    assert identity(TOKEN, caller(headers)) == expected


def test_a_request_identity_reads_every_source_and_wants_them_all() -> None:
    full = caller({"HeaderAuth1": "h"}, {"q": "v"})
    assert identity(REQUEST, full) == ("h", "v", "stageValue1", "test")
    assert identity(REQUEST, caller({"HeaderAuth1": "h"})) is None
    uncached = Authorizer("a3", "R", "REQUEST", "f", REQUEST.identity_sources, None, 0)
    assert identity(uncached, caller({"HeaderAuth1": "h"})) == ("h", "", "stageValue1", "test")


@pytest.mark.parametrize(("statement_resource", "effect"), [
    (ARN, "Allow"),
    ("arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/*/GET/*", "Allow"),
    ("arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/test/???/request", "Allow"),
    ("arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/test/POST/*", ""),
    (["arn:aws:execute-api:*:*:other/*", "*"], "Allow"),
])
def test_a_policy_is_matched_with_iam_wildcards(statement_resource: object, effect: str) -> None:
    assert decision(answer(policy("Allow", statement_resource))).effect(ARN) == effect


def test_an_explicit_deny_wins_and_other_actions_do_not_count() -> None:
    both = policy("Allow", "*")
    both["policyDocument"]["Statement"].append({"Action": "execute-api:*", "Effect": "Deny",
                                                "Resource": ARN})
    assert decision(answer(both)).effect(ARN) == "Deny"
    assert decision(answer(policy("Allow", "*", "s3:GetObject"))).effect(ARN) == ""


def test_context_values_reach_the_integration_as_strings() -> None:
    found = decision(answer({**policy("Allow", "*"), "context": {
        "stringKey": "value", "numberKey": 1, "booleanKey": True}, "usageIdentifierKey": "k"}))
    assert found.request_context(12) == {
        "principalId": "user", "stringKey": "value", "numberKey": "1", "booleanKey": "true",
        "integrationLatency": 12}
    assert found.usage_key == "k"


@pytest.mark.parametrize(("payload", "reason"), [
    (b"nope", "not JSON"),
    (answer(["a"]), "not a JSON object"),
    (answer({"policyDocument": {"Statement": []}}), "principalId"),
    (answer({"principalId": "u"}), "policyDocument"),
    (answer({**policy("Maybe", "*")}), "Effect"),
    (answer({**policy("Allow", "*"), "context": {"nested": {"a": 1}}}), "context values"),
])
def test_a_malformed_answer_is_a_500(payload: bytes, reason: str) -> None:
    with pytest.raises(MalformedAnswer, match=reason):
        decision(payload)


def test_the_cache_keeps_a_decision_for_its_ttl_only() -> None:
    cache = DecisionCache()
    found = decision(answer(policy("Allow", "*")))
    cache.put(TOKEN, ("t",), found, now=1000.0)
    assert cache.get(TOKEN, ("t",), now=1299.0) is found
    assert cache.get(TOKEN, ("t",), now=1300.0) is None
    assert cache.get(TOKEN, ("other",), now=1001.0) is None
    off = Authorizer("a4", "T", "TOKEN", "f", TOKEN.identity_sources, None, 0)
    cache.put(off, ("t",), found, now=1000.0)
    assert cache.get(off, ("t",), now=1000.0) is None


def test_cognito_claims_are_read_from_the_jwt_payload_unverified() -> None:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    token = f"{part({'alg': 'RS256'})}.{part({'sub': 'u-1', 'email_verified': True})}.sig"
    assert jwt_claims(token) == {"sub": "u-1", "email_verified": "true"}
    assert jwt_claims("not-a-jwt") is None
    assert jwt_claims("a.%%%.c") is None
