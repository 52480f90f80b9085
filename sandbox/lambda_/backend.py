"""The Lambda service: the functions of the template, invoked synchronously (API Gateway) or
asynchronously (EventBridge, destinations, topics), with Lambda's asynchronous retries and
routes.

An asynchronous invocation is a durable job (`sandbox.core.delivery`): once "Lambda" has
accepted it, it runs to success, or is retried twice (about 1 and 2 minutes apart, scaled by
`Settings.retry_scale`) within its maximum age. Then its invocation record goes to the
function's `OnFailure` destination (a queue, topic, function or bus, by ARN through `Targets`)
and the event to its `DeadLetterConfig` queue or topic; with neither it is dropped, as on AWS.
A success goes to the `OnSuccess` destination, if there is one.

Limits Lambda enforces before running anything (AWS's quotas page):
- Payload: 6 MB (6,291,456 bytes) for a synchronous invocation, refused with 413
  `RequestEntityTooLargeException`; 1 MB (1,048,576 bytes, raised from 256 KB) for an
  asynchronous one, refused when Lambda would accept it, so the caller (a rule target, a topic)
  fails at once, without retries.
- `ReservedConcurrentExecutions`: a synchronous invocation beyond it is refused with 429
  `TooManyRequestsException` ("Rate Exceeded."); an asynchronous one waits for a free slot, as
  Lambda's internal queue does. At 0, asynchronous events go straight to the on-failure
  destination and dead-letter queue without a try (condition `ZeroReservedConcurrency`), as Lambda
  does since August 2021.

Functions as the template declares them:
- Inline code (`Code.ZipFile`): Lambda puts a Python function's inline code in `index.py`; the
  sandbox writes it to `<state>/functions/<name>/index.py` (rewritten only when the template
  changes it) and runs it like an asset. A handler missing from it is the runtime's
  `Runtime.HandlerNotFound` at the first invocation, as on Lambda.
- Layers (`Layers`, `AWS::Lambda::LayerVersion` from the assets): at most 5 per function, and
  250 MB (262,144,000 bytes) unzipped for the function and its layers together, refused in
  Lambda's words at start. A layer's `CompatibleRuntimes` and `CompatibleArchitectures` only
  filter ListLayers and ListLayerVersions (Lambda's API reference): they refuse nothing. A layer
  ARN the assembly does not hold (a public layer) cannot be fetched: the start names it.
- Versions and aliases: `AWS::Lambda::Version`s are numbered 1, 2... per function in the
  template's order; an `AWS::Lambda::Alias` names `$LATEST` or one of them (an unknown one stops
  the start as CloudFormation's CreateAlias fails) and may route a weighted share of its
  invocations to one more version (`RoutingConfig`). A function is invoked by name, ARN,
  partial ARN, or any of these qualified (`:$LATEST`, `:3`, `:live`); an unknown qualifier is
  404 `ResourceNotFoundException`. Locally every version runs the same code, today's, since the
  template holds only that: a version is a name, its snapshot is not kept. Each version gets its
  own workers, as Lambda gives each its own execution environments, so a worker's
  `AWS_LAMBDA_FUNCTION_VERSION`, log stream and START lines say the version that ran.
- `SnapStart` and provisioned concurrency change cold starts, not behaviour: not emulated, and
  named at start.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sandbox.assembly import ALIAS, LAYER, VERSION, AssemblyError, Stack, split_qualifier
from sandbox.core import ids
from sandbox.core.delivery import LAMBDA_ASYNC, Failure, RetryPolicy
from sandbox.core.history import DeadLetter, DestinationTaken, InvocationRun, Record
from sandbox.core.jobs import Abandoned
from sandbox.core.state import Job, NewJob, State, Writes
from sandbox.core.targets import Parcel, Targets
from sandbox.lambda_.interpreters import Interpreters
from sandbox.lambda_.records import (
    ZERO_RESERVED_CONCURRENCY,
    DestinationRecord,
    destination_event,
    error_of,
    invocation_record,
)
from sandbox.lambda_.runtime_api import FunctionConfig, FunctionWorkers, Invocation, OnLog
from sandbox.settings import Settings
from sandbox.traces import context as traces

FUNCTION = "AWS::Lambda::Function"
EVENT_INVOKE_CONFIG = "AWS::Lambda::EventInvokeConfig"
INVOKE = "invoke"  # the job kind of an asynchronous invocation
SYNC_PAYLOAD_LIMIT = 6_291_456
ASYNC_PAYLOAD_LIMIT = 1_048_576
# The sandbox's own cap on one function's workers; a lower reserved concurrency caps it lower.
DEFAULT_MAX_WORKERS = 10
# The ErrorCode attribute of a dead letter: the HTTP status of the last try.
DLQ_ERROR_CODES = {ZERO_RESERVED_CONCURRENCY: "429", "ResourceNotFoundException": "404",
                   "RequestEntityTooLargeException": "413"}
LATEST = "$LATEST"
MAX_LAYERS = 5
UNZIPPED_LIMIT = 262_144_000  # bytes: a function and its layers, extracted
INLINE_FILE = "index.py"  # where Lambda puts a Python function's inline code


class FunctionNotFound(LookupError):
    pass


class InvokeRefused(Exception):
    """Lambda refused an invocation before running it: `status` and `code` as its API answers."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def too_large(payload_size: int, limit: int) -> InvokeRefused | None:
    if payload_size <= limit:
        return None
    operation = "InvokeFunction" if limit == SYNC_PAYLOAD_LIMIT else "InvokeAsync"
    return InvokeRefused(413, "RequestEntityTooLargeException",
                         f"Request must be smaller than {limit} bytes for the {operation} "
                         "operation")


