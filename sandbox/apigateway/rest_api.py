"""API Gateway REST API semantics: routes, the Lambda proxy event, and the proxy answer.

Pure: the HTTP server and the Lambda invocation are elsewhere. What is here is what a function
behind a REST API relies on: which resource and method a request reaches, the exact event the
function receives (payload format 1.0), and which answers API Gateway turns into a 502.

Binary media types (developer guide, "Binary media types for REST APIs"): a request whose
Content-Type matches one of the API's `BinaryMediaTypes` (wildcards allowed: `image/*`, `*/*`)
reaches the function base64-encoded with `isBase64Encoded` true; an answer with
`isBase64Encoded` true is decoded to bytes only when the request's Accept header (its first
type) matches one, else the client gets the base64 text as is. Stage variables
(`AWS::ApiGateway::Stage` Variables) are the event's `stageVariables` and fill
`${stageVariables.NAME}` in an integration's URI at each request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from sandbox.apigateway.authorizers import DEFAULT_TTL_S, Authorizer
from sandbox.apigateway.mock import MockIntegration, check_regex, mock_integration
from sandbox.assembly import ACCOUNT, AssemblyError, Stack

MISSING_AUTH_TOKEN = (403, b'{"message":"Missing Authentication Token"}')
INTERNAL_SERVER_ERROR = (502, b'{"message": "Internal server error"}')
ENDPOINT_TIMEOUT = (504, b'{"message": "Endpoint request timed out"}')

_LAMBDA_URI = re.compile(
    r"^arn:[^:]+:apigateway:[^:]+:lambda:path/2015-03-31/functions/(?P<arn>.+)/invocations$"
)
_STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")
_RESPONSE_FIELDS = {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
# API Gateway does not hand these to the function (they describe the connection, not the call).
_DROPPED_HEADERS = {"connection", "content-length"}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class MalformedProxyResponse(ValueError):
    """The function's answer is not one API Gateway accepts: the client gets a 502."""


@dataclass(frozen=True)
class Method:
    http_method: str  # "GET", ..., or "ANY"
    resource_path: str  # "/order", "/items/{id}", "/{proxy+}"
    resource_id: str
    function_arn: str  # "" unless the integration is AWS_PROXY; may hold ${stageVariables.x}
    integration_type: str  # "AWS_PROXY", "MOCK", ...
    authorization_type: str = "NONE"  # "NONE", "CUSTOM", "AWS_IAM", "COGNITO_USER_POOLS"
    authorizer_id: str = ""
    api_key_required: bool = False
    timeout_s: float | None = None  # the integration's TimeoutInMillis, when it sets one
    mock: MockIntegration | None = None

    def function(self, stage_variables: dict[str, str]) -> str:
        """The function this request reaches, its URI's stage variables filled in."""
        return _STAGE_VARIABLE.sub(lambda m: stage_variables.get(m.group(1), ""),
                                   self.function_arn)


