"""API Gateway REST API semantics: routes from the template, the proxy event, proxy answers."""

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandbox.apigateway.mock import MockIntegration
from sandbox.apigateway.rest_api import (
    ENDPOINT_TIMEOUT,
    INTERNAL_SERVER_ERROR,
    MISSING_AUTH_TOKEN,
    MalformedProxyResponse,
    Method,
    RestApi,
    proxy_event,
    proxy_response,
)
from sandbox.assembly import AssemblyError, read_assembly

FIXTURE = Path(__file__).parent / "fixtures" / "shop-assembly"
ORDER_FN = "arn:aws:lambda:us-east-1:000000000000:function:Shop-OrderFn"
META_FN = "arn:aws:lambda:us-east-1:000000000000:function:shop-meta"
NOW = datetime(2026, 11, 24, 14, 27, 32, 123000, tzinfo=UTC)


def method(http_method: str, resource_path: str) -> Method:
    return Method(http_method, resource_path, f"id{resource_path}", ORDER_FN, "AWS_PROXY")


def api(*methods: Method) -> RestApi:
    return RestApi("a1b2c3d4e5", "ShopApi", "prod", "dep4567890", list(methods))


# -- from the template --------------------------------------------------------------------------


def test_rest_api_is_read_from_the_template() -> None:
    stack = {s.name: s for s in read_assembly(FIXTURE, "http://127.0.0.1:4000")}["Shop"]
    (shop_api,) = RestApi.from_stack(stack)
    assert (shop_api.api_id, shop_api.name, shop_api.stage, shop_api.deployment_id) == (
        stack.ref("Api"),
        "ShopApi",
        "prod",
        stack.ref("ApiDeployment"),
    )
    assert shop_api.methods == [
        Method("GET", "/order", stack.ref("ApiOrder"), ORDER_FN, "AWS_PROXY"),
        Method("OPTIONS", "/order", stack.ref("ApiOrder"), "", "MOCK", mock=MockIntegration(200)),
        Method("ANY", "/items/{id}", stack.ref("ApiItemsId"), META_FN, "AWS_PROXY"),
        Method("GET", "/", stack.get_att("Api", "RootResourceId"), ORDER_FN, "AWS_PROXY"),
    ]


def write_api_stack(directory: Path, extra: dict) -> None:
    resources = {
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "A"}},
        "Deployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "Properties": {"RestApiId": {"Ref": "Api"}, "StageName": "v1"},
        },
        **extra,
    }
    manifest = {"artifacts": {"S": {"type": "aws:cloudformation:stack",
                                    "properties": {"templateFile": "S.template.json"}}}}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    (directory / "S.template.json").write_text(json.dumps({"Resources": resources}))


def test_a_deployment_stage_name_makes_a_stage(tmp_path: Path) -> None:
    write_api_stack(tmp_path, {})
    (stack,) = read_assembly(tmp_path, "http://127.0.0.1:4000")
    (only,) = RestApi.from_stack(stack)
    assert (only.stage, only.deployment_id, only.methods) == ("v1", stack.ref("Deployment"), [])


def test_a_proxy_integration_that_is_not_a_lambda_is_an_error(tmp_path: Path) -> None:
    get = {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "HttpMethod": "GET",
            "RestApiId": {"Ref": "Api"},
            "ResourceId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
            "Integration": {"Type": "AWS_PROXY", "Uri": "arn:aws:apigateway:us-east-1:sqs:path/q"},
        },
    }
    write_api_stack(tmp_path, {"Get": get})
    (stack,) = read_assembly(tmp_path, "http://127.0.0.1:4000")
    with pytest.raises(AssemblyError) as error:
        RestApi.from_stack(stack)
    assert str(error.value) == (
        f"{tmp_path / 'S.template.json'}: Resources.Get.Properties.Integration.Uri: "
        "not a Lambda function invocation URI: 'arn:aws:apigateway:us-east-1:sqs:path/q'"
    )