def throttled() -> InvokeRefused:
    return InvokeRefused(429, "TooManyRequestsException", "Rate Exceeded.")


class AsyncConfig:
    """What `AWS::Lambda::EventInvokeConfig` and the function's `DeadLetterConfig` say about
    its asynchronous invocations."""

    def __init__(self, properties: dict[str, Any] | None = None,
                 dead_letter: str | None = None) -> None:
        properties = properties or {}
        self.policy: RetryPolicy = LAMBDA_ASYNC.limited(
            properties.get("MaximumRetryAttempts"), properties.get("MaximumEventAgeInSeconds"))
        destinations = properties.get("DestinationConfig", {})
        self.on_success: str | None = destinations.get("OnSuccess", {}).get("Destination")
        self.on_failure: str | None = destinations.get("OnFailure", {}).get("Destination")
        self.dead_letter = dead_letter


@dataclass(frozen=True)
class Alias:
    """An alias: its version, and the versions it routes a weighted share of invocations to."""

    function: str
    name: str
    version: str  # "$LATEST" or a number
    weights: tuple[tuple[str, float], ...] = ()  # (version, share 0..1)


def pick_version(alias: Alias, draw: float) -> str:
    """The version an invocation through `alias` runs, for a uniform `draw` in [0, 1): each
    additional version takes its weight's share, the alias's own version the rest."""
    for version, weight in alias.weights:
        if draw < weight:
            return version
        draw -= weight
    return alias.version


def unzipped_size(folder: Path) -> int:
    """The bytes the folder's files hold: what its .zip would extract to."""
    return sum(os.path.getsize(os.path.join(top, name))
               for top, _, names in os.walk(folder) for name in names
               if not os.path.islink(os.path.join(top, name)))


def _error(stack: Stack, logical_id: str, prop: str, message: str) -> AssemblyError:
    return AssemblyError(f"{stack.template_file}: Resources.{logical_id}.Properties.{prop}: "
                         f"{message}")


def layer_folders(stack: Stack) -> dict[str, Path]:
    """Each layer version of the template by ARN: its content folder, within Lambda's limit."""
    folders = {}
    for resource in stack.of_type(LAYER):
        stack.properties(resource.logical_id)  # checked as CloudFormation checks it
        folder = stack.code_path(resource.logical_id)
        if unzipped_size(folder) > UNZIPPED_LIMIT:
            raise _error(stack, resource.logical_id, "Content",
                         f"Unzipped size must be smaller than {UNZIPPED_LIMIT} bytes")
        folders[stack.ref(resource.logical_id)] = folder
    return folders


