"""The one local endpoint, on 127.0.0.1 only: what `AWS_ENDPOINT_URL` points boto3 and the
AWS CLI at, and where the REST APIs are served under their stage path.

It checks who is asking (`sandbox.core.guard`: the Host, and the Origin on the sandbox's own
APIs), then only dispatches, by protocol, to each service's wire layer: requests carrying
`X-Amz-Target` are AWS API calls (EventBridge, SQS and CloudWatch Logs answered here, DynamoDB
passed through to DynamoDB Local); a form POST to `/` with `Action=` is a query-protocol call,
answered by the query service that owns the action (SNS, SQS, CloudFormation, STS); Lambda's
REST-JSON API by its path (`/2015-03-31/functions/...`: no REST API is served there, a stage
name being only letters, digits and underscores); the sandbox's own pages (the console) by
their path prefix; anything else is a request to a REST API (`/prod/order`).
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.apigateway.wire import ApiGateway
from sandbox.core import query
from sandbox.core.guard import Guard
from sandbox.core.wire import Response, aws_error
from sandbox.dynamodb import wire as dynamodb_wire
from sandbox.dynamodb.wire import DynamoDBPassThrough
from sandbox.events import wire as events_wire
from sandbox.events.backend import EventBus
from sandbox.lambda_ import wire as lambda_wire
from sandbox.lambda_.wire import LambdaWire
from sandbox.logs import wire as logs_wire
from sandbox.logs.wire import LogsWire
from sandbox.sqs import wire as sqs_wire
from sandbox.sqs.backend import Queues
from sandbox.traces import context as traces


class PortInUse(OSError):
    """Something else listens on the port: the message names it and `--port`."""


class Endpoint:
    def __init__(
        self,
        port: int,
        bus: EventBus,
        queues: Queues,
        api_gateway: ApiGateway,
        dynamodb: DynamoDBPassThrough,
        extra_routes: dict[str, Callable[[str, str, bytes], Response]] | None = None,
        query_services: list[query.QueryService] | None = None,
        guard: Guard | None = None,
        logs: LogsWire | None = None,
        lambda_api: LambdaWire | None = None,
    ) -> None:
        self.bus = bus
        self.queues = queues
        self.api_gateway = api_gateway
        self.dynamodb = dynamodb
        self.extra_routes = {} if extra_routes is None else extra_routes
        self.query_services = query_services or []
        self.guard = guard or Guard()
        self.logs = logs
        self.lambda_api = lambda_api
        handler = type("Handler", (_Handler,), {"endpoint": self})
        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(f"port {port} on 127.0.0.1 is in use (another sandbox, or another "
                            "program): stop it, or choose another port with --port") from None
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
        self.api_gateway.stop()

    def handle(self, method: str, path: str, raw_headers: list[tuple[str, str]], body: bytes,
               client_ip: str) -> Response:
        """The Host check first (DNS rebinding), then the sandbox's own APIs, each behind the
        Origin check, and last the app's REST APIs, which answer any origin as on AWS."""
        headers = {k.lower(): v for k, v in raw_headers}
        if not self.guard.host_allowed(headers.get("host")):
            return self.guard.refuse_host(headers["host"])
        answer = self.route(method, path, headers, body)
        # A function's AWS calls carry its invocation's trace (botocore sends _X_AMZN_TRACE_ID
        # as X-Amzn-Trace-Id); a request from outside may carry one too, or starts a trace.
        with traces.resume_header(headers.get("x-amzn-trace-id")):
            if answer is None:
                return self.api_gateway.handle(method, path, raw_headers, body, client_ip)
            if not self.guard.origin_allowed(headers.get("origin")):
                return self.guard.refuse_origin(headers["origin"])
            return answer()

    def route(self, method: str, path: str, headers: dict[str, str],
              body: bytes) -> Callable[[], Response] | None:
        """How the sandbox's own APIs would answer (called only once the Origin is checked);
        None for a request to a REST API."""
        amz_target = headers.get("x-amz-target", "")
        operation = amz_target.split(".", 1)[-1]
        if amz_target.startswith(events_wire.TARGET_PREFIX):
            return lambda: events_wire.handle(self.bus, operation, body)
        if amz_target.startswith(sqs_wire.TARGET_PREFIX):
            return lambda: sqs_wire.handle(self.queues, operation, body)
        if amz_target.startswith(dynamodb_wire.TARGET_PREFIXES):
            return lambda: self.dynamodb.handle(method, path, headers, body)
        logs, lambda_api = self.logs, self.lambda_api
        if amz_target.startswith(logs_wire.TARGET_PREFIX) and logs:
            return lambda: logs.handle(operation, body)
        if amz_target:
            return lambda: aws_error(400, "UnknownOperationException",
                                     f"The sandbox does not emulate {amz_target}")
        params = query.form(method, path, headers, body)
        if params is not None:
            return lambda: query.dispatch(self.query_services, params)
        if lambda_api and lambda_wire.is_lambda_api(path):
            return lambda: lambda_api.handle(method, path, headers, body)
        for prefix, page in self.extra_routes.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return lambda page=page: page(method, path, body)
        return None


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
