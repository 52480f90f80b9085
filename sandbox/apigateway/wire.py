"""API Gateway's side of the endpoint: a request under a stage path (`/prod/order`) reaches the
method its REST API routes it to, passes the method's authorization (AWS_IAM, Cognito, a Lambda
authorizer) and API key, in that order as on AWS, and its integration (Lambda proxy or MOCK)
answers. The semantics are pure, in `rest_api`, `authorizers`, `keys` and `mock`; here they meet
the Lambda service and the clock.

Every answer under a route carries the headers API Gateway adds: `x-amzn-RequestId` (the
event's `requestContext.requestId`) and `x-amz-apigw-id` (its `extendedRequestId`); a Lambda
proxy answer also `X-Amzn-Trace-Id`. The integration timeout is the method's own
`TimeoutInMillis`, else the sandbox's (29 s, AWS's default).

The request's record and its proxy function's run are written in one commit, as the answer
leaves (on a full disk, the answer is a 500 instead); a run that outlasts the integration
timeout is written when it ends.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.apigateway import gateway_responses as answers
from sandbox.apigateway.authorizers import (
    Authorizer,
    Caller,
    Decision,
    DecisionCache,
    MalformedAnswer,
    authorizer_event,
    decision,
    identity,
    jwt_claims,
    method_arn,
)
from sandbox.apigateway.keys import UsagePlans
from sandbox.apigateway.mock import Request
from sandbox.apigateway.rest_api import (
    ENDPOINT_TIMEOUT,
    INTERNAL_SERVER_ERROR,
    MISSING_AUTH_TOKEN,
    MalformedProxyResponse,
    Method,
    RestApi,
    extended_request_id,
    proxy_event,
    proxy_response,
)
from sandbox.assembly import ACCOUNT
from sandbox.core import ids
from sandbox.core.history import ApiRequest, AuthorizerRan, InvocationRun, Record
from sandbox.core.state import StorageFull
from sandbox.core.wire import Response
from sandbox.lambda_.backend import FunctionNotFound, InvokeRefused, LambdaService
from sandbox.lambda_.records import error_of
from sandbox.lambda_.runtime_api import Invocation
from sandbox.settings import Settings
from sandbox.traces import context as traces

_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")


class ApiGateway:
    def __init__(self, apis: list[RestApi], lambda_: LambdaService, settings: Settings,
                 plans: UsagePlans | None = None) -> None:
        self.apis = apis
        self.lambda_ = lambda_
        self.settings = settings
        self.plans = plans or UsagePlans([], [], {})
        self.decisions = DecisionCache()
        self._invokes = ThreadPoolExecutor(max_workers=64, thread_name_prefix="api-invoke")

    def stop(self) -> None:
        self._invokes.shutdown(wait=False, cancel_futures=True)

    def _record_late(self, future: Future[tuple[Invocation, InvocationRun]]) -> None:
        """A run the integration stopped waiting for: recorded when it ends, if it ran."""
        if not future.cancelled() and future.exception() is None:
            with contextlib.suppress(StorageFull):
                self.lambda_.state.record(future.result()[1])

    def handle(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes,
               client_ip: str) -> Response:
        """The stage is the first path segment; the function sees the rest."""
        received = time.time()  # the invocation record keeps it: API Gateway's own latency
        request_id = ids.uuid4()
        id_headers = [("x-amzn-RequestId", request_id),
                      ("x-amz-apigw-id", extended_request_id(request_id))]
        url = urlsplit(raw_path)
        stage, _, rest = url.path.lstrip("/").partition("/")
        path = "/" + rest
        for api in self.apis:
            found = api.route(method, path) if api.stage == stage else None
            if found is None:
                continue
            api_method, path_params = found
            event = proxy_event(api, api_method, path_params, method, path,
                                parse_qsl(url.query, keep_blank_values=True),
                                headers, body, request_id, client_ip, datetime.now(UTC))
            history: list[Record] = []  # the integration's run, when it ended in time
            with traces.span("api"):  # the request's span: the root, or an incoming trace's
                try:
                    status, answer_headers, data = self.serve(api, api_method, event, received,
                                                              history)
                except StorageFull:
                    status, answer_headers, data = answers.CONFIGURATION_ERROR
                if self.lambda_ is not None:  # (only mock integrations: nowhere to record)
                    history.append(ApiRequest(request_id, api.name, api.stage, method, path,
                                              status, received))
                    try:
                        self.lambda_.state.add(history=history)
                    except StorageFull:  # a full disk: the request is refused, as AWS refuses
                        status, answer_headers, data = answers.CONFIGURATION_ERROR
            return status, answer_headers + id_headers, data
        status, message = MISSING_AUTH_TOKEN
        return status, [("Content-Type", "application/json"),
                        ("x-amzn-ErrorType", "MissingAuthenticationTokenException"),
                        *id_headers], message

    def serve(self, api: RestApi, method: Method, event: dict[str, Any],
              received: float, history: list[Record]) -> Response:
        """Authorization, then the API key, then the integration: the first refusal answers."""
        refused, usage_key = self.authorize(api, method, event, received)
        if refused is not None:
            return refused
        if method.api_key_required:
            headers = {k.lower(): v for k, v in (event["headers"] or {}).items()}
            key = headers.get("x-api-key") if api.api_key_source == "HEADER" else usage_key
            refused = self.plans.admit(api.api_id, api.stage, key, datetime.now(UTC))
            if refused is not None:
                return refused
            event["requestContext"]["identity"]["apiKey"] = key
            event["requestContext"]["identity"]["apiKeyId"] = self.plans.key_id(key)
        if method.mock is not None:
            return method.mock.answer(Request(
                [(k, v) for k, values in (event["multiValueHeaders"] or {}).items()
                 for v in values],
                event["queryStringParameters"] or {}, event["pathParameters"] or {},
                api.stage_variables))
        if method.integration_type != "AWS_PROXY":
            return answers.gateway_error(500, "InternalServerErrorException",
                                         "The sandbox runs Lambda proxy and MOCK integrations "
                                         f"only, not {method.integration_type}")
        accept = next((v for k, v in (event["headers"] or {}).items() if k.lower() == "accept"),
                      None)
        return self.invoke_proxy(method.function(api.stage_variables), event,
                                 event["requestContext"]["requestId"], received, history,
                                 timeout_s=method.timeout_s, binary=api.is_binary(accept))

    def authorize(self, api: RestApi, method: Method, event: dict[str, Any],
                  received: float) -> tuple[Response | None, str | None]:
        """(a refusal, or None; the authorizer's usageIdentifierKey)."""
        context = event["requestContext"]
        headers = {k.lower(): v for k, v in (event["headers"] or {}).items()}
        if method.authorization_type == "AWS_IAM":
            signature = headers.get("authorization")
            if not signature:
                return answers.MISSING_TOKEN, None
            access_key = _ACCESS_KEY.search(signature)
            context["identity"]["accessKey"] = access_key.group(1) if access_key else None
            return None, None
        if method.authorization_type not in ("CUSTOM", "COGNITO_USER_POOLS"):
            return None, None
        authorizer = api.authorizers[method.authorizer_id]
        caller = Caller(headers, event["queryStringParameters"] or {},
                        api.stage_variables, context)
        key = identity(authorizer, caller)
        if key is None:
            return answers.UNAUTHORIZED, None
        if authorizer.type == "COGNITO_USER_POOLS":
            claims = jwt_claims(key[0])
            if claims is None:
                return answers.UNAUTHORIZED, None
            context["authorizer"] = {"claims": claims}
            return None, None
        arn = method_arn(api.region, ACCOUNT, api.api_id, api.stage, event["httpMethod"],
                         event["path"])
        found = self.decisions.get(authorizer, key, time.time())
        cached = found is not None
        started = time.monotonic()
        if found is None:
            found = self.run_authorizer(authorizer, authorizer_event(
                authorizer, arn, key[0] if key else "", event), context["requestId"], received)
            if isinstance(found, str):
                return (answers.UNAUTHORIZED if found == "Unauthorized"
                        else answers.AUTHORIZER_ERROR), None
            self.decisions.put(authorizer, key, found, time.time())
        effect = found.effect(arn)
        self.record(authorizer, context["requestId"], effect or "Deny", cached,
                    found.principal_id)
        if effect != "Allow":
            return (answers.EXPLICIT_DENY if effect == "Deny" else answers.NOT_ALLOWED), None
        latency_ms = 0 if cached else round((time.monotonic() - started) * 1000)
        context["authorizer"] = found.request_context(latency_ms)
        return None, found.usage_key

    def run_authorizer(self, authorizer: Authorizer, event: dict[str, Any], request_id: str,
                       received: float) -> Decision | str:
        """The function's decision, or "Unauthorized" / "Error" (recorded here)."""
        try:
            invocation = self.lambda_.invoke(authorizer.function_arn, json.dumps(event).encode(),
                                             trigger="authorizer", api_request_id=request_id,
                                             received=received)
        except (FunctionNotFound, InvokeRefused):
            self.record(authorizer, request_id, "Error", False)
            return "Error"
        if not invocation.ok:
            failed = "Unauthorized" if error_of(invocation).get(
                "errorMessage") == "Unauthorized" else "Error"
            self.record(authorizer, request_id, failed, False)
            return failed
        try:
            return decision(invocation.payload)
        except MalformedAnswer:
            self.record(authorizer, request_id, "Error", False)
            return "Error"

    def record(self, authorizer: Authorizer, request_id: str, effect: str, cached: bool,
               principal_id: str | None = None) -> None:
        name = authorizer.function_arn.rsplit(":", 1)[-1]
        self.lambda_.state.record(AuthorizerRan(request_id, authorizer.name,
                                                self.lambda_.label(name), effect, cached,
                                                principal_id))

    def invoke_proxy(self, function_arn: str, event: dict[str, Any], request_id: str,
                     received: float, history: list[Record], timeout_s: float | None = None,
                     binary: bool = False) -> Response:
        """The function's answer as API Gateway gives it; its run's record goes to `history`,
        or, when the integration timed out first, to the state once it ends."""
        future = self._invokes.submit(contextvars.copy_context().run, self.lambda_.run,
                                      function_arn,
                                      json.dumps(event).encode(), trigger="api",
                                      api_request_id=request_id, received=received)
        trace = [("X-Amzn-Trace-Id", traces.header().split(";", 1)[0])]  # Root=<the trace>
        try:
            invocation, run = future.result(
                timeout=timeout_s or self.settings.integration_timeout_s)
            history.append(run)
        except FutureTimeout:
            future.add_done_callback(self._record_late)
            status, message = ENDPOINT_TIMEOUT
            return status, [("Content-Type", "application/json"), *trace], message
        except FunctionNotFound:  # a stage variable naming no function of the app
            return answers.CONFIGURATION_ERROR
        except InvokeRefused:  # throttled (reserved concurrency) or over Lambda's 6 MB
            return answers.CONFIGURATION_ERROR
        if invocation.ok:
            try:
                status, headers, data = proxy_response(invocation.payload, binary)
                return status, headers + trace, data
            except MalformedProxyResponse:
                pass
        status, message = INTERNAL_SERVER_ERROR
        return status, [("Content-Type", "application/json"), *trace], message


def api_notes(apis: list[RestApi], plans: UsagePlans) -> list[str]:
    """What a user must know at start: the API keys' values (generated ones are local, not
    secrets), how AWS_IAM and Cognito methods are treated here, and what is not run."""
    notes = [f"API key {key.name}: {key.value}" + ("" if key.enabled else " (disabled)")
             for key in plans.keys]
    kinds = {m.authorization_type for api in apis for m in api.methods}
    if "AWS_IAM" in kinds:
        notes.append("AWS_IAM methods: any Authorization header is accepted (SigV4 not checked)")
    if "COGNITO_USER_POOLS" in kinds:
        notes.append("Cognito methods: any JWT is accepted, its claims read unverified")
    if plans.plans:
        notes.append("usage plans: quotas counted in memory; throttling not emulated")
    notes += [f"not run: {item}" for api in apis for item in api.not_emulated]
    return list(dict.fromkeys(notes))