def test_an_openapi_body_is_not_supported(tmp_path: Path) -> None:
    write_api_stack(tmp_path, {})
    template = json.loads((tmp_path / "S.template.json").read_text())
    template["Resources"]["Api"]["Properties"]["Body"] = {"openapi": "3.0.1"}
    (tmp_path / "S.template.json").write_text(json.dumps(template))
    (stack,) = read_assembly(tmp_path, "http://127.0.0.1:4000")
    with pytest.raises(AssemblyError, match=r"Resources\.Api\.Properties: a REST API defined by"):
        RestApi.from_stack(stack)


# -- routing ------------------------------------------------------------------------------------

ROUTES = api(
    method("GET", "/"),
    method("GET", "/order"),
    method("ANY", "/order"),
    method("ANY", "/items/{id}"),
    method("GET", "/items/special"),
    method("GET", "/items/{id}/parts/{part}"),
    method("ANY", "/{proxy+}"),
)


@pytest.mark.parametrize(
    ("http_method", "path", "resource", "chosen_method", "params"),
    [
        ("GET", "/order", "/order", "GET", {}),  # the exact method beats ANY
        ("POST", "/order", "/order", "ANY", {}),
        ("GET", "/items/special", "/items/special", "GET", {}),  # a literal beats {id}
        ("DELETE", "/items/special", "/items/{id}", "ANY", {"id": "special"}),  # falls through
        ("GET", "/items/42", "/items/{id}", "ANY", {"id": "42"}),
        ("GET", "/items/42/parts/7", "/items/{id}/parts/{part}", "GET", {"id": "42", "part": "7"}),
        ("POST", "/items/42/parts/7", "/{proxy+}", "ANY", {"proxy": "items/42/parts/7"}),
        ("GET", "/a/b%2Bc/d", "/{proxy+}", "ANY", {"proxy": "a/b%2Bc/d"}),  # kept as sent
        ("GET", "/test-path/", "/{proxy+}", "ANY", {"proxy": "test-path"}),
        ("GET", "/", "/", "GET", {}),
        ("get", "/order", "/order", "GET", {}),
    ],
)
def test_route_follows_api_gateway_precedence(
    http_method: str, path: str, resource: str, chosen_method: str, params: dict
) -> None:
    found = ROUTES.route(http_method, path)
    assert found is not None
    chosen, path_params = found
    assert (chosen.resource_path, chosen.http_method, path_params) == (
        resource,
        chosen_method,
        params,
    )


def test_greedy_proxy_does_not_match_the_root() -> None:
    assert ROUTES.route("POST", "/") is None  # / has only GET; {proxy+} needs a segment


@pytest.mark.parametrize(
    ("http_method", "path"),
    [
        ("GET", "/Order"),  # paths are case-sensitive
        ("GET", "/items"),  # a resource without methods
        ("GET", "/order/extra"),
        ("PATCH", "/items/special/parts"),
    ],
)
def test_no_route_is_api_gateways_missing_authentication_token(http_method: str, path: str) -> None:
    without_proxy = api(*[m for m in ROUTES.methods if m.resource_path != "/{proxy+}"])
    assert without_proxy.route(http_method, path) is None
    assert MISSING_AUTH_TOKEN == (403, b'{"message":"Missing Authentication Token"}')


def test_error_answers_are_api_gateways() -> None:
    assert INTERNAL_SERVER_ERROR == (502, b'{"message": "Internal server error"}')
    assert ENDPOINT_TIMEOUT == (504, b'{"message": "Endpoint request timed out"}')


# -- the proxy event ------------------------------------------------------------------------------


