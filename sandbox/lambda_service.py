"""The Lambda service: the functions of the template, invoked synchronously (API Gateway) or
asynchronously (EventBridge), with Lambda's asynchronous retries and on-failure destinations.

An asynchronous invocation is a durable job: once "Lambda" has accepted it, it runs to success,
or is retried twice (about 1 and 2 minutes apart, scaled by `Settings.retry_scale`), then goes
to the function's on-failure destination with the error, or is dropped as on AWS when the
function has none.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.assembly import Stack
from sandbox.jobs import Abandoned
from sandbox.lambda_runtime_api import FunctionConfig, FunctionWorkers, Invocation
from sandbox.settings import Settings
from sandbox.sqs import Queues
from sandbox.state import Job, NewJob, State

FUNCTION = "AWS::Lambda::Function"
EVENT_INVOKE_CONFIG = "AWS::Lambda::EventInvokeConfig"
DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE_S = 6 * 3600
FIRST_RETRY_DELAY_S = 60.0


class FunctionNotFound(LookupError):
    pass


class AsyncConfig:
    """What `AWS::Lambda::EventInvokeConfig` says about a function's asynchronous invocations."""

    def __init__(self, properties: dict[str, Any] | None = None) -> None:
        properties = properties or {}
        self.max_retries: int = int(properties.get("MaximumRetryAttempts", DEFAULT_RETRIES))
        self.max_age_s: int = int(properties.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_S))
        destinations = properties.get("DestinationConfig", {})
        self.on_failure: str | None = destinations.get("OnFailure", {}).get("Destination")


