"""MOCK integrations: the CORS preflight exactly as the CDK generates it, selection of the
integration response, its parameter mappings, and the deploy-time errors CloudFormation gives."""

import json
from pathlib import Path

import pytest

from sandbox.apigateway.mock import Request, cdk_cors_template, mock_integration
from sandbox.apigateway.rest_api import RestApi
from sandbox.assembly import AssemblyError, read_assembly

HEADERS = ["Access-Control-Allow-Origin", "Access-Control-Allow-Methods"]


def request(*headers: tuple[str, str], query: dict | None = None) -> Request:
    return Request(list(headers), query or {}, {"id": "7"}, {"env": "dev"})


def integration(*responses: dict, template: str = "{ statusCode: 200 }") -> dict:
    return {"Type": "MOCK", "RequestTemplates": {"application/json": template},
            "IntegrationResponses": list(responses)}


def declared(*statuses: str, names: tuple[str, ...] = ()) -> list[dict]:
    return [{"StatusCode": s, "ResponseParameters": {f"method.response.header.{n}": True
                                                     for n in names}} for s in statuses]


def test_the_request_templates_status_code_picks_the_integration_response() -> None:
    mock = mock_integration(integration(
        {"StatusCode": "200"},
        {"StatusCode": "404", "SelectionPattern": "4\\d\\d",
         "ResponseTemplates": {"application/json": '{"message": "gone"}'}},
        template='{"statusCode": 404}'), declared("200", "404"), "T: Resources.M.Properties")
    assert mock.answer(request()) == (404, [("Content-Type", "application/json")],
                                      b'{"message": "gone"}')


def test_no_matching_and_no_default_response_is_a_500() -> None:
    mock = mock_integration(integration({"StatusCode": "400", "SelectionPattern": "4\\d\\d"}),
                            declared("400"), "T: Resources.M.Properties")
    status, _, body = mock.answer(request())
    assert (status, body) == (500, b'{"message": "Internal server error"}')


def test_response_parameters_map_literals_and_request_values() -> None:
    names = ("X-Literal", "X-From-Header", "X-From-Query", "X-From-Path", "X-Stage",
             "X-Backend")
    mock = mock_integration(integration({"StatusCode": "200", "ResponseParameters": {
        "method.response.header.X-Literal": "'*'",
        "method.response.header.X-From-Header": "method.request.header.x-in",
        "method.response.header.X-From-Query": "method.request.querystring.q",
        "method.response.header.X-From-Path": "method.request.path.id",
        "method.response.header.X-Stage": "stageVariables.env",
        "method.response.header.X-Backend": "integration.response.header.Y",  # none in a mock
    }}), declared("200", names=names), "T: Resources.M.Properties")
    _, headers, _ = mock.answer(request(("X-In", "hello"), query={"q": "v"}))
    assert headers == [("Content-Type", "application/json"), ("X-Literal", "*"),
                       ("X-From-Header", "hello"), ("X-From-Query", "v"), ("X-From-Path", "7"),
                       ("X-Stage", "dev")]


@pytest.mark.parametrize(("responses", "methods", "message"), [
    ([{"StatusCode": "204"}], declared("200"),
     r"Resources\.M\.Properties\.Integration\.IntegrationResponses\[0\]\.StatusCode: no method "
     r"response exists for status '204'"),
    ([{"StatusCode": "200", "ResponseParameters": {"method.response.header.X": "'a'"}}],
     declared("200"), r"IntegrationResponses\[0\]\.ResponseParameters: method\.response\.header"
                      r"\.X is not declared"),
])
def test_what_cloudformation_refuses_stops_the_start(responses: list, methods: list,
                                                     message: str) -> None:
    with pytest.raises(AssemblyError, match=message):
        mock_integration(integration(*responses), methods, "T: Resources.M.Properties")


def test_a_vtl_template_other_than_the_cdks_is_named_not_run() -> None:
    mock = mock_integration(integration({"StatusCode": "200", "ResponseTemplates": {
        "application/json": '{"id": "$context.requestId"}'}}), declared("200"), "T")
    assert mock.vtl_not_run and mock.answer(request())[2] == b""


@pytest.mark.slow  # synthesizes a CDK app (about 10 s), starts nothing
def test_the_cdk_cors_preflight_answers_exactly_its_headers(tmp_path: Path) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_apigateway as apigw

    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Cors")
    api = apigw.RestApi(stack, "Api", default_cors_preflight_options=apigw.CorsOptions(
        allow_origins=["https://a.example", "https://b.example", "https://c.example"],
        allow_methods=["GET", "PUT"], allow_credentials=True, expose_headers=["X-Id"],
        max_age=cdk.Duration.minutes(10)))
    api.root.add_resource("only-star", default_cors_preflight_options=apigw.CorsOptions(
        allow_origins=apigw.Cors.ALL_ORIGINS)).add_method("GET")
    app.synth()
    (synthesized,) = read_assembly(tmp_path, "http://127.0.0.1:4000")
    (rest,) = RestApi.from_stack(synthesized)
    preflight = {m.resource_path: m.mock for m in rest.methods if m.http_method == "OPTIONS"}

    status, headers, body = preflight["/"].answer(request(("Origin", "https://c.example")))
    assert (status, body) == (204, b"")
    assert headers == [
        ("Content-Type", "application/json"),
        ("Access-Control-Allow-Headers",
         "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token,X-Amz-User-Agent"),
        ("Access-Control-Allow-Origin", "https://c.example"),
        ("Vary", "Origin"),
        ("Access-Control-Allow-Methods", "GET,PUT"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Max-Age", "600"),
        ("Access-Control-Expose-Headers", "X-Id"),
    ]
    _, other, _ = preflight["/"].answer(request(("origin", "https://evil.example")))
    assert dict(other)["Access-Control-Allow-Origin"] == "https://a.example"
    _, star, _ = preflight["/only-star"].answer(request())
    assert dict(star)["Access-Control-Allow-Origin"] == "*"
    assert dict(star)["Access-Control-Allow-Methods"] == "OPTIONS,GET,PUT,POST,DELETE,PATCH,HEAD"
    resources = json.loads((tmp_path / "Cors.template.json").read_text())["Resources"]
    templates = [response.get("ResponseTemplates", {}).get("application/json")
                 for r in resources.values() if r["Type"] == "AWS::ApiGateway::Method"
                 for response in r["Properties"]["Integration"].get("IntegrationResponses", [])]
    assert cdk_cors_template(["https://b.example", "https://c.example"]) in templates