def test_proxy_event_is_api_gateways_format_1_0() -> None:
    items = Method("GET", "/items/{id}", "res4567890", ORDER_FN, "AWS_PROXY")
    event = proxy_event(
        api(items),
        items,
        {"id": "42"},
        "GET",
        "/items/42",
        [("category", "electronics"), ("category", "books"), ("empty", "")],
        [
            ("Host", "127.0.0.1:4000"),
            ("User-Agent", "curl/8.5.0"),
            ("Accept", "*/*"),
            ("X-Multi", "1"),
            ("x-multi", "2"),
            ("Content-Length", "0"),
            ("Connection", "keep-alive"),
        ],
        b"",
        "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "127.0.0.1",
        NOW,
    )
    extended = event["requestContext"].pop("extendedRequestId")
    assert re.fullmatch(r"[A-Za-z0-9+/]{15}=", extended)
    assert event == {
        "resource": "/items/{id}",
        "path": "/items/42",
        "httpMethod": "GET",
        "headers": {
            "Host": "127.0.0.1:4000",
            "User-Agent": "curl/8.5.0",
            "Accept": "*/*",
            "X-Multi": "2",
            "X-Forwarded-For": "127.0.0.1",
            "X-Forwarded-Port": "4000",
            "X-Forwarded-Proto": "http",
        },
        "multiValueHeaders": {
            "Host": ["127.0.0.1:4000"],
            "User-Agent": ["curl/8.5.0"],
            "Accept": ["*/*"],
            "X-Multi": ["1", "2"],
            "X-Forwarded-For": ["127.0.0.1"],
            "X-Forwarded-Port": ["4000"],
            "X-Forwarded-Proto": ["http"],
        },
        "queryStringParameters": {"category": "books", "empty": ""},
        "multiValueQueryStringParameters": {"category": ["electronics", "books"], "empty": [""]},
        "pathParameters": {"id": "42"},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "res4567890",
            "resourcePath": "/items/{id}",
            "httpMethod": "GET",
            "requestTime": "24/Nov/2026:14:27:32 +0000",
            "path": "/prod/items/42",
            "accountId": "000000000000",
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": "127",
            "requestTimeEpoch": 1795530452123,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": "127.0.0.1",
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": "curl/8.5.0",
                "user": None,
            },
            "domainName": "127.0.0.1:4000",
            "deploymentId": "dep4567890",
            "apiId": "a1b2c3d4e5",
        },
        "body": None,
        "isBase64Encoded": False,
    }


def event_for(body: bytes, headers: list[tuple[str, str]], request_id: str = "r1") -> dict:
    order = method("POST", "/order")
    return proxy_event(api(order), order, {}, "POST", "/order", [], headers, body,
                       request_id, "10.0.0.1", NOW)


def test_empty_query_headers_and_path_parameters_are_null() -> None:
    event = event_for(b"", [])
    assert [event[k] for k in ("headers", "multiValueHeaders", "queryStringParameters",
                               "multiValueQueryStringParameters", "pathParameters")] == [None] * 5
    assert event["requestContext"]["identity"]["userAgent"] is None


def test_a_text_body_is_passed_as_text_and_a_binary_body_as_base64() -> None:
    text = event_for('{"name": "café"}'.encode(), [("Content-Type", "application/json")])
    assert (text["body"], text["isBase64Encoded"]) == ('{"name": "café"}', False)
    binary = event_for(b"\xff\xd8\xff\xe0", [("Content-Type", "image/jpeg")])
    assert (binary["body"], binary["isBase64Encoded"]) == ("/9j/4A==", True)


def test_each_request_has_its_own_extended_request_id() -> None:
    first = event_for(b"", [], "r1")["requestContext"]["extendedRequestId"]
    assert first != event_for(b"", [], "r2")["requestContext"]["extendedRequestId"]


# -- the proxy answer -----------------------------------------------------------------------------


