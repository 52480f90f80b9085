"""Lambda's API as the AWS CLI and boto3 speak it: REST-JSON under `/2015-03-31/functions/`
(and `/2019-09-25/.../event-invoke-config`, `/2015-03-31/event-source-mappings/`), over the
template's functions. `aws lambda invoke` against the sandbox is what `sam local invoke` is to
SAM users, with Lambda's own answers.

From the Lambda API reference:
- Invoke: `X-Amz-Invocation-Type` `RequestResponse` (200, the function's answer;
  `X-Amz-Function-Error: Unhandled` when it failed; `X-Amz-Log-Type: Tail` adds
  `X-Amz-Log-Result`, the last 4 KB of its log lines in base64), `Event` (202: accepted
  durably, run with Lambda's asynchronous retries and routes) or `DryRun` (204); payloads over
  6 MB (synchronous) or 1 MB (asynchronous) are 413 `RequestEntityTooLargeException`; a payload
  that is not JSON is 400 `InvalidRequestContentException`;
- a function is named by its name, its ARN or a partial ARN (`123456789012:function:name`),
  with an optional qualifier (`:$LATEST`, a version, an alias, or `?Qualifier=`); an alias
  picks the version by its weights (`X-Amz-Executed-Version`); an unknown qualifier is a
  function Lambda does not have;
- ListFunctions pages with `Marker`/`MaxItems` (at most 50); GetFunction,
  GetFunctionConfiguration, GetFunctionEventInvokeConfig and ListEventSourceMappings describe
  the template's settings;
- an error is the status with `x-amzn-ErrorType: <code>` and `{"Type": "User", "message": ...}`
  (botocore's rest-json parser reads the code from the header, the message from the body); an
  unknown function is 404 `ResourceNotFoundException` "Function not found: <its ARN>".
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.assembly import Stack
from sandbox.core.delivery import Failure
from sandbox.core.jobs import Abandoned
from sandbox.core.state import State, Writes
from sandbox.core.wire import Response
from sandbox.lambda_.backend import (
    ASYNC_PAYLOAD_LIMIT,
    EVENT_INVOKE_CONFIG,
    FUNCTION,
    SYNC_PAYLOAD_LIMIT,
    FunctionNotFound,
    InvokeRefused,
    LambdaService,
    too_large,
)
from sandbox.lambda_.event_sources import mapping_uuid
from sandbox.lambda_.runtime_api import FunctionConfig

PREFIXES = ("/2015-03-31/functions", "/2019-09-25/functions", "/2015-03-31/event-source-mappings")
LOG_TAIL_BYTES = 4096
MAX_ITEMS = 50
JSON = "application/json"
_ROUTES = [
    ("POST", re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$"), "invoke"),
    ("GET", re.compile(r"^/2015-03-31/functions/?$"), "list_functions"),
    ("GET", re.compile(r"^/2015-03-31/functions/([^/]+)/?$"), "get_function"),
    ("GET", re.compile(r"^/2015-03-31/functions/([^/]+)/configuration$"), "get_configuration"),
    ("GET", re.compile(r"^/2019-09-25/functions/([^/]+)/event-invoke-config$"),
     "get_event_invoke_config"),
    ("GET", re.compile(r"^/2015-03-31/event-source-mappings/?$"), "list_event_source_mappings"),
]
_FUNCTION_NAME = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:)?(?:function:)?"
    r"([a-zA-Z0-9_-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?$")


class LambdaApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error(status: int, code: str, message: str) -> Response:
    body = json.dumps({"Type": "User", "message": message}).encode()
    return status, [("Content-Type", JSON), ("x-amzn-ErrorType", code)], body


def answer(value: Any, status: int = 200) -> Response:
    return status, [("Content-Type", JSON)], json.dumps(value).encode()


def is_lambda_api(path: str) -> bool:
    """A Lambda API call. (A REST API's stage name has only letters, digits and underscores,
    so no API is served under `/2015-03-31`.)"""
    return urlsplit(path).path.startswith(PREFIXES)


def parse_name(name_or_arn: str, qualifier: str | None) -> tuple[str, str | None]:
    """(function name, qualifier) from a name, ARN or partial ARN, as Lambda reads them."""
    found = _FUNCTION_NAME.match(name_or_arn)
    if not found:
        raise LambdaApiError(400, "ValidationException",
                             f"1 validation error detected: Value '{name_or_arn}' at "
                             "'functionName' failed to satisfy constraint: Member must satisfy "
                             "regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?"
                             "([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?"
                             "([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?")
    return found.group(1), found.group(2) or qualifier


def tail(lines: list[str]) -> str:
    """Lambda's `X-Amz-Log-Result`: the last 4 KB of the invocation's log, base64."""
    data = "".join(line + "\n" for line in lines).encode()[-LOG_TAIL_BYTES:]
    return base64.b64encode(data).decode()


class LambdaWire:
    def __init__(self, stacks: list[Stack], lambda_: LambdaService, state: State,
                 log_lines: Callable[[str], list[str]], log_group: Callable[[str], str]) -> None:
        """`log_lines(function, request_id)` gives one invocation's log lines; `log_group`
        each function's log group."""
        self.lambda_ = lambda_
        self.state = state
        self.log_lines = log_lines
        self.log_group = log_group
        self.region = stacks[0].region if stacks else "us-east-1"
        self.account = stacks[0].account if stacks else "000000000000"
        self.properties: dict[str, dict[str, Any]] = {}  # function name -> its properties
        self.modified: dict[str, float] = {}  # function name -> when its template was written
        self._digests: dict[str, tuple[int, str]] = {}
        self.invoke_configs: dict[str, dict[str, Any]] = {}  # function name -> properties
        self.mappings: list[dict[str, Any]] = []
        for stack in stacks:
            self._read(stack)

    def _read(self, stack: Stack) -> None:
        modified = stack.template_file.stat().st_mtime
        for resource in stack.of_type(FUNCTION):
            name = stack.ref(resource.logical_id)
            self.properties[name] = stack.properties(resource.logical_id)
            self.modified[name] = modified
        for resource in stack.of_type(EVENT_INVOKE_CONFIG):
            props = stack.properties(resource.logical_id)
            self.invoke_configs[parse_name(props["FunctionName"], None)[0]] = props
        for resource in stack.of_type("AWS::Lambda::EventSourceMapping"):
            props = stack.properties(resource.logical_id)
            self.mappings.append(props | {"UUID": mapping_uuid(stack.name, resource.logical_id),
                                          "LastModified": modified})

    # Dispatch

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        parts = urlsplit(path)
        params = {key: values[0] for key, values in parse_qs(parts.query).items()}
        for route_method, pattern, name in _ROUTES:
            found = pattern.match(parts.path)
            if found and method == route_method:
                args = [unquote(group) for group in found.groups()]
                try:
                    return getattr(self, name)(*args, params=params, headers=headers, body=body)
                except LambdaApiError as failure:
                    return error(failure.status, failure.code, failure.message)
        return error(404, "UnknownOperationException",
                     f"The sandbox does not emulate Lambda's {method} {parts.path}")

    def _arn(self, name: str, qualifier: str | None = None) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn

    def _config(self, name_or_arn: str, params: dict[str, str]) -> FunctionConfig:
        return self._qualified(name_or_arn, params)[0]

    def _qualified(self, name_or_arn: str,
                   params: dict[str, str]) -> tuple[FunctionConfig, str]:
        """The function, and its name with the qualifier asked for (what to invoke, so an
        alias chooses its version at each invocation)."""
        name, qualifier = parse_name(name_or_arn, params.get("Qualifier"))
        try:
            config, _ = self.lambda_.resolve(name, qualifier)
        except FunctionNotFound:
            raise LambdaApiError(404, "ResourceNotFoundException",
                                 f"Function not found: {self._arn(name, qualifier)}") from None
        return config, f"{name}:{qualifier}" if qualifier else name

    # Invoke

    def invoke(self, name_or_arn: str, params: dict[str, str], headers: dict[str, str],
               body: bytes) -> Response:
        config, qualified = self._qualified(name_or_arn, params)
        kind = headers.get("x-amz-invocation-type", "RequestResponse")
        if kind not in ("RequestResponse", "Event", "DryRun"):
            raise LambdaApiError(400, "InvalidParameterValueException",
                                 f"1 validation error detected: Value '{kind}' at "
                                 "'invocationType' failed to satisfy constraint: Member must "
                                 "satisfy enum value set: [Event, RequestResponse, DryRun]")
        refused = too_large(len(body), ASYNC_PAYLOAD_LIMIT if kind == "Event"
                            else SYNC_PAYLOAD_LIMIT)
        if refused:  # before reading it, as Lambda does
            raise LambdaApiError(refused.status, refused.code, refused.message)
        try:
            json.loads(body or b"{}")
        except ValueError as bad:
            raise LambdaApiError(400, "InvalidRequestContentException",
                                 "Could not parse request body into json: Could not parse "
                                 f"payload into json: {bad}") from None
        if kind == "DryRun":
            return 204, [], b""
        if kind == "Event":
            return self._accept(qualified, body)
        return self._run(config, qualified, body, headers.get("x-amz-log-type") == "Tail")

    def _accept(self, qualified: str, body: bytes) -> Response:
        try:
            job = self.lambda_.async_job(qualified, body.decode("utf-8", "replace") or "{}",
                                         trigger="lambda-api")
        except Failure as refused:  # the payload limit, checked already
            raise LambdaApiError(413, refused.code, refused.message) from None
        self.state.commit(Writes(jobs=[job]))
        return 202, [("Content-Type", JSON), ("X-Amzn-RequestId", job.payload["request_id"])], b""

    def _run(self, config: FunctionConfig, qualified: str, body: bytes,
             with_tail: bool) -> Response:
        try:
            invocation = self.lambda_.invoke(qualified, body or b"{}", trigger="lambda-api")
        except InvokeRefused as refused:
            raise LambdaApiError(refused.status, refused.code, refused.message) from None
        except Abandoned as stopping:
            raise LambdaApiError(503, "ServiceException", str(stopping)) from None
        headers = [("Content-Type", JSON), ("X-Amz-Executed-Version", invocation.version),
                   ("X-Amzn-RequestId", invocation.request_id)]
        if not invocation.ok:
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        if with_tail:
            headers.append(("X-Amz-Log-Result", tail(self.log_lines(invocation.request_id))))
        return 200, headers, invocation.payload

    # Reading the functions

    def configuration(self, config: FunctionConfig) -> dict[str, Any]:
        props = self.properties.get(config.name, {})
        if config.name not in self._digests:
            self._digests[config.name] = _code_digest(config)
        size, sha = self._digests[config.name]
        described: dict[str, Any] = {
            "FunctionName": config.name, "FunctionArn": config.arn,
            "Runtime": config.runtime, "Role": props.get("Role"), "Handler": config.handler,
            "CodeSize": size, "Description": props.get("Description", ""),
            "Timeout": int(config.timeout_s), "MemorySize": config.memory_mb,
            "LastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000",
                                          time.gmtime(self.modified.get(config.name, 0))),
            "CodeSha256": sha,
            "Version": "$LATEST", "TracingConfig": props.get("TracingConfig",
                                                              {"Mode": "PassThrough"}),
            "RevisionId": sha[:8], "PackageType": "Zip", "State": "Active",
            "LastUpdateStatus": "Successful",
            "Architectures": props.get("Architectures", ["x86_64"]),
            "EphemeralStorage": props.get("EphemeralStorage", {"Size": 512}),
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": self.log_group(config.name)}
            | (props.get("LoggingConfig") or {}),
        }
        if config.environment:
            described["Environment"] = {"Variables": config.environment}
        if config.dead_letter_arn:
            described["DeadLetterConfig"] = {"TargetArn": config.dead_letter_arn}
        return described

    def list_functions(self, params: dict[str, str], **_: Any) -> Response:
        names = sorted(self.lambda_.configs)
        start = int(params["Marker"]) if params.get("Marker", "").isdigit() else 0
        limit = min(int(params.get("MaxItems") or MAX_ITEMS), MAX_ITEMS)
        page = names[start:start + limit]
        listed: dict[str, Any] = {
            "Functions": [self.configuration(self.lambda_.configs[n]) for n in page]}
        if start + limit < len(names):
            listed["NextMarker"] = str(start + limit)
        return answer(listed)

    def get_function(self, name_or_arn: str, params: dict[str, str], **_: Any) -> Response:
        config = self._config(name_or_arn, params)
        described: dict[str, Any] = {
            "Configuration": self.configuration(config),
            "Code": {"RepositoryType": "S3", "Location": config.code_dir.as_uri()}}
        concurrency = config.reserved_concurrency
        if concurrency is not None:
            described["Concurrency"] = {"ReservedConcurrentExecutions": concurrency}
        return answer(described)

    def get_configuration(self, name_or_arn: str, params: dict[str, str], **_: Any) -> Response:
        return answer(self.configuration(self._config(name_or_arn, params)))

    def get_event_invoke_config(self, name_or_arn: str, params: dict[str, str],
                                **_: Any) -> Response:
        config = self._config(name_or_arn, params)
        props = self.invoke_configs.get(config.name)
        if props is None:
            raise LambdaApiError(404, "ResourceNotFoundException",
                                 f"The function {config.arn} doesn't have an EventInvokeConfig")
        described = {key: props[key] for key in ("MaximumRetryAttempts",
                                                 "MaximumEventAgeInSeconds",
                                                 "DestinationConfig") if key in props}
        return answer(described | {"FunctionArn": f"{config.arn}:$LATEST",
                                   "LastModified": self.modified.get(config.name, 0.0)})

    def list_event_source_mappings(self, params: dict[str, str], **_: Any) -> Response:
        wanted = None
        if params.get("FunctionName"):
            wanted = self._config(params["FunctionName"], {}).name
        mappings = []
        for props in self.mappings:
            config = self._config(props["FunctionName"], {})
            source = props.get("EventSourceArn")
            if wanted not in (None, config.name):
                continue
            if params.get("EventSourceArn") not in (None, source):
                continue
            enabled = str(props.get("Enabled", True)).lower() != "false"
            mapping = {key: value for key, value in props.items()
                       if key not in ("FunctionName", "Enabled")}
            mappings.append(mapping | {"FunctionArn": config.arn,
                                       "State": "Enabled" if enabled else "Disabled",
                                       "StateTransitionReason": "USER_INITIATED"})
        start = int(params["Marker"]) if params.get("Marker", "").isdigit() else 0
        limit = min(int(params.get("MaxItems") or 100), 100)
        listed: dict[str, Any] = {"EventSourceMappings": mappings[start:start + limit]}
        if start + limit < len(mappings):
            listed["NextMarker"] = str(start + limit)
        return answer(listed)


def _code_digest(config: FunctionConfig) -> tuple[int, str]:
    """The code's size in bytes and a SHA-256 of it (base64), as Lambda reports its .zip's."""
    digest = hashlib.sha256()
    size = 0
    for path in sorted(p for p in config.code_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        size += len(data)
        digest.update(str(path.relative_to(config.code_dir)).encode() + b"\0" + data)
    return size, base64.b64encode(digest.digest()).decode()