@dataclass
class RestApi:
    """One deployed stage of a REST API (an API with two stages gives two)."""

    api_id: str
    name: str
    stage: str
    deployment_id: str
    methods: list[Method]
    region: str = "us-east-1"
    stage_variables: dict[str, str] = field(default_factory=dict)
    binary_media_types: list[str] = field(default_factory=list)
    api_key_source: str = "HEADER"  # or "AUTHORIZER"
    authorizers: dict[str, Authorizer] = field(default_factory=dict)
    not_emulated: list[str] = field(default_factory=list)  # said at start

    @classmethod
    def from_stack(cls, stack: Stack) -> list[RestApi]:
        apis = []
        for api in stack.of_type("AWS::ApiGateway::RestApi"):
            where = f"{stack.template_file}: Resources.{api.logical_id}.Properties"
            if "Body" in api.properties or "BodyS3Location" in api.properties:
                raise AssemblyError(
                    f"{where}: a REST API defined by an OpenAPI document (Body, BodyS3Location) "
                    "is not supported; define resources and methods instead"
                )
            api_id = stack.ref(api.logical_id)
            props = stack.properties(api.logical_id)
            authorizers = _authorizers(stack, api_id)
            methods = _methods(stack, api_id, stack.get_att(api.logical_id, "RootResourceId"),
                               authorizers)
            not_run = [f"MOCK response template (VTL) of {m.http_method} {m.resource_path}"
                       for m in methods if m.mock is not None and m.mock.vtl_not_run]
            apis += [
                cls(api_id, str(props.get("Name", api.logical_id)), stage, deployment_id,
                    methods, stack.region, variables,
                    [str(t) for t in props.get("BinaryMediaTypes") or []],
                    str(props.get("ApiKeySourceType", "HEADER")), authorizers, not_run)
                for stage, deployment_id, variables in _stages(stack, api_id)
            ]
        return apis

    def is_binary(self, media_type: str | None) -> bool:
        kind = (media_type or "").split(";")[0].split(",")[0].strip().lower()
        return bool(kind) and any(fnmatchcase(kind, t.lower()) for t in self.binary_media_types)

    def route(self, http_method: str, path: str) -> tuple[Method, dict[str, str]] | None:
        """The method a request reaches, and its path parameters; None: API Gateway's 403.

        `path` is without the stage. API Gateway picks the most specific resource that has the
        request's method or ANY (a literal segment beats `{param}`, which beats `{proxy+}`), so
        a method missing on a specific resource falls through to a less specific one.
        """
        segments = [segment for segment in path.split("/") if segment]
        candidates = []
        for method in self.methods:
            if method.http_method not in (http_method.upper(), "ANY"):
                continue
            parameters = _match(method.resource_path, segments)
            if parameters is not None:
                rank = (_specificity(method.resource_path), method.http_method == "ANY")
                candidates.append((rank, method, parameters))
        if not candidates:
            return None
        _, method, parameters = min(candidates, key=lambda candidate: candidate[0])
        return method, parameters


def _authorizers(stack: Stack, api_id: str) -> dict[str, Authorizer]:
    """The API's authorizers by id; a Lambda authorizer's function must be in the template."""
    functions = {stack.get_att(f.logical_id, "Arn")
                 for f in stack.of_type("AWS::Lambda::Function")}
    found = {}
    for resource in stack.of_type("AWS::ApiGateway::Authorizer"):
        where = f"Resources.{resource.logical_id}.Properties"
        props = stack.properties(resource.logical_id)
        if props["RestApiId"] != api_id:
            continue
        kind = str(props.get("Type", ""))
        function_arn = ""
        if kind in ("TOKEN", "REQUEST"):
            uri = _LAMBDA_URI.match(str(props.get("AuthorizerUri", "")))
            function_arn = uri.group("arn") if uri else ""
            unqualified = ":".join(function_arn.split(":")[:7])  # an alias's ARN names it too
            if unqualified not in functions and "${" not in function_arn:
                raise AssemblyError(
                    f"{stack.template_file}: {where}.AuthorizerUri: not the invocation URI of a "
                    f"function of this template: {props.get('AuthorizerUri')!r}")
        elif kind != "COGNITO_USER_POOLS":
            raise AssemblyError(f"{stack.template_file}: {where}.Type: {kind!r} is not TOKEN, "
                                "REQUEST or COGNITO_USER_POOLS")
        check_regex(f"{stack.template_file}: {where}.IdentityValidationExpression",
                     props.get("IdentityValidationExpression", ""))
        default_source = "" if kind == "REQUEST" else "method.request.header.Authorization"
        sources = str(props.get("IdentitySource", default_source))
        authorizer_id = stack.ref(resource.logical_id)
        found[authorizer_id] = Authorizer(
            authorizer_id, str(props.get("Name", resource.logical_id)), kind, function_arn,
            tuple(s.strip() for s in sources.split(",") if s.strip()),
            props.get("IdentityValidationExpression"),
            int(props.get("AuthorizerResultTtlInSeconds", DEFAULT_TTL_S)))
    return found