def inline_code(folder: Path, text: str) -> Path:
    """Write inline code where Lambda would find it, leaving an unchanged file untouched (a
    restart with the same template finds it as it was)."""
    path = folder / INLINE_FILE
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def function_configs(stack: Stack, code_root: Path | None = None,
                     interpreters: Interpreters | None = None,
                     notes: list[str] | None = None
                     ) -> tuple[dict[str, FunctionConfig], list[str]]:
    """The functions the sandbox can run (Python runtimes) by logical id, and the names of
    those it cannot. Inline code is written under `code_root` (the state folder's
    `functions/`); what the start must say is appended to `notes`."""
    runnable: dict[str, FunctionConfig] = {}
    skipped: list[str] = []
    interpreters = interpreters or Interpreters()
    notes = [] if notes is None else notes
    layers = layer_folders(stack)
    for resource in stack.of_type(FUNCTION):
        props = stack.properties(resource.logical_id)
        runtime = props.get("Runtime", "")
        if not runtime.startswith("python"):
            skipped.append(f"{resource.logical_id} (runtime {runtime or 'none'})")
            continue
        if "Handler" not in props:  # required with a runtime, for code in a .zip archive
            raise AssemblyError(f"{stack.template_file}: Resources.{resource.logical_id}."
                                "Properties.Handler: a function whose code is a .zip file "
                                "archive needs a Handler (and a Runtime)")
        name = stack.ref(resource.logical_id)
        code_dir = _code_dir(stack, resource.logical_id, props, name, code_root)
        runnable[resource.logical_id] = FunctionConfig(
            name=name,
            arn=stack.get_att(resource.logical_id, "Arn"),
            code_dir=code_dir,
            handler=props["Handler"],
            runtime=runtime,
            timeout_s=float(_within(stack, resource.logical_id, props, "Timeout", 3, 1, 900)),
            memory_mb=_within(stack, resource.logical_id, props, "MemorySize", 128, 128, 10_240),
            environment=props.get("Environment", {}).get("Variables", {}),
            dead_letter_arn=props.get("DeadLetterConfig", {}).get("TargetArn"),
            reserved_concurrency=_within(stack, resource.logical_id, props,
                                         "ReservedConcurrentExecutions", None, 0, None),
            python=interpreters.for_runtime(runtime, display_name(stack, resource.logical_id)),
            layers=_layers(stack, resource.logical_id, props, code_dir, layers, notes),
        )
        if props.get("SnapStart", {}).get("ApplyOn", "None") != "None":
            notes.append(f"not emulated: SnapStart of {resource.logical_id} (it changes cold "
                         "starts, not behaviour)")
    return runnable, skipped


def _code_dir(stack: Stack, logical_id: str, props: dict[str, Any], name: str,
              code_root: Path | None) -> Path:
    code = props["Code"]
    if "ZipFile" not in code:
        return stack.code_path(logical_id)
    if code_root is None:
        raise _error(stack, logical_id, "Code.ZipFile", "inline code needs a state folder")
    return inline_code(code_root / re.sub(r"[^A-Za-z0-9_-]", "_", name), code["ZipFile"])


def _layers(stack: Stack, logical_id: str, props: dict[str, Any], code_dir: Path,
            known: dict[str, Path], notes: list[str]) -> tuple[Path, ...]:
    """The function's layer folders, in its order, within Lambda's limits."""
    arns = props.get("Layers", [])
    if len(arns) > MAX_LAYERS:
        raise _error(stack, logical_id, "Layers",
                     f"Cannot reference more than {MAX_LAYERS} layers.")
    missing = [arn for arn in arns if arn not in known]
    if missing:
        notes.append(f"{logical_id} runs without layer {', '.join(missing)}: not in the "
                     "assembly, so not on this machine")
    folders = tuple(known[arn] for arn in arns if arn in known)
    size = unzipped_size(code_dir) + sum(unzipped_size(folder) for folder in folders)
    if folders and size > UNZIPPED_LIMIT:
        raise _error(stack, logical_id, "Layers",
                     "Function code combined with layers exceeds the maximum allowed size of "
                     f"{UNZIPPED_LIMIT} bytes. The actual size is {size} bytes.")
    return folders


