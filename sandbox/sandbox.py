"""Starts and stops everything one cloud assembly needs, in dependency order: state, DynamoDB
Local and its tables, queues, Lambda, EventBridge, the endpoint, then the job runner that
delivers whatever an earlier run accepted and did not finish, and the clock that fires
schedules."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sandbox.apigateway.keys import UsagePlans
from sandbox.apigateway.rest_api import RestApi
from sandbox.apigateway.wire import ApiGateway, api_notes
from sandbox.assembly import AssemblyError, Stack, read_assembly
from sandbox.cloudformation.wire import CloudFormationWire
from sandbox.console.api import PREFIX as CONSOLE_PATH
from sandbox.console.api import Console
from sandbox.core.delivery import Deliveries
from sandbox.core.guard import Guard
from sandbox.core.jobs import JobRunner
from sandbox.core.lock import StateLock
from sandbox.core.state import State
from sandbox.core.targets import Targets
from sandbox.core.wire import Response
from sandbox.dynamodb.local import DynamoDBLocal, ensure_tables, table_request
from sandbox.dynamodb.wire import DynamoDBPassThrough
from sandbox.endpoint import Endpoint
from sandbox.events.backend import DELIVERY, EventBus, RuleDelivery
from sandbox.events.scheduler import (
    SCHEDULE_JOB,
    EventBridgeScheduler,
    ScheduleClock,
    SchedulerDelivery,
    entries,
)
from sandbox.lambda_.backend import INVOKE, AsyncInvocation, LambdaService
from sandbox.lambda_.event_sources import EventSources
from sandbox.lambda_.wire import LambdaWire
from sandbox.logs.store import LogStore, template_groups
from sandbox.logs.wire import LogsWire
from sandbox.settings import Settings
from sandbox.sns.backend import Topics
from sandbox.sns.wire import SnsWire
from sandbox.sqs.backend import Queues
from sandbox.sqs.wire import SqsQueryWire
from sandbox.sts.wire import StsWire
from sandbox.traces.indexer import indexer
from sandbox.traces.retention import Retention, trimmer

PROJECT_DIR = Path(__file__).resolve().parents[1]
EMULATED = {
    "AWS::DynamoDB::Table",
    "AWS::Events::EventBus",
    "AWS::Events::Rule",
    "AWS::Scheduler::Schedule",
    "AWS::Scheduler::ScheduleGroup",  # bookkeeping: a name in its schedules' ARNs
    "AWS::Lambda::Function",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::Method",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Stage",
    "AWS::ApiGateway::Authorizer",
    "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGateway::UsagePlanKey",
    "AWS::Logs::LogGroup",  # function logs go to the terminal and to the state (CloudWatch Logs)
}
# Permissions and bookkeeping: locally everything may call everything, so skipped quietly.
QUIETLY_SKIPPED = ("AWS::IAM::", "AWS::CDK::Metadata", "AWS::Lambda::Permission",
                   "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy")


def not_emulated(stacks: list[Stack]) -> list[str]:
    """Each resource type the sandbox does not run, with the logical ids of its resources:
    "AWS::StepFunctions::StateMachine (Flow, Other)"."""
    ids: dict[str, list[str]] = {}
    for stack in stacks:
        for resource in stack.resources.values():
            if resource.type not in EMULATED and not resource.type.startswith(QUIETLY_SKIPPED):
                ids.setdefault(resource.type, []).append(resource.logical_id)
    return [f"{kind} ({', '.join(ids[kind])})" for kind in sorted(ids)]


class FunctionLogs:
    """Every function's lines go to the terminal, prefixed with the function's name, and to its
    CloudWatch log group in the state (`sandbox.logs.store`), in its worker's log stream. The
    terminal gets them a batch at a time, as the log group does (`flush`): a flush a line was
    a system call on the path of each hop, five an invocation."""

    def __init__(self, store: LogStore, groups: dict[str, str], out: TextIO,
                 label: Callable[[str], str]) -> None:
        self.store = store
        self.groups = groups  # function name -> its log group
        self.out = out
        self.label = label
        self._lock = threading.Lock()

    def group(self, function: str) -> str:
        return self.groups.get(function, f"/aws/lambda/{function}")

    def __call__(self, function: str, line: str, stream: str, request_id: str | None) -> None:
        self.store.put(self.group(function), stream, line, request_id=request_id)
        with self._lock:
            self.out.write(f"[{self.label(function)}] {line}\n")

    def flush(self) -> None:
        with self._lock:
            self.out.flush()

    def lines(self, label: str) -> list[str]:
        """The lines of the function shown as `label` (the console's lanes)."""
        return [line for function in self.groups if self.label(function) == label
                for line in self.store.lines(self.group(function))]


class Sandbox:
    def __init__(
        self,
        assembly_dir: Path,
        state_dir: Path,
        port: int,
        settings: Settings | None = None,
        reset: bool = False,
        out: TextIO = sys.stdout,
        retention: Retention | None = None,
        otlp_endpoint: str | None = None,
    ) -> None:
        self.assembly_dir = assembly_dir
        self.state_dir = state_dir
        self.port = port
        self.settings = settings or Settings()
        self.reset = reset
        self.retention = retention or Retention()
        self.otlp_endpoint = otlp_endpoint  # where spans go, over OTLP/HTTP
        self.out = out
        self.extra_routes: dict[str, Callable[[str, str, bytes], Response]] = {}
        self._stops: list[Callable[[], None]] = []

    def _say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Read first, start after: a template the sandbox cannot read starts nothing."""
        stacks = read_assembly(self.assembly_dir, self.url)
        # One sandbox per state folder, and --reset only under the lock: never a folder
        # emptied under a running sandbox.
        self.lock = StateLock(self.state_dir)
        self.lock.acquire(self.url)
        self._stops.append(self.lock.release)
        try:
            if self.reset:
                self.lock.empty_folder()
            self._start(stacks)
        except BaseException:
            self.stop()
            raise

    def _start(self, stacks: list[Stack]) -> None:
        # Everything is read and wired first, processes started last: a template the sandbox
        # cannot run, or a port in use, fails before Java starts.
        tables = self.wire(stacks)
        self.endpoint = Endpoint(self.port, **self._services(stacks))
        self.port = self.endpoint.port
        self.lock.announce(self.url)
        self._stops.append(self.endpoint.stop)
        self._stops.append(self.dynamodb.stop)
        self.dynamodb.start()
        ensure_tables(self.dynamodb.endpoint_url, tables)
        self.endpoint.start()
        self._run(tables)

    def _services(self, stacks: list[Stack]) -> dict[str, Any]:
        """What the endpoint dispatches to, by its parameter names."""
        return {
            "bus": self.bus, "queues": self.queues,
            "api_gateway": ApiGateway(self.apis, self.lambda_, self.settings, self.usage_plans),
            "dynamodb": DynamoDBPassThrough(
                self.dynamodb.endpoint_url,
                self.state.record if self.settings.trace_dynamodb else None),
            "extra_routes": self.extra_routes,
            "query_services": [SnsWire(self.topics, self.state),
                               SqsQueryWire(self.queues), CloudFormationWire(stacks), StsWire()],
            "guard": Guard(self.settings.allowed_hosts, self._say),
            "logs": LogsWire(self.log_store, stacks[0].region, stacks[0].account),
            "lambda_api": LambdaWire(stacks, self.lambda_, self.state, self.log_store.invocation,
                                     self.logs.group),
        }

    def _run(self, tables: list[dict[str, Any]]) -> None:
        """The services behind the endpoint, after DynamoDB Local and the endpoint."""
        self.runner.start()
        self._stops.append(self.runner.stop)
        self.clock.start()
        self._stops.append(self.clock.stop)
        self.event_sources.start()
        self._stops.append(self.event_sources.stop)
        self._start_traces()
        self.log_store.start(then=self.logs.flush)
        self.print_summary(tables)

    def reload(self) -> bool:
        """Watch mode: run the assembly as it is now, in place. The state, DynamoDB Local and
        the endpoint stay, so data, queued events and open connections are kept; the services
        stop in `stop`'s order and are wired and started again, and the endpoint dispatches to
        the new ones. A new assembly that cannot run is refused before anything stops (wired
        once on the side to find out), and the running one goes on."""
        check = Sandbox(self.assembly_dir, self.state_dir, self.port, self.settings,
                        out=self.out)
        try:
            stacks = read_assembly(self.assembly_dir, self.url)
            check.wire(stacks, self.dynamodb)
        except AssemblyError as error:
            self._say(f"sandbox: the new assembly cannot run, the running one goes on: {error}")
            return False
        finally:
            check.stop()
        kept = [self.lock.release, self.endpoint.stop, self.dynamodb.stop]
        self._stops = [stop for stop in self._stops if stop not in kept]
        self.stop()
        self.endpoint.api_gateway.stop()
        self._stops = kept
        tables = self.wire(stacks, self.dynamodb)
        ensure_tables(self.dynamodb.endpoint_url, tables)
        vars(self.endpoint).update(self._services(stacks))
        self._run(tables)
        return True

    def retire(self, folder: Path) -> None:
        """Watch mode: a function's code was saved; its next invocation runs it."""
        functions = self.lambda_.retire(folder)
        if functions:
            self._say(f"sandbox: {folder} changed: new workers for {', '.join(functions)}")

    def wire(self, stacks: list[Stack],
             dynamodb: DynamoDBLocal | None = None) -> list[dict[str, Any]]:
        """Read every resource and build each service, starting nothing and binding nothing:
        whatever the template holds, this ends in an `AssemblyError` or a sandbox ready to
        start. Returns the tables to create. `dynamodb`: the one already running (reload)."""
        self.stacks = stacks
        self.state = State(self.state_dir / "sandbox.db")
        self._stops.append(self.state.close)
        self.dynamodb = dynamodb or DynamoDBLocal(PROJECT_DIR, self.state_dir / "dynamodb",
                                                  say=self._say)
        tables = [
            table_request(s.properties(t.logical_id), s.ref(t.logical_id),
                          f"{s.template_file}: Resources.{t.logical_id}.Properties")
            for s in stacks for t in s.of_type("AWS::DynamoDB::Table")
        ]

        region = stacks[0].region
        base_env = {
            "AWS_ENDPOINT_URL": self.url,
            # The functions talk to DynamoDB Local directly: one hop less on every write;
            # through the endpoint when each call is to be a span.
            "AWS_ENDPOINT_URL_DYNAMODB": self.url if self.settings.trace_dynamodb
            else self.dynamodb.endpoint_url,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_SESSION_TOKEN": "sandbox",
        }
        self.targets = Targets()
        self.queues = Queues(stacks, self.state, self.targets)
        self.log_store = LogStore(self.state)
        self._stops.append(self.log_store.stop)  # after the workers: it writes their last lines
        log_groups, function_groups = template_groups(stacks)
        self.log_store.declare(log_groups)
        self.logs = FunctionLogs(self.log_store, function_groups, self.out,
                                 label=lambda function: self.lambda_.label(function))
        self.lambda_ = LambdaService(stacks, self.state, self.targets, self.settings, base_env,
                                     on_log=self.logs)
        self._stops.append(self.lambda_.close)
        self.event_sources = EventSources(stacks, self.lambda_, self.queues,
                                          self.queues.settings(), self.state, self.targets,
                                          self.dynamodb.endpoint_url)
        self.topics = Topics(stacks, self.targets)
        self.bus = EventBus(stacks, self.state, self.targets, self.settings)
        started = datetime.now(UTC)  # when the rates of rules and schedules count from
        self.scheduler = EventBridgeScheduler(stacks, self.targets, started)
        deliveries = Deliveries(self.state, self.settings, {
            DELIVERY: RuleDelivery(self.bus),
            INVOKE: AsyncInvocation(self.lambda_),
            SCHEDULE_JOB: SchedulerDelivery(self.scheduler, region),
        })
        self.runner = JobRunner(self.state, dict.fromkeys(deliveries.hops, deliveries.run))
        self.clock = ScheduleClock(self.state, entries(self.bus, self.scheduler, started))
        self.extra_routes.update(self.clock.routes())
        self.apis = [api for stack in stacks for api in RestApi.from_stack(stack)]
        self.usage_plans = UsagePlans.from_stacks(stacks, {(a.api_id, a.stage) for a in self.apis})

        self.extra_routes.update(Console.of(self).routes())
        return tables

    def _start_traces(self) -> None:
        """The history's trimming, the indexing of its values and, when asked, the spans'
        export: each in a thread of its own, reading the state behind the work."""
        for behind in (trimmer(self.state, self.retention), indexer(self.state)):
            behind.start()
            self._stops.append(behind.stop)
        if self.otlp_endpoint:
            # OpenTelemetry's packages take half a second to import: only when asked.
            from sandbox.traces.otlp import Exporter

            exporter = Exporter(self.state, self.otlp_endpoint)
            exporter.start()
            self._stops.append(exporter.stop)

    def print_summary(self, tables: list[dict]) -> None:
        say = self.out.write
        say(f"sandbox: {self.assembly_dir} ({', '.join(s.name for s in self.stacks)})\n")
        say(f"  DynamoDB Local  {', '.join(t['TableName'] for t in tables) or '(no tables)'}\n")
        for bus, rules in self.bus.rules.items():
            if rules or bus != "default":
                say(f"  EventBridge     bus {bus}: rules {', '.join(r.name for r in rules)}\n")
        labels = sorted(self.lambda_.labels.values())
        say(f"  Lambda          {', '.join(labels) or '(no functions)'}\n")
        for entry in self.clock.entries.values():
            zone = "" if entry.timing.tz.key == "UTC" else f" in {entry.timing.tz.key}"
            off = "" if entry.enabled else " (DISABLED)"
            say(f"  Schedule        {entry.kind} {entry.name}: {entry.expression}{zone}{off}\n")
        for mapping in self.event_sources.sqs:
            say(f"  Event source    {mapping.queue_arn.split(':')[-1]} -> "
                f"{self.lambda_.label(mapping.function_arn.split(':')[6])}\n")
        for stream in self.event_sources.streams:
            say(f"  Event source    {stream.table} stream -> "
                f"{self.lambda_.label(stream.function_arn.split(':')[6])}\n")
        if self.event_sources.not_emulated:
            say(f"  not emulated    {', '.join(self.event_sources.not_emulated)}\n")
        if self.event_sources.not_run:
            say(f"  not polled      {', '.join(self.event_sources.not_run)}\n")
        if self.lambda_.not_runnable:
            say(f"  not run         {', '.join(self.lambda_.not_runnable)}\n")
        for note in self.lambda_.notes:
            say(f"  Lambda          {note}\n")
        for note in self.topics.notes:
            say(f"  SNS             {note}\n")
        skipped = not_emulated(self.stacks)
        if skipped:
            say(f"  not emulated    {'; '.join(skipped)}\n")
        say(f"  AWS endpoint    AWS_ENDPOINT_URL={self.url}\n")
        say(f"  Console         {self.url}{CONSOLE_PATH}/\n")
        for api in self.apis:
            for method in api.methods:
                path = method.resource_path
                say(f"  REST API        {method.http_method} {self.url}/{api.stage}{path}\n")
        for line in api_notes(self.apis, self.usage_plans):
            say(f"  REST API        {line}\n")
        self.out.flush()

    def stop(self) -> None:
        """Stop in reverse order of start; every step runs even if one before it failed."""
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception as error:
                self.out.write(f"sandbox: while stopping: {error}\n")
