"""ApiGateway serving requests that need no function: Cognito and AWS_IAM methods, a MOCK
integration, no route; each answer with the headers API Gateway adds."""

import base64
import json
from typing import Any

from sandbox.apigateway.authorizers import Authorizer
from sandbox.apigateway.mock import IntegrationResponse, MockIntegration
from sandbox.apigateway.rest_api import Method, RestApi
from sandbox.apigateway.wire import ApiGateway
from sandbox.settings import Settings

OK = MockIntegration(200, [IntegrationResponse(200, "", {}, "application/json")])
COGNITO = Authorizer("c1", "Pool", "COGNITO_USER_POOLS", "",
                     ("method.request.header.Authorization",))


def gateway() -> ApiGateway:
    methods = [
        Method("GET", "/me", "r1", "", "MOCK", "COGNITO_USER_POOLS", "c1",
               mock=OK),
        Method("GET", "/signed", "r2", "", "MOCK", "AWS_IAM", mock=OK),
    ]
    api = RestApi("a1b2c3d4e5", "A", "prod", "d1", methods, authorizers={"c1": COGNITO})
    return ApiGateway([api], lambda_=None, settings=Settings())  # type: ignore[arg-type]


def jwt(claims: dict[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.signature"


def test_a_cognito_method_wants_a_token_and_reads_its_claims_unverified() -> None:
    api = gateway()
    status, headers, body = api.handle("GET", "/prod/me", [], b"", "127.0.0.1")
    assert (status, body) == (401, b'{"message":"Unauthorized"}')
    assert {"x-amzn-RequestId", "x-amz-apigw-id"} <= {name for name, _ in headers}
    method = api.apis[0].methods[0]
    event = {"headers": {"Authorization": jwt({"sub": "u-1", "cognito:groups": "admins"})},
             "queryStringParameters": None, "requestContext": {"identity": {}}}
    refused, _ = api.authorize(api.apis[0], method, event, 0.0)
    assert refused is None
    assert event["requestContext"]["authorizer"] == {
        "claims": {"sub": "u-1", "cognito:groups": "admins"}}


def test_an_iam_method_without_a_signature_is_missing_its_token() -> None:
    status, headers, body = gateway().handle("GET", "/prod/signed", [], b"", "127.0.0.1")
    assert (status, body) == (403, b'{"message":"Missing Authentication Token"}')
    assert ("x-amzn-ErrorType", "MissingAuthenticationTokenException") in headers
    signed = [("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/"
                                "execute-api/aws4_request, SignedHeaders=host, Signature=0")]
    assert gateway().handle("GET", "/prod/signed", signed, b"", "127.0.0.1")[0] == 200