def _within(stack: Stack, logical_id: str, props: dict[str, Any], name: str, default: Any,
            low: int, high: int | None) -> Any:
    """A number property in the range CreateFunction accepts, refused in Lambda's words."""
    value = props.get(name, default)
    if value is None or (low <= value and (high is None or value <= high)):
        return value
    said, bound = ("greater", low) if value < low else ("less", high)
    raise AssemblyError(
        f"{stack.template_file}: Resources.{logical_id}.Properties.{name}: 1 validation error "
        f"detected: Value '{value}' at '{name[0].lower()}{name[1:]}' failed to satisfy "
        f"constraint: Member must have value {said} than or equal to {bound}")


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
        targets: Targets,
        settings: Settings,
        base_env: dict[str, str],
        on_log: OnLog,
    ) -> None:
        self.state = state
        self.targets = targets
        self.settings = settings
        self.base_env = base_env
        self.on_log = on_log
        self.configs: dict[str, FunctionConfig] = {}  # function name -> config
        self.labels: dict[str, str] = {}  # function name -> display name
        # function name, or "name:qualifier" for a version or alias -> its asynchronous settings
        self.async_configs: dict[str, AsyncConfig] = {}
        self.versions: dict[str, list[str]] = {}  # function name -> its version numbers
        self.aliases: dict[tuple[str, str], Alias] = {}  # (function name, alias name) -> alias
        self.not_runnable: list[str] = []
        self.notes: list[str] = []  # what the start says about the functions
        interpreters = Interpreters(settings.python)
        code_root = state.path.parent / "functions"
        for stack in stacks:
            runnable, skipped = function_configs(stack, code_root, interpreters, self.notes)
            self.not_runnable += skipped
            for logical_id, config in runnable.items():
                self.configs[config.name] = config
                self.labels[config.name] = display_name(stack, logical_id)
                self.async_configs[config.name] = AsyncConfig(dead_letter=config.dead_letter_arn)
            self._read_versions(stack)
            for resource in stack.of_type(EVENT_INVOKE_CONFIG):
                props = stack.properties(resource.logical_id)
                name = self._name(props["FunctionName"])
                dead_letter = self.configs[name].dead_letter_arn if name in self.configs else None
                self.async_configs[_qualified_key(name, props.get("Qualifier"))] = AsyncConfig(
                    props, dead_letter)
        self.notes += interpreters.notes()
        for arn in self.arns():
            targets.register(arn, _FunctionSink(self, arn))
        self._workers: dict[tuple[str, str], FunctionWorkers] = {}
        # Inits the machine runs at once, whichever functions they are for: one a core.
        self._inits = threading.BoundedSemaphore(os.cpu_count() or 1)
        # A slot per reserved concurrent execution, for the functions that reserve some.
        self._slots = {name: threading.BoundedSemaphore(config.reserved_concurrency)
                       for name, config in self.configs.items() if config.reserved_concurrency}
        self._lock = threading.Lock()
        self._closing = False

    def _read_versions(self, stack: Stack) -> None:
        """The template's versions and aliases of the functions the sandbox runs; an alias to a
        version that does not exist stops the start, as its creation fails on AWS."""
        for resource in stack.of_type(VERSION):
            stack.properties(resource.logical_id)
            name = stack.function_of(resource.logical_id)
            if name in self.configs:
                self.versions.setdefault(name, []).append(
                    stack.version_number(resource.logical_id))
            if note := _provisioned(stack, resource.logical_id):
                self.notes.append(note)
        for resource in stack.of_type(ALIAS):
            props = stack.properties(resource.logical_id)
            name = stack.function_of(resource.logical_id)
            if name not in self.configs:
                continue
            where = resource.logical_id
            weights = props.get("RoutingConfig", {}).get("AdditionalVersionWeights", [])
            if len(weights) > 1:
                raise _error(stack, where, "RoutingConfig.AdditionalVersionWeights",
                             "1 validation error detected: Value at 'routingConfig."
                             "additionalVersionWeights' failed to satisfy constraint: Member "
                             "must have length less than or equal to 1")
            for index, weight in enumerate(weights):
                share = weight["FunctionWeight"]
                if not 0.0 <= share <= 1.0:
                    raise _error(stack, where, f"RoutingConfig.AdditionalVersionWeights[{index}]"
                                 ".FunctionWeight", f"1 validation error detected: Value "
                                 f"'{share}' at 'routingConfig.additionalVersionWeights' failed "
                                 "to satisfy constraint: Map value must satisfy constraint: "
                                 "[Member must have value less than or equal to 1.0, Member "
                                 "must have value greater than or equal to 0.0]")
            versions = [("FunctionVersion", props["FunctionVersion"])] + [
                (f"RoutingConfig.AdditionalVersionWeights[{i}].FunctionVersion",
                 w["FunctionVersion"]) for i, w in enumerate(weights)]
            for prop, version in versions:
                if version != LATEST and version not in self.versions.get(name, []):
                    raise _error(stack, where, prop, "Function not found: "
                                 f"{self.configs[name].arn}:{version}")
            self.aliases[(name, props["Name"])] = Alias(
                name, props["Name"], props["FunctionVersion"],
                tuple((w["FunctionVersion"], w["FunctionWeight"]) for w in weights))
            if note := _provisioned(stack, resource.logical_id):
                self.notes.append(note)

    def arns(self) -> list[str]:
        """Every ARN that invokes a function: plain, and qualified by `$LATEST`, a version or
        an alias."""
        arns = []
        for name, config in self.configs.items():
            qualifiers = [LATEST, *self.versions.get(name, []),
                          *(alias for function, alias in self.aliases if function == name)]
            arns += [config.arn, *(f"{config.arn}:{q}" for q in qualifiers)]
        return arns

    @staticmethod
    def _name(name_or_arn: str) -> str:
        return split_qualifier(name_or_arn)[0]

    def resolve(self, name_or_arn: str, qualifier: str | None = None) -> tuple[FunctionConfig,
                                                                              str]:
        """The function and version an invocation runs, from a name, an ARN or a partial ARN,
        qualified or not (or with `qualifier`): an alias picks its version by its weights.
        Raises FunctionNotFound (Lambda's 404) for an unknown function or qualifier."""
        name, named = split_qualifier(name_or_arn)
        qualifier = named or qualifier
        config = self.configs.get(name)
        if config is None:
            raise FunctionNotFound(f"Function not found: {name_or_arn}")
        if qualifier in (None, LATEST):
            return config, LATEST
        if qualifier in self.versions.get(name, []):
            return config, qualifier
        alias = self.aliases.get((name, qualifier))
        if alias is None:
            raise FunctionNotFound(f"Function not found: {config.arn}:{qualifier}")
        return config, pick_version(alias, self.settings.rng.random())

    def config(self, name_or_arn: str) -> FunctionConfig:
        """The function a name or ARN (qualified or not) names."""
        return self.resolve(name_or_arn)[0]

    def invoked_arn(self, name_or_arn: str) -> str:
        """The function's ARN, qualified as `name_or_arn` is: what a mapping or a target
        invokes, so an alias keeps choosing the version at each invocation."""
        return _invoked_arn(self.config(name_or_arn), name_or_arn)

    def label(self, function_name: str) -> str:
        return self.labels.get(function_name, function_name)

    def workers(self, config: FunctionConfig, version: str = LATEST) -> FunctionWorkers:
        """The workers of one version of a function (see the module's docstring)."""
        with self._lock:
            if self._closing:
                raise Abandoned(f"{config.name}: the sandbox is stopping")
            key = (config.arn, version)
            if key not in self._workers:
                self._workers[key] = FunctionWorkers(
                    replace(config, version=version), self.on_log, self.base_env,
                    max_concurrency=min(config.reserved_concurrency or DEFAULT_MAX_WORKERS,
                                        DEFAULT_MAX_WORKERS), inits=self._inits)
            return self._workers[key]

    def code_folders(self) -> set[Path]:
        """Every folder a function's code or layers are read from (what watch mode watches)."""
        return {folder for config in self.configs.values()
                for folder in (config.code_dir, *config.layers)}

    def running(self) -> list[str]:
        """The functions with an invocation running now, one entry per invocation."""
        with self._lock:
            pools = list(self._workers.values())
        return [self.label(pool.config.name) for pool in pools for _ in range(pool.busy)]

    def retire(self, folder: Path) -> list[str]:
        """Watch mode: replace the warm workers of the functions that read `folder`; the
        labels of the functions that had some."""
        with self._lock:
            pools = [w for w in self._workers.values()
                     if folder in (w.config.code_dir, *w.config.layers)]
        return sorted({self.label(pool.config.name) for pool in pools if pool.retire()})

    def close(self) -> None:
        with self._lock:
            self._closing = True
            workers = list(self._workers.values())
        for w in workers:
            w.close()

    # Invoke

    def invoke(
        self, name_or_arn: str, payload: bytes, request_id: str | None = None,
        wait_for_slot: bool = False, **context: Any
    ) -> Invocation:
        """Run one invocation now and record it in the history (for the console and trace)."""
        invocation, record = self.run(name_or_arn, payload, request_id, wait_for_slot, **context)
        self.state.record(record)
        return invocation

    def run(
        self, name_or_arn: str, payload: bytes, request_id: str | None = None,
        wait_for_slot: bool = False, **context: Any
    ) -> tuple[Invocation, InvocationRun]:
        """Run one invocation now; its history record is the caller's to commit, with the rest
        of its work: an asynchronous invocation's in the transaction that ends its job, one
        commit instead of two (4 of the 17 commits of an order).

        Raises `InvokeRefused` when Lambda would refuse it: a payload over the synchronous limit,
        or no free slot of the function's reserved concurrency (`wait_for_slot`, for an
        asynchronous invocation, waits for one instead). Through an alias, its weights choose
        the version that runs (`Invocation.version`)."""
        config, version = self.resolve(name_or_arn)
        refused = too_large(len(payload), SYNC_PAYLOAD_LIMIT)
        if refused:
            raise refused
        request_id = request_id or ids.uuid4()
        with traces.span("invocation"), self._slot(config, wait_for_slot):
            if self.settings.inject(self.settings.invoke_fault_share):
                invocation = injected_fault(config, request_id)
            else:
                invocation = self.workers(config, version).invoke(
                    payload, request_id, _invoked_arn(config, name_or_arn))
            if self._closing:
                # Killed by the sandbox stopping, not failed: not a try that counts.
                raise Abandoned(f"{config.name}: the sandbox stopped during {request_id}")
            record = invocation_record(invocation, self.label(config.name), context)
        return invocation, record

    @contextmanager
    def _slot(self, config: FunctionConfig, wait: bool) -> Iterator[None]:
        if config.reserved_concurrency == 0:
            raise throttled()
        slots = self._slots.get(config.name)
        if slots is None:
            yield
            return
        while not slots.acquire(timeout=0.2 if wait else 0):
            if not wait:
                raise throttled()
            if self._closing:
                raise Abandoned(f"{config.name}: the sandbox is stopping")
        try:
            yield
        finally:
            slots.release()

    def async_job(self, name_or_arn: str, body: str, **context: Any) -> NewJob:
        """Lambda accepting an asynchronous invocation: a job the caller stores (in the same
        transaction as whatever ends its own work). Raises `Failure`, not to be retried, when
        Lambda refuses it: a payload over the asynchronous limit."""
        target = self.invoked_arn(name_or_arn)
        refused = too_large(len(body.encode()), ASYNC_PAYLOAD_LIMIT)
        if refused:
            raise Failure(refused.code, refused.message, retryable=False)
        payload = {"body": body, "request_id": ids.uuid4(), "context": context}
        return NewJob(INVOKE, target, payload)