def answer(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"statusCode": 200, "headers": {"Content-Type": "application/json"},
             "body": '{"status": "order_created"}'},
            (200, [("Content-Type", "application/json")], b'{"status": "order_created"}'),
        ),
        ({"statusCode": 200}, (200, [("Content-Type", "application/json")], b"")),
        ({"statusCode": "201"}, (201, [("Content-Type", "application/json")], b"")),
        ({"headers": {"test-header": "value"}},  # every field is optional: 200 by default
         (200, [("test-header", "value"), ("Content-Type", "application/json")], b"")),
        ({"statusCode": 200, "headers": None}, (200, [("Content-Type", "application/json")], b"")),
        ({"statusCode": 204, "headers": {"X-Flag": True}, "body": None},
         (204, [("X-Flag", "true"), ("Content-Type", "application/json")], b"")),
        ({"statusCode": 200, "body": base64.b64encode(b"test-data").decode(),
          "isBase64Encoded": True},
         (200, [("Content-Type", "application/json")], b"test-data")),
        ({"statusCode": 200, "body": "dGVzdC1kYXRh", "isBase64Encoded": False},
         (200, [("Content-Type", "application/json")], b"dGVzdC1kYXRh")),
        ({"statusCode": 200, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}},
         (200, [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
                ("Content-Type", "application/json")], b"")),
        ({"statusCode": 200, "headers": {"test-multi": "solo", "Content-Type": "text/plain"},
          "multiValueHeaders": {"Test-Multi": ["multi"]}, "body": "hé"},
         (200, [("Content-Type", "text/plain"), ("Test-Multi", "multi")], "hé".encode())),
    ],
)
def test_proxy_response_makes_the_http_answer(payload: object, expected: tuple) -> None:
    assert proxy_response(answer(payload), binary=True) == expected


def test_a_base64_answer_stays_text_unless_the_request_accepts_a_binary_type() -> None:
    payload = answer({"body": "dGVzdC1kYXRh", "isBase64Encoded": True})
    assert proxy_response(payload)[2] == b"dGVzdC1kYXRh"
    assert proxy_response(payload, binary=True)[2] == b"test-data"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not JSON"),
        (answer("justAString"), "not a JSON object"),
        (answer(None), "not a JSON object"),
        (answer({"statusCode": 200, "wrongValue": "value"}), "field(s) wrongValue not allowed"),
        (answer({"statusCode": 200, "cookies": ["a=1"]}), "field(s) cookies not allowed"),
        (  # a function's error answer is no proxy answer
            answer({"errorMessage": "boom", "errorType": "Exception", "stackTrace": []}),
            "field(s) errorMessage, errorType, stackTrace not allowed",
        ),
        (answer({"statusCode": 200, "body": {"hey": "dude"}}), "body must be a string"),
        (answer({"statusCode": "test"}), "statusCode must be an HTTP status code"),
        (answer({"statusCode": True}), "statusCode must be an HTTP status code"),
        (answer({"statusCode": 200, "headers": ["a"]}), "must be JSON objects"),
        (answer({"statusCode": 200, "headers": {"X-Count": 5}}), "a header value must be"),
        (answer({"statusCode": 200, "multiValueHeaders": {"a": "b"}}), "must be a list"),
        (answer({"statusCode": 200, "isBase64Encoded": "true"}), "must be true or false"),
        (answer({"statusCode": 200, "body": "%%%", "isBase64Encoded": True}), "not base64"),
    ],
)
def test_answers_api_gateway_rejects_are_malformed(payload: bytes, reason: str) -> None:
    with pytest.raises(MalformedProxyResponse) as error:
        proxy_response(payload, binary=True)
    assert reason in str(error.value)


# -- authorizers, stage variables, timeouts, binary media types from the template ----------------

FN_URI = ("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
          "arn:aws:lambda:us-east-1:000000000000:function:{}/invocations")


def secured_stack(directory: Path, authorizer_function: str = "S-Fn",
                  authorizer_id: object = None) -> Path:
    fn = {"Type": "AWS::Lambda::Function", "Properties": {
        "Runtime": "python3.12", "Handler": "index.handler", "Code": {"ZipFile": "x"}}}
    get = {"Type": "AWS::ApiGateway::Method", "Properties": {
        "HttpMethod": "GET", "RestApiId": {"Ref": "Api"}, "AuthorizationType": "CUSTOM",
        "AuthorizerId": authorizer_id or {"Ref": "Auth"}, "ApiKeyRequired": True,
        "ResourceId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
        "Integration": {"Type": "AWS_PROXY", "TimeoutInMillis": 5000,
                        "Uri": FN_URI.format("${stageVariables.fn}")}}}
    auth = {"Type": "AWS::ApiGateway::Authorizer", "Properties": {
        "RestApiId": {"Ref": "Api"}, "Type": "TOKEN", "Name": "Tok",
        "IdentitySource": "method.request.header.Authorization",
        "AuthorizerUri": FN_URI.format(authorizer_function)}}
    write_api_stack(directory, {"Fn": fn, "Get": get, "Auth": auth})
    template = json.loads((directory / "S.template.json").read_text())
    template["Resources"]["Deployment"]["Properties"]["StageDescription"] = {
        "Variables": {"fn": "S-Fn"}}
    template["Resources"]["Api"]["Properties"]["BinaryMediaTypes"] = ["image/*"]
    (directory / "S.template.json").write_text(json.dumps(template))
    return directory