def _methods(stack: Stack, api_id: str, root_id: str,
             authorizers: dict[str, Authorizer]) -> list[Method]:
    parents: dict[str, tuple[str, str]] = {}  # resource id -> (parent id, path part)
    for resource in stack.of_type("AWS::ApiGateway::Resource"):
        props = stack.properties(resource.logical_id)
        if props["RestApiId"] == api_id:
            parents[stack.ref(resource.logical_id)] = (props["ParentId"], props["PathPart"])

    def path_of(resource_id: str, where: str, seen: tuple[str, ...] = ()) -> str:
        if resource_id == root_id:
            return ""
        if resource_id not in parents or resource_id in seen:
            raise AssemblyError(
                f"{stack.template_file}: {where}: resource id {resource_id} is not a resource "
                "of this REST API (or its ParentId chain loops)"
            )
        parent, part = parents[resource_id]
        return f"{path_of(parent, where, (*seen, resource_id))}/{part}"

    methods = []
    for resource in stack.of_type("AWS::ApiGateway::Method"):
        lid = resource.logical_id
        props = stack.properties(lid)
        if props["RestApiId"] != api_id:
            continue
        resource_id = props["ResourceId"]
        integration = props.get("Integration", {})
        kind = str(integration.get("Type", "MOCK"))
        function_arn = ""
        if kind == "AWS_PROXY":
            found = _LAMBDA_URI.match(str(integration.get("Uri", "")))
            if found is None:
                raise AssemblyError(
                    f"{stack.template_file}: Resources.{lid}.Properties.Integration.Uri: "
                    f"not a Lambda function invocation URI: {integration.get('Uri')!r}"
                )
            function_arn = found.group("arn")
        where = f"{stack.template_file}: Resources.{lid}.Properties"
        authorization = str(props.get("AuthorizationType", "NONE"))
        authorizer_id = props.get("AuthorizerId", "")
        wanted = {"CUSTOM": ("TOKEN", "REQUEST"), "COGNITO_USER_POOLS": ("COGNITO_USER_POOLS",)}
        if authorization in wanted and (authorizer_id not in authorizers or authorizers[
                authorizer_id].type not in wanted[authorization]):
            raise AssemblyError(f"{where}.AuthorizerId: {authorizer_id!r} is not a "
                                f"{' or '.join(wanted[authorization])} authorizer of this API")
        timeout = integration.get("TimeoutInMillis")
        mock = None
        if kind == "MOCK":
            mock = mock_integration(integration, props.get("MethodResponses", []), where)
        methods.append(
            Method(
                http_method=str(props.get("HttpMethod", "")).upper(),
                resource_path=path_of(resource_id, f"Resources.{lid}.Properties.ResourceId")
                or "/",
                resource_id=resource_id,
                function_arn=function_arn,
                integration_type=kind,
                authorization_type=authorization,
                authorizer_id=authorizer_id,
                api_key_required=props.get("ApiKeyRequired") in (True, "true"),
                timeout_s=int(timeout) / 1000 if timeout is not None else None,
                mock=mock,
            )
        )
    return methods


def _stages(stack: Stack, api_id: str) -> list[tuple[str, str, dict[str, str]]]:
    """(stage name, deployment id, stage variables) for each stage of the API, from Stages and
    Deployments."""
    stages: dict[str, tuple[str, dict[str, str]]] = {}
    for stage in stack.of_type("AWS::ApiGateway::Stage"):
        props = stack.properties(stage.logical_id)
        if props["RestApiId"] == api_id:
            stages[stack.ref(stage.logical_id)] = (props.get("DeploymentId", ""),
                                                   props.get("Variables", {}))
    for deployment in stack.of_type("AWS::ApiGateway::Deployment"):
        props = stack.properties(deployment.logical_id)
        if "StageName" in props and props["RestApiId"] == api_id:
            stages[props["StageName"]] = (stack.ref(deployment.logical_id), props.get(
                "StageDescription", {}).get("Variables", {}))
    return [(name, deployment, variables) for name, (deployment, variables) in stages.items()]