class _FunctionSink:
    """A function as a target: Lambda accepts an asynchronous invocation."""

    def __init__(self, service: LambdaService, arn: str) -> None:
        self.service = service
        self.arn = arn

    def accept(self, parcel: Parcel) -> Writes:
        return Writes(jobs=[self.service.async_job(self.arn, parcel.body, **parcel.context)])


class AsyncInvocation:
    """The `Hop` of one asynchronous invocation, under the function's retry settings."""

    SPAN = "invocation"  # each try is the invocation's span; its destination, a child
    TRIES_FOLLOW_UP = False

    def __init__(self, service: LambdaService) -> None:
        self.service = service
        # job id -> its last failed run and that run's record, until settled
        self._last: dict[int, tuple[Invocation, InvocationRun]] = {}

    def settings(self, job: Job) -> AsyncConfig:
        """The settings of the version or alias invoked; one without an EventInvokeConfig of its
        own keeps the function's DeadLetterConfig."""
        name, qualifier = split_qualifier(job.target)
        found = self.service.async_configs.get(_qualified_key(name, qualifier))
        if found is not None:
            return found
        config = self.service.configs.get(name)
        return AsyncConfig(dead_letter=config.dead_letter_arn if config else None)

    def policy(self, job: Job) -> RetryPolicy:
        return self.settings(job).policy

    def attempt(self, job: Job) -> Writes:
        request_id = job.payload["request_id"]
        # (Jobs of older sandboxes may carry their sender's request id: not this run's.)
        context = {key: value for key, value in job.payload["context"].items()
                   if key != "request_id"} | {"attempt": job.attempt + 1}
        try:
            if self.service.config(job.target).reserved_concurrency == 0:
                raise Failure(ZERO_RESERVED_CONCURRENCY, "Function not invoked. Function is "
                              "configured with zero reserved concurrent executions",
                              retryable=False)
            invocation, run = self.service.run(job.target, job.payload["body"].encode(),
                                               request_id, wait_for_slot=True, **context)
        except FunctionNotFound as error:
            # Accepted before the function left the template: nothing can run it any more.
            raise Failure("ResourceNotFoundException", str(error), retryable=False) from None
        except InvokeRefused as error:
            raise Failure(error.code, error.message, retryable=error.status == 429) from None
        if not invocation.ok:
            self._last[job.id] = invocation, run
            error = error_of(invocation)
            raise Failure(str(error.get("errorType")), str(error.get("errorMessage")))
        writes = Writes(history=[run])
        destination = self.settings(job).on_success
        if destination is not None:
            record = self._record(job, "Success", invocation, None)
            writes += self._route(job, "OnSuccess", record, destination, Parcel(
                record.body(destination), self._onward(job), via="destination"))[0]
        return writes

    def retrying(self, job: Job, failure: Failure) -> list[Record]:
        """The failed run's record (none when it never ran: refused, throttled)."""
        _, run = self._last.pop(job.id, (None, None))
        return [run] if run else []

    def give_up(self, job: Job, failure: Failure, exhausted: str | None) -> Writes:
        """The record to OnFailure, the event to the DeadLetterConfig queue or topic: each
        route that takes it leaves a dead letter in the history; with none, one saying the
        invocation was dropped."""
        invocation, run = self._last.pop(job.id, (None, None))
        settings = self.settings(job)
        condition = {"MaximumRetryAttempts": "RetriesExhausted",
                     "MaximumEventAgeInSeconds": "EventAgeExceeded"}.get(exhausted or "",
                                                                         failure.code)
        record = self._record(job, condition, invocation, failure)
        attributes = {  # Lambda's dead-letter message attributes
            "RequestID": job.payload["request_id"],
            "ErrorCode": "200" if invocation else DLQ_ERROR_CODES.get(failure.code, "500"),
            "ErrorMessage": failure.message[:1024],
        }
        routes = []
        if settings.on_failure:
            routes.append(("OnFailure", settings.on_failure, Parcel(
                record.body(settings.on_failure), self._onward(job), via="destination")))
        if settings.dead_letter:
            routes.append(("DeadLetterConfig", settings.dead_letter,
                           Parcel(job.payload["body"], attributes=attributes,
                                  via="dead-letter")))
        writes = Writes(history=[run] if run else [])
        taken = False
        for route, destination, parcel in routes:
            route_writes, ok = self._route(job, route, record, destination, parcel)
            writes += route_writes
            if ok:
                writes.history.append(self._dead_letter(job, destination, record, attributes,
                                                        route))
            taken = taken or ok
        if not taken:
            writes.history.append(self._dead_letter(job, None, record, attributes, None))
        return writes

    def _route(self, job: Job, route: str, record: DestinationRecord, destination: str,
               parcel: Parcel) -> tuple[Writes, bool]:
        """Hand `parcel` to `destination`. One that names nothing or refuses it loses the record,
        as on AWS (its DestinationDeliveryFailures metric): the history says why. A failure
        route that took it is told by its dead letter."""
        condition = record.record["requestContext"]["condition"]
        taken = DestinationTaken(self._label(job), job.payload["request_id"], condition,
                                 destination, route, ok=True,
                                 event_id=job.payload["context"].get("event_id"))
        try:
            writes = self.service.targets.deliver(destination, parcel)
        except Failure as error:
            return Writes(history=[replace(taken, ok=False, error_message=error.message)]), False
        if route == "OnSuccess":
            writes.history.append(taken)
        return writes, True

    @staticmethod
    def _onward(job: Job) -> dict[str, Any]:
        """The context of a record sent on: a function it reaches runs as a destination, in the
        journey of the event that started it all."""
        return {"trigger": "destination", "event_id": job.payload["context"].get("event_id")}

    def _label(self, job: Job) -> str:
        return self.service.label(self.service._name(job.target))

    def _record(self, job: Job, condition: str, invocation: Invocation | None,
                failure: Failure | None) -> DestinationRecord:
        name, qualifier = split_qualifier(job.target)
        config = self.service.configs.get(name)
        arn = config.arn if config else job.target
        if config and qualifier:
            arn = f"{arn}:{qualifier}"  # the record names the ARN as invoked
        # Every try counts, even one that failed before the function ran; a refused one not.
        runs = job.attempt if condition == ZERO_RESERVED_CONCURRENCY else job.attempt + 1
        return destination_event(arn, job.payload, runs, condition, invocation, failure)

    def _dead_letter(self, job: Job, queue: str | None, record: DestinationRecord,
                     attributes: dict[str, str], route: str | None) -> DeadLetter:
        context = job.payload["context"]
        return DeadLetter(queue, "lambda", event_id=context.get("event_id"),
                          function=self._label(job), record=record.record,
                          attributes=attributes, rule=context.get("rule"),
                          target_id=context.get("target_id"), route=route)


def _qualified_key(name: str, qualifier: str | None) -> str:
    """The key of an EventInvokeConfig: the function's name for `$LATEST`, else name:qualifier."""
    return name if qualifier in (None, LATEST) else f"{name}:{qualifier}"


def _invoked_arn(config: FunctionConfig, name_or_arn: str) -> str:
    """The ARN as the caller named it, which the handler's context reports."""
    qualifier = split_qualifier(name_or_arn)[1]
    return f"{config.arn}:{qualifier}" if qualifier else config.arn


def _provisioned(stack: Stack, logical_id: str) -> str | None:
    if "ProvisionedConcurrencyConfig" not in stack.resources[logical_id].properties:
        return None
    return (f"not emulated: ProvisionedConcurrencyConfig of {logical_id} (it changes cold "
            "starts, not behaviour)")


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