def function_configs(stack: Stack) -> tuple[dict[str, FunctionConfig], list[str]]:
    """The functions the sandbox can run (Python runtimes) by logical id, and the names of
    those it cannot."""
    runnable: dict[str, FunctionConfig] = {}
    skipped: list[str] = []
    for resource in stack.of_type(FUNCTION):
        props = stack.resolve(resource.properties, f"Resources.{resource.logical_id}.Properties")
        runtime = props.get("Runtime", "")
        if not runtime.startswith("python"):
            skipped.append(f"{resource.logical_id} (runtime {runtime or 'none'})")
            continue
        runnable[resource.logical_id] = FunctionConfig(
            name=stack.ref(resource.logical_id),
            arn=stack.get_att(resource.logical_id, "Arn"),
            code_dir=stack.code_path(resource.logical_id),
            handler=props["Handler"],
            runtime=runtime,
            timeout_s=float(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment={
                k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()
            },
        )
    return runnable, skipped


def display_name(stack: Stack, logical_id: str) -> str:
    """The construct's own name ('OrderService') from CDK metadata, else the logical id."""
    path = stack.resources[logical_id].metadata.get("aws:cdk:path", "")
    parts = path.split("/")
    return parts[-2] if len(parts) >= 3 and parts[-1] == "Resource" else logical_id


class LambdaService:
    def __init__(
        self,
        stacks: list[Stack],
        state: State,
        queues: Queues,
        settings: Settings,
        base_env: dict[str, str],
        on_log: Callable[[str, str], None],
    ) -> None:
        self.state = state
        self.queues = queues
        self.settings = settings
        self.base_env = base_env
        self.on_log = on_log
        self.configs: dict[str, FunctionConfig] = {}  # function name -> config
        self.labels: dict[str, str] = {}  # function name -> display name
        self.async_configs: dict[str, AsyncConfig] = {}  # function name -> config
        self.not_runnable: list[str] = []
        for stack in stacks:
            runnable, skipped = function_configs(stack)
            self.not_runnable += skipped
            for logical_id, config in runnable.items():
                self.configs[config.name] = config
                self.labels[config.name] = display_name(stack, logical_id)
            for resource in stack.of_type(EVENT_INVOKE_CONFIG):
                props = stack.resolve(resource.properties,
                                      f"Resources.{resource.logical_id}.Properties")
                self.async_configs[self._name(props["FunctionName"])] = AsyncConfig(props)
        self._workers: dict[str, FunctionWorkers] = {}
        self._lock = threading.Lock()
        self._closing = False

    @staticmethod
    def _name(name_or_arn: str) -> str:
        # function:NAME, function:NAME:QUALIFIER, or a plain name
        if name_or_arn.startswith("arn:"):
            return name_or_arn.split(":")[6]
        return name_or_arn

    def config(self, name_or_arn: str) -> FunctionConfig:
        try:
            return self.configs[self._name(name_or_arn)]
        except KeyError:
            raise FunctionNotFound(f"Function not found: {name_or_arn}") from None

    def label(self, function_name: str) -> str:
        return self.labels.get(function_name, function_name)

    def workers(self, config: FunctionConfig) -> FunctionWorkers:
        with self._lock:
            if self._closing:
                raise Abandoned(f"{config.name}: the sandbox is stopping")
            if config.arn not in self._workers:
                self._workers[config.arn] = FunctionWorkers(config, self.on_log, self.base_env)
            return self._workers[config.arn]

    def close(self) -> None:
        with self._lock:
            self._closing = True
            workers = list(self._workers.values())
        for w in workers:
            w.close()

    # Invoke

    def invoke(
        self, name_or_arn: str, payload: bytes, request_id: str | None = None, **context: Any
    ) -> Invocation:
        """Run one invocation now and record it in the history (for the console and trace)."""
        config = self.config(name_or_arn)
        request_id = request_id or str(uuid.uuid4())
        if self.settings.inject(self.settings.invoke_fault_share):
            invocation = injected_fault(config, request_id)
        else:
            invocation = self.workers(config).invoke(payload, request_id)
        if self._closing:
            # Killed by the sandbox stopping, not failed: not a try that counts.
            raise Abandoned(f"{config.name}: the sandbox stopped during {request_id}")
        self.state.record("invocation", invocation_record(invocation, self.label(config.name),
                                                          context))
        return invocation

    def async_job(self, name_or_arn: str, event: dict[str, Any], **context: Any) -> NewJob:
        """Lambda accepting an asynchronous invocation: a job the caller stores (in the same
        transaction as whatever ends its own work)."""
        config = self.config(name_or_arn)
        payload = {"event": event, "request_id": str(uuid.uuid4()), "context": context}
        return NewJob("invoke", config.arn, payload)

    def run_async(self, job: Job) -> None:
        """One try of an asynchronous invocation, then its outcome, durably."""
        request_id = job.payload["request_id"]
        context = {**job.payload["context"], "attempt": job.attempt + 1}
        event = job.payload["event"]
        try:
            invocation = self.invoke(job.target, json.dumps(event).encode(), request_id,
                                     **context)
        except FunctionNotFound as error:
            # Accepted before the function left the template: nothing can run it any more.
            record = {"requestContext": {"requestId": request_id, "functionArn": job.target,
                                         "condition": "FunctionNotFound"},
                      "requestPayload": event,
                      "responsePayload": {"errorType": "ResourceNotFoundException",
                                          "errorMessage": str(error)}}
            self.state.add(history=[("dead-letter", {
                "queue": None, "source": "lambda", "function": self._name(job.target),
                "record": record, **job.payload["context"]})], done=job.id)
            return
        if invocation.ok:
            self.state.add(done=job.id)
            return
        config = self.config(job.target)
        settings = self.async_configs.get(config.name, AsyncConfig())
        delay = FIRST_RETRY_DELAY_S * 2**job.attempt * self.settings.retry_scale
        delay *= random.uniform(0.9, 1.1)
        too_old = time.time() + delay - job.created > settings.max_age_s
        if job.attempt < settings.max_retries and not too_old:
            self.state.retry(job, time.time() + delay)
            return
        condition = "EventAgeExceeded" if too_old else "RetriesExhausted"
        record = destination_record(config, request_id, job.attempt + 1, condition, event,
                                    invocation)
        messages = []
        if settings.on_failure and settings.on_failure in self.queues:
            messages.append(self.queues.message(settings.on_failure, json.dumps(record), {}))
        history = [("dead-letter", {"queue": settings.on_failure, "source": "lambda",
                                    "function": self.label(config.name), "record": record,
                                    **job.payload["context"]})]
        self.state.add(messages=messages, history=history, done=job.id)


def injected_fault(config: FunctionConfig, request_id: str) -> Invocation:
    error = {"errorMessage": "Fault injected by the sandbox", "errorType": "Sandbox.InjectedFault"}
    return Invocation(
        request_id=request_id,
        function=config.name,
        ok=False,
        payload=json.dumps(error).encode(),
        error_type="Sandbox.InjectedFault",
        started=time.time(),
        duration_ms=0.0,
        init_duration_ms=None,
        max_memory_mb=0,
        memory_mb=config.memory_mb,
    )


def error_of(invocation: Invocation) -> dict[str, Any]:
    try:
        error = json.loads(invocation.payload)
    except ValueError:
        error = None
    if not isinstance(error, dict):
        error = {"errorMessage": invocation.payload.decode(errors="replace")}
    error.setdefault("errorType", invocation.error_type)
    return error


def invocation_record(invocation: Invocation, label: str, context: dict[str, Any]) -> dict:
    record = {
        "request_id": invocation.request_id,
        "function": invocation.function,
        "service": label,
        "ok": invocation.ok,
        "started": invocation.started,
        "delivered": invocation.delivered,
        "duration_ms": round(invocation.duration_ms, 2),
        "init_duration_ms": invocation.init_duration_ms,
        "max_memory_mb": invocation.max_memory_mb,
        "memory_mb": invocation.memory_mb,
        **context,
    }
    if context.get("trigger") == "api":
        # The answer says what the request created (e.g. an order ID): keep its start.
        record["response"] = invocation.payload[:4096].decode(errors="replace")
    if not invocation.ok:
        error = error_of(invocation)
        record["error_type"] = error.get("errorType")
        record["error_message"] = error.get("errorMessage")
    return record


def destination_record(
    config: FunctionConfig,
    request_id: str,
    invoke_count: int,
    condition: str,
    event: dict[str, Any],
    invocation: Invocation,
) -> dict[str, Any]:
    """The invocation record Lambda sends to an on-failure destination."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "version": "1.0",
        "timestamp": now,
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{config.arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": error_of(invocation),
    }
