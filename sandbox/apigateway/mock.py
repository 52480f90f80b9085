"""MOCK integrations: API Gateway answers by itself, as the CORS preflight the CDK generates does.

What AWS does (REST API developer guide, "Set up mock integrations"): the request template's
`statusCode` (`{ statusCode: 200 }`) picks the integration response whose `SelectionPattern`
(a regular expression over the status code) matches it, else the one without a pattern; none
-> 500 "Internal server error". That integration response's `StatusCode` is the answer's status,
its `ResponseParameters` make the headers (a quoted literal `'*'`, or `method.request.header|
querystring|path.NAME`, or `stageVariables.NAME`; `integration.response.*` is empty: a mock has
no backend answer), and its `ResponseTemplates` the body. Each `method.response.header.NAME`
must be declared in the `MethodResponses` of that status code, or CloudFormation fails.

The templates run here are exactly the ones the CDK's CORS options generate (the snippet that
copies the request's `Origin` into `Access-Control-Allow-Origin` when it is one of several
allowed origins) and templates without any VTL (their text is the body). Any other VTL is not
run: the method is named at start and answers an empty body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.apigateway.gateway_responses import CONFIGURATION_ERROR
from sandbox.assembly import AssemblyError
from sandbox.core.wire import Response

_STATUS_IN_TEMPLATE = re.compile(r'"?statusCode"?\s*:\s*"?(\d{3})')
_HEADER = "method.response.header."
_REQUEST_VALUE = re.compile(r"^method\.request\.(header|querystring|path)\.(.+)$")
_CORS_ORIGIN = re.compile(r'\$origin == "([^"]*)"')


def cdk_cors_template(origins: list[str]) -> str:
    """The response template `aws_apigateway` writes for a preflight allowing several origins
    (the first is the static Access-Control-Allow-Origin; these are the others)."""
    condition = " || ".join(f'$origin == "{origin}"' for origin in origins)
    return "\n".join([
        '#set($origin = $input.params().header.get("Origin"))',
        '#if($origin == "")',
        '  #set($origin = $input.params().header.get("origin"))',
        "#end",
        f"#if({condition})",
        "  #set($context.responseOverride.header.Access-Control-Allow-Origin = $origin)",
        "#end",
    ])


@dataclass(frozen=True)
class Request:
    """What a mock's mappings may read of the request."""

    headers: list[tuple[str, str]]  # as received: VTL's header map is case-sensitive
    query: Mapping[str, str]
    path: Mapping[str, str]
    stage_variables: Mapping[str, str]

    def header(self, name: str) -> str | None:
        return next((value for key, value in reversed(self.headers) if key == name), None)

    def value(self, expression: str) -> str | None:
        """A mapping expression's value; None leaves the header out."""
        if expression.startswith("'") and expression.endswith("'") and len(expression) >= 2:
            return expression[1:-1]
        if expression.startswith("stageVariables."):
            return self.stage_variables.get(expression.removeprefix("stageVariables."))
        found = _REQUEST_VALUE.match(expression)
        if found is None:  # integration.response.*: a mock has no backend answer
            return None
        where, name = found.groups()
        if where == "header":
            lower = name.lower()  # method.request.header.* is not case-sensitive
            return next((v for k, v in reversed(self.headers) if k.lower() == lower), None)
        return (self.query if where == "querystring" else self.path).get(name)


@dataclass(frozen=True)
class IntegrationResponse:
    status: int
    pattern: str  # "" for the default response
    headers: dict[str, str]  # header name -> mapping expression
    content_type: str
    body: str = ""  # a template without VTL
    cors_origins: tuple[str, ...] = ()  # the CDK's CORS template: the origins it echoes

    def answer(self, request: Request) -> Response:
        headers = {name: request.value(expression) for name, expression in self.headers.items()}
        origin = request.header("Origin") or request.header("origin")
        if origin in self.cors_origins:
            headers["Access-Control-Allow-Origin"] = origin
        result = [(name, value) for name, value in headers.items() if value is not None]
        return self.status, [("Content-Type", self.content_type), *result], self.body.encode()


@dataclass(frozen=True)
class MockIntegration:
    status_code: int  # what the request template says
    responses: list[IntegrationResponse] = field(default_factory=list)
    vtl_not_run: bool = False  # a response template with VTL the sandbox does not run

    def answer(self, request: Request) -> Response:
        code = str(self.status_code)
        chosen = next((r for r in self.responses if r.pattern and re.fullmatch(r.pattern, code)),
                      None) or next((r for r in self.responses if not r.pattern), None)
        return CONFIGURATION_ERROR if chosen is None else chosen.answer(request)


def mock_integration(integration: dict[str, Any], method_responses: list[dict[str, Any]],
                     where: str) -> MockIntegration:
    """`where` is "<template file>: Resources.<Method>.Properties" for deploy-time errors."""
    templates = integration.get("RequestTemplates") or {}
    template = templates.get("application/json", next(iter(templates.values()), ""))
    found = _STATUS_IN_TEMPLATE.search(str(template))
    declared = {
        str(response.get("StatusCode")): set(response.get("ResponseParameters") or {})
        for response in method_responses
    }
    responses = []
    vtl_not_run = False
    for i, response in enumerate(integration.get("IntegrationResponses") or []):
        here = f"{where}.Integration.IntegrationResponses[{i}]"
        status = str(response.get("StatusCode", ""))
        check_regex(f"{here}.SelectionPattern", response.get("SelectionPattern") or "")
        if not re.fullmatch(r"[1-5][0-9][0-9]", status):
            raise AssemblyError(f"{here}.StatusCode: {status!r} is not an HTTP status code "
                                "(100 to 599)")
        if status not in declared:
            raise AssemblyError(f"{here}.StatusCode: no method response exists for status "
                                f"{status!r} (MethodResponses declares {sorted(declared)})")
        headers = {}
        for name, expression in (response.get("ResponseParameters") or {}).items():
            if name not in declared[status]:
                raise AssemblyError(f"{here}.ResponseParameters: {name} is not declared in "
                                    f"the method response for status {status}")
            headers[name.removeprefix(_HEADER)] = str(expression)
        content_type, body, origins = _response_template(response.get("ResponseTemplates") or {})
        vtl_not_run |= body is None
        responses.append(IntegrationResponse(int(status), str(response.get("SelectionPattern")
                                                              or ""),
                                             headers, content_type, body or "", origins))
    return MockIntegration(int(found.group(1)) if found else 200, responses, vtl_not_run)


def check_regex(where: str, pattern: str) -> None:
    """A pattern matched against each request is compiled at start: a broken one stops the
    start naming its property, rather than failing each request."""
    try:
        re.compile(pattern)
    except re.error as error:
        raise AssemblyError(f"{where}: {pattern!r} is not a valid regular expression: "
                            f"{error}") from None


def _response_template(templates: dict[str, str]) -> tuple[str, str | None, tuple[str, ...]]:
    """(content type, body, CORS origins); body None: VTL the sandbox does not run."""
    if not templates:
        return "application/json", "", ()
    content_type = "application/json" if "application/json" in templates else next(
        iter(templates))
    template = str(templates[content_type])
    origins = _CORS_ORIGIN.findall(template)[1:]  # the first compares with ""
    if origins and template == cdk_cors_template(origins):
        return content_type, "", tuple(origins)
    if "$" in template or "#" in template:
        return content_type, None, ()
    return content_type, template, ()
