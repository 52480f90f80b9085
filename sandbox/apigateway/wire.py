"""API Gateway's side of the endpoint: a request under a stage path (`/prod/order`) reaches the
method its REST API routes it to, and its integration answers. The semantics (routes, the proxy
event, the proxy answer) are in `rest_api`, pure; here they meet the Lambda service."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.apigateway.rest_api import (
    ENDPOINT_TIMEOUT,
    INTERNAL_SERVER_ERROR,
    MISSING_AUTH_TOKEN,
    MalformedProxyResponse,
    RestApi,
    proxy_event,
    proxy_response,
)
from sandbox.core.wire import Response, aws_error
from sandbox.lambda_.backend import LambdaService
from sandbox.settings import Settings


class ApiGateway:
    def __init__(self, apis: list[RestApi], lambda_: LambdaService, settings: Settings) -> None:
        self.apis = apis
        self.lambda_ = lambda_
        self.settings = settings
        self._invokes = ThreadPoolExecutor(max_workers=64, thread_name_prefix="api-invoke")

    def stop(self) -> None:
        self._invokes.shutdown(wait=False, cancel_futures=True)

    def handle(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes,
               client_ip: str) -> Response:
        """The stage is the first path segment; the function sees the rest."""
        received = time.time()  # the invocation record keeps it: API Gateway's own latency
        url = urlsplit(raw_path)
        stage, _, rest = url.path.lstrip("/").partition("/")
        path = "/" + rest
        for api in self.apis:
            if api.stage != stage:
                continue
            found = api.route(method, path)
            if found is None:
                continue
            api_method, path_params = found
            if api_method.integration_type != "AWS_PROXY":
                return aws_error(500, "InternalServerError", "The sandbox runs Lambda proxy "
                                 f"integrations only, not {api_method.integration_type}")
            request_id = str(uuid.uuid4())
            event = proxy_event(api, api_method, path_params, method, path,
                                parse_qsl(url.query, keep_blank_values=True),
                                headers, body, request_id, client_ip, datetime.now(UTC))
            return self.invoke_proxy(api_method.function_arn, event, request_id, received)
        status, message = MISSING_AUTH_TOKEN
        return status, [("Content-Type", "application/json"),
                        ("x-amzn-ErrorType", "MissingAuthenticationTokenException")], message

    def invoke_proxy(self, function_arn: str, event: dict[str, Any], request_id: str,
                     received: float | None = None) -> Response:
        future = self._invokes.submit(self.lambda_.invoke, function_arn,
                                      json.dumps(event).encode(), trigger="api",
                                      api_request_id=request_id, received=received)
        ids = [("x-amzn-RequestId", request_id)]
        try:
            invocation = future.result(timeout=self.settings.integration_timeout_s)
        except FutureTimeout:
            status, message = ENDPOINT_TIMEOUT
            return status, [("Content-Type", "application/json"), *ids], message
        if invocation.ok:
            try:
                status, headers, data = proxy_response(invocation.payload)
                return status, headers + ids, data
            except MalformedProxyResponse:
                pass
        status, message = INTERNAL_SERVER_ERROR
        return status, [("Content-Type", "application/json"), *ids], message