def test_authorizers_stage_variables_and_timeouts_are_read(tmp_path: Path) -> None:
    (stack,) = read_assembly(secured_stack(tmp_path), "http://127.0.0.1:4000")
    (read,) = RestApi.from_stack(stack)
    (get,) = read.methods
    assert (get.authorization_type, get.api_key_required, get.timeout_s) == ("CUSTOM", True, 5.0)
    authorizer = read.authorizers[get.authorizer_id]
    assert (authorizer.type, authorizer.name, authorizer.ttl_s) == ("TOKEN", "Tok", 300)
    assert authorizer.identity_sources == ("method.request.header.Authorization",)
    assert read.stage_variables == {"fn": "S-Fn"}
    assert get.function(read.stage_variables) == (
        "arn:aws:lambda:us-east-1:000000000000:function:S-Fn")
    assert read.is_binary("image/png") and not read.is_binary("application/json")


@pytest.mark.parametrize(("function", "authorizer_id", "message"), [
    ("Elsewhere", None, r"Resources\.Auth\.Properties\.AuthorizerUri: not the invocation URI "
                        r"of a function of this template"),
    ("S-Fn", "unknown", r"Resources\.Get\.Properties\.AuthorizerId: 'unknown' is not a TOKEN "
                        r"or REQUEST authorizer of this API"),
])
def test_an_authorizer_cloudformation_cannot_wire_stops_the_start(
        tmp_path: Path, function: str, authorizer_id: str | None, message: str) -> None:
    (stack,) = read_assembly(secured_stack(tmp_path, function, authorizer_id),
                             "http://127.0.0.1:4000")
    with pytest.raises(AssemblyError, match=message):
        RestApi.from_stack(stack)


def test_the_event_carries_stage_variables_authorizer_and_a_binary_body() -> None:
    order = method("POST", "/order")
    binary = RestApi("a1b2c3d4e5", "ShopApi", "prod", "dep4567890", [order],
                     stage_variables={"color": "blue"}, binary_media_types=["image/png"])
    event = proxy_event(binary, order, {}, "POST", "/order", [],
                        [("Content-Type", "image/png")], b"abc", "r1", "10.0.0.1", NOW,
                        authorizer={"principalId": "ann"}, identity={"apiKey": "k"})
    assert (event["body"], event["isBase64Encoded"]) == ("YWJj", True)
    assert event["stageVariables"] == {"color": "blue"}
    assert event["requestContext"]["authorizer"] == {"principalId": "ann"}
    assert event["requestContext"]["identity"]["apiKey"] == "k"
    text = proxy_event(binary, order, {}, "POST", "/order", [], [("Content-Type", "text/plain")],
                       b"abc", "r1", "10.0.0.1", NOW)
    assert (text["body"], text["isBase64Encoded"]) == ("abc", False)
    assert "authorizer" not in text["requestContext"]


def test_api_gateway_appends_the_caller_to_x_forwarded_for() -> None:
    event = event_for(b"", [("Host", "localhost:4000"), ("x-forwarded-for", "203.0.113.9")])
    assert event["headers"]["x-forwarded-for"] == "203.0.113.9, 10.0.0.1"
    assert event["multiValueHeaders"]["X-Forwarded-Port"] == ["4000"]
