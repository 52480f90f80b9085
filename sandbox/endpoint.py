"""The one local endpoint, on 127.0.0.1 only: what `AWS_ENDPOINT_URL` points boto3 and the
AWS CLI at, and where the REST APIs are served under their stage path.

Requests carrying `X-Amz-Target` are AWS API calls: EventBridge is answered here, DynamoDB is
passed through to DynamoDB Local. Anything else is a request to a REST API (`/prod/order`).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.event_bus import EventBus, EventsApiError
from sandbox.lambda_service import LambdaService
from sandbox.rest_api import (
    ENDPOINT_TIMEOUT,
    INTERNAL_SERVER_ERROR,
    MISSING_AUTH_TOKEN,
    MalformedProxyResponse,
    RestApi,
    proxy_event,
    proxy_response,
)
from sandbox.settings import Settings

AWS_JSON = "application/x-amz-json-1.1"
EVENTS_OPERATIONS = {
    "PutEvents": EventBus.put_events,
    "TestEventPattern": EventBus.test_event_pattern,
    "ListEventBuses": EventBus.list_event_buses,
    "ListRules": EventBus.list_rules,
    "DescribeRule": EventBus.describe_rule,
    "ListTargetsByRule": EventBus.list_targets_by_rule,
}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}

Response = tuple[int, list[tuple[str, str]], bytes]


class Endpoint:
    def __init__(
        self,
        port: int,
        bus: EventBus,
        lambda_: LambdaService,
        apis: list[RestApi],
        dynamodb_url: str,
        settings: Settings,
        extra_routes: dict[str, Callable[[str, str, bytes], Response]] | None = None,
    ) -> None:
        self.bus = bus
        self.lambda_ = lambda_
        self.apis = apis
        self.settings = settings
        self.dynamodb = urlsplit(dynamodb_url)
        self.extra_routes = {} if extra_routes is None else extra_routes
        self._local = threading.local()
        self._invokes = ThreadPoolExecutor(max_workers=64, thread_name_prefix="api-invoke")
        handler = type("Handler", (_Handler,), {"endpoint": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="endpoint",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a serve_forever() that never ran
            self.server.shutdown()
        self.server.server_close()
        self._invokes.shutdown(wait=False, cancel_futures=True)

    # Dispatch

    def handle(self, method: str, path: str, raw_headers: list[tuple[str, str]], body: bytes,
               client_ip: str) -> Response:
        headers = {k.lower(): v for k, v in raw_headers}
        amz_target = headers.get("x-amz-target", "")
        if amz_target.startswith("AWSEvents."):
            return self.events(amz_target.split(".", 1)[1], body)
        if amz_target.startswith("DynamoDB_"):
            return self.pass_to_dynamodb(method, path, headers, body)
        if amz_target:
            return aws_error(400, "UnknownOperationException",
                             f"The sandbox does not emulate {amz_target}")
        for prefix, route in self.extra_routes.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return route(method, path, body)
        return self.rest_api(method, path, raw_headers, body, client_ip)

    def events(self, operation: str, body: bytes) -> Response:
        if operation not in EVENTS_OPERATIONS:
            return aws_error(400, "UnknownOperationException",
                             f"The sandbox does not emulate EventBridge {operation}")
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
            return aws_error(400, "SerializationException", "Start of structure or map found")
        try:
            answer = EVENTS_OPERATIONS[operation](self.bus, request)
        except EventsApiError as error:
            return aws_error(400, error.code, error.message)
        return 200, [("Content-Type", AWS_JSON)], json.dumps(answer).encode()

    def pass_to_dynamodb(self, method: str, path: str, headers: dict[str, str],
                         body: bytes) -> Response:
        connection = getattr(self._local, "dynamodb", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.dynamodb.hostname, self.dynamodb.port,
                                                    timeout=30)
            self._local.dynamodb = connection
        forwarded = {k: v for k, v in headers.items() if k not in HOP_BY_HOP}
        try:
            connection.request(method, path, body, forwarded)
            answer = connection.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException):
            self._local.dynamodb = None
            connection.close()
            return aws_error(503, "ServiceUnavailable", "DynamoDB Local is not answering")
        passed = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
        return answer.status, passed, data

    def rest_api(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes,
                 client_ip: str) -> Response:
        """API Gateway: the stage is the first path segment; the function sees the rest."""
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


def aws_error(status: int, code: str, message: str) -> Response:
    body = json.dumps({"__type": code, "message": message}).encode()
    return status, [("Content-Type", AWS_JSON), ("x-amzn-ErrorType", code)], body


class _Handler(BaseHTTPRequestHandler):
    endpoint: Endpoint
    protocol_version = "HTTP/1.1"  # keep-alive: a new connection per call costs milliseconds
    disable_nagle_algorithm = True  # or each small answer waits ~40-80 ms for an ACK

    def _serve(self) -> None:
        try:
            body = self._body()
            if body is None:
                # Where the body ends is unknown, so the connection cannot carry another request.
                self.close_connection = True
                status, answer_headers, data = aws_error(
                    400, "BadRequest", "Content-Length is not a number of bytes")
            else:
                status, answer_headers, data = self.endpoint.handle(
                    self.command, self.path, list(self.headers.items()), body,
                    self.client_address[0]
                )
        except Exception as error:  # a bug must answer, not hang the client
            self.log_error("internal error: %r", error)
            status, answer_headers, data = aws_error(500, "InternalFailure", str(error))
        try:
            self.send_response(status)
            for key, value in answer_headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up before its answer: nobody to tell

    def _body(self) -> bytes | None:
        """The request body, by Content-Length or in chunks; None when its length is junk."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = self.headers.get("Content-Length") or "0"
        return self.rfile.read(int(length)) if length.isascii() and length.isdigit() else None

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: function logs are what a user reads in the terminal."""