def _match(resource_path: str, segments: list[str]) -> dict[str, str] | None:
    parts = [part for part in resource_path.split("/") if part]
    parameters = {}
    for i, part in enumerate(parts):
        if i >= len(segments):
            return None
        if part.startswith("{") and part.endswith("+}"):  # greedy: one segment or more
            parameters[part[1:-2]] = "/".join(segments[i:])
            return parameters
        if part.startswith("{") and part.endswith("}"):
            parameters[part[1:-1]] = segments[i]
        elif part != segments[i]:
            return None
    return parameters if len(parts) == len(segments) else None


def _specificity(resource_path: str) -> tuple[int, ...]:
    """Lower is more specific, compared segment by segment: literal, then {param}, {proxy+}."""
    return tuple(
        2 if part.endswith("+}") else 1 if part.startswith("{") else 0
        for part in resource_path.split("/")
        if part
    )


def _multi(pairs: list[tuple[str, str]], *, fold_case: bool) -> tuple[dict, dict]:
    """(last value per name, every value per name); names sent in several cases fold together."""
    names: dict[str, str] = {}  # folded name -> name as first sent
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        name = names.setdefault(name.lower() if fold_case else name, name)
        multi.setdefault(name, []).append(value)
    return {name: values[-1] for name, values in multi.items()}, multi


def extended_request_id(request_id: str) -> str:
    """API Gateway's second request id (`x-amz-apigw-id`), like `CAmpLEeXaMpLeQ=`."""
    return base64.b64encode(hashlib.sha256(request_id.encode()).digest()[:11]).decode()


def _forwarded(headers: list[tuple[str, str]], source_ip: str) -> list[tuple[str, str]]:
    """The headers API Gateway adds for the integration: the caller's address appended to
    X-Forwarded-For, and the port and scheme it was reached on (here: plain HTTP on the
    sandbox's port, where AWS says 443 and https). A request with no headers at all (API
    Gateway's test invocation) gets none."""
    if not headers:
        return headers
    names = {name.lower(): name for name, _ in headers}
    given = dict((name.lower(), value) for name, value in headers)
    chain = f"{given['x-forwarded-for']}, {source_ip}" if "x-forwarded-for" in given \
        else source_ip
    host = given.get("host", "")
    port = host.rsplit(":", 1)[1] if ":" in host.lstrip("[").split("]")[-1] else "80"
    added = {"X-Forwarded-For": chain, "X-Forwarded-Port": port, "X-Forwarded-Proto": "http"}
    kept = [(name, value) for name, value in headers if name.lower() not in
            {key.lower() for key in added}]
    return kept + [(names.get(key.lower(), key), value) for key, value in added.items()]


