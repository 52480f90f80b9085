"""API Gateway beyond the Lambda proxy: the CORS preflight the CDK generates (a MOCK
integration), an API key with a usage plan and its quota, TOKEN and REQUEST Lambda authorizers,
an AWS_IAM method, stage variables (also in an integration URI) and binary media types."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw

from breadth.app import function

STAGE = "apiv1"
API_KEY = "breadth-api-key-0123456789"
QUOTA = 3


def add(stack: cdk.Stack) -> None:
    backend = function(stack, "ApiBackend", "api_backend")
    api = apigw.RestApi(
        stack, "ApiRest",
        default_cors_preflight_options=apigw.CorsOptions(
            allow_origins=["https://a.example", "https://b.example"],
            allow_methods=["GET", "POST"], max_age=cdk.Duration.seconds(600)),
        deploy_options=apigw.StageOptions(
            stage_name=STAGE, variables={"color": "blue", "fn": backend.function_name}),
        binary_media_types=["image/*"])
    proxy = apigw.LambdaIntegration(backend, timeout=cdk.Duration.seconds(5))

    api.root.add_resource("open").add_method("ANY", proxy)

    api.root.add_resource("keyed").add_method("GET", proxy, api_key_required=True)
    plan = api.add_usage_plan("ApiPlan", quota=apigw.QuotaSettings(limit=QUOTA,
                                                                    period=apigw.Period.DAY))
    plan.add_api_stage(stage=api.deployment_stage)
    plan.add_api_key(api.add_api_key("ApiKey", api_key_name="breadth-key", value=API_KEY))
    plan.add_api_key(api.add_api_key("ApiGeneratedKey", api_key_name="breadth-generated"))

    token = apigw.TokenAuthorizer(
        stack, "ApiToken", handler=function(stack, "ApiTokenAuthorizerFn", "api_token_authorizer"),
        validation_regex="^Bearer .+$", results_cache_ttl=cdk.Duration.seconds(60))
    api.root.add_resource("token").add_method("GET", proxy, authorizer=token)

    request = apigw.RequestAuthorizer(
        stack, "ApiRequest",
        handler=function(stack, "ApiRequestAuthorizerFn", "api_request_authorizer"),
        identity_sources=[apigw.IdentitySource.header("x-who")])
    api.root.add_resource("request").add_method("GET", proxy, authorizer=request)

    api.root.add_resource("iam").add_method("GET", proxy,
                                            authorization_type=apigw.AuthorizationType.IAM)

    by_stage_variable = apigw.Integration(
        type=apigw.IntegrationType.AWS_PROXY, integration_http_method="POST",
        uri=f"arn:aws:apigateway:{stack.region}:lambda:path/2015-03-31/functions/"
            f"arn:aws:lambda:{stack.region}:{stack.account}:function:${{stageVariables.fn}}"
            "/invocations")
    api.root.add_resource("staged").add_method("GET", by_stage_variable)