def proxy_event(
    api: RestApi,
    method: Method,
    path_params: dict[str, str],
    http_method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: bytes,
    request_id: str,
    source_ip: str,
    now: datetime,
    authorizer: dict[str, Any] | None = None,
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The event a Lambda proxy integration receives (REST API, payload format 1.0).

    `path` is as requested, without the stage; `query` is decoded
    (`urllib.parse.parse_qsl(query, keep_blank_values=True)`); `headers` in the order received.
    `authorizer` is what an authorizer said (`requestContext.authorizer`), `identity` what the
    caller proved (an API key, IAM credentials) over `requestContext.identity`'s nulls.
    """
    kept = [(name, value) for name, value in headers if name.lower() not in _DROPPED_HEADERS]
    kept = _forwarded(kept, source_ip)
    single_headers, multi_headers = _multi(kept, fold_case=True)
    single_query, multi_query = _multi(query, fold_case=False)
    lower = {name.lower(): value for name, value in single_headers.items()}
    domain = lower.get("host", "localhost")
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)
    text: str | None = None
    encoded = False
    if body and api.is_binary(lower.get("content-type")):
        text, encoded = base64.b64encode(body).decode(), True
    elif body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
    context: dict[str, Any] = {} if authorizer is None else {"authorizer": authorizer}
    return {
        "resource": method.resource_path,
        "path": path,
        "httpMethod": http_method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_params or None,
        "stageVariables": dict(api.stage_variables) or None,
        "requestContext": {
            **context,
            "resourceId": method.resource_id,
            "resourcePath": method.resource_path,
            "httpMethod": http_method,
            "extendedRequestId": extended_request_id(request_id),
            "requestTime": (
                f"{now:%d}/{_MONTHS[now.month - 1]}/{now:%Y:%H:%M:%S} +0000"
            ),
            "path": f"/{api.stage}{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": api.stage,
            "domainPrefix": domain.split(":")[0].split(".")[0],
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": lower.get("user-agent"),
                "user": None,
                **(identity or {}),
            },
            "domainName": domain,
            "deploymentId": api.deployment_id,
            "apiId": api.api_id,
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def _header_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise MalformedProxyResponse(f"{where}: a header value must be a string, got {value!r}")


def _status_code(value: Any) -> int:
    """An int, or a string of digits (API Gateway accepts "201"); absent or null means 200."""
    if value is None:
        return 200
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 599:
        raise MalformedProxyResponse(f"statusCode must be an HTTP status code, got {value!r}")
    return value


def proxy_response(payload: bytes, binary: bool = False
                   ) -> tuple[int, list[tuple[str, str]], bytes]:
    """The HTTP answer API Gateway makes of a function's proxy answer: (status, headers, body).

    `binary`: the request accepts a binary media type of the API, so a base64 body (with
    isBase64Encoded) is decoded; otherwise the client gets the base64 text.

    Raises MalformedProxyResponse for what API Gateway rejects with a 502: not a JSON object,
    a field other than statusCode, headers, multiValueHeaders, body and isBase64Encoded (so also
    a function's error answer), or a field of the wrong type. Every field is optional.
    """
    try:
        answer = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise MalformedProxyResponse("the function's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise MalformedProxyResponse(f"the function's answer is not a JSON object: {answer!r}")
    unknown = sorted(set(answer) - _RESPONSE_FIELDS)
    if unknown:
        raise MalformedProxyResponse(
            f"field(s) {', '.join(unknown)} not allowed: a proxy answer has only "
            "statusCode, headers, multiValueHeaders, body and isBase64Encoded"
        )
    status = _status_code(answer.get("statusCode"))
    headers = answer.get("headers") or {}
    multi = answer.get("multiValueHeaders") or {}
    if not isinstance(headers, dict) or not isinstance(multi, dict):
        raise MalformedProxyResponse("headers and multiValueHeaders must be JSON objects")
    if not all(isinstance(values, list) for values in multi.values()):
        raise MalformedProxyResponse("each value of multiValueHeaders must be a list")
    body = answer.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedProxyResponse(f"body must be a string, got {type(body).__name__}")
    encoded = answer.get("isBase64Encoded")
    if encoded is not None and not isinstance(encoded, bool):
        raise MalformedProxyResponse(f"isBase64Encoded must be true or false, got {encoded!r}")
    data = (body or "").encode()
    if encoded and binary:
        try:
            data = base64.b64decode(data, validate=True)
        except binascii.Error:
            raise MalformedProxyResponse("isBase64Encoded is true but body is not base64") from None

    # A name in multiValueHeaders replaces the same name in headers.
    replaced = {name.lower() for name in multi}
    result = [
        (name, _header_value(value, f"headers.{name}"))
        for name, value in headers.items()
        if name.lower() not in replaced
    ]
    result += [
        (name, _header_value(value, f"multiValueHeaders.{name}"))
        for name, values in multi.items()
        for value in values
    ]
    if not any(name.lower() == "content-type" for name, _ in result):
        result.append(("Content-Type", "application/json"))
    return status, result, data
