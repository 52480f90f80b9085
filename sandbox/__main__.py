"""`cdk-sandbox up | dlq | trace | orders | fire | invoke` (or `python -m sandbox ...`): the
command line of the local sandbox.

`up` in a CDK project's folder (a `cdk.json`) runs its `cdk.out`, synthesized first through the
project's own CDK CLI when it is missing or older than the app's sources; `--watch` keeps the
running sandbox in step with saved changes (sandbox.watch)."""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from sandbox import invoke as invoking
from sandbox import trace as tracing
from sandbox.assembly import AssemblyError
from sandbox.core.lock import StateLocked
from sandbox.core.state import State, StateError
from sandbox.dynamodb.local import DynamoDBLocalError
from sandbox.events.scheduler import ROUTE as SCHEDULES_ROUTE
from sandbox.journey import failure_reason, text_list, text_timeline
from sandbox.lambda_.interpreters import InterpreterError
from sandbox.sandbox import Sandbox
from sandbox.settings import Settings
from sandbox.traces import retention
from sandbox.watch import Project, SynthFailed, Watcher, staged

DEFAULT_PORT = 4000
DEFAULT_ASSEMBLY = Path("cdk") / "cdk.out"  # this repository's app
DEFAULT_STATE = Path(".sandbox")
SIGNAL_POLL_S = 0.5  # how soon Ctrl-C is seen, whichever thread the kernel gave it to


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def duration(text: str) -> float:
    try:
        return retention.parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not a duration (7d, 12h, 30m, or "
                                         "seconds)") from None


def size(text: str) -> int:
    try:
        return retention.parse_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not a size (1GB, 500MB, or bytes)") from None


def parser(prog: str = "python -m sandbox") -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog=prog, description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = cli.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run a CDK cloud assembly locally until Ctrl-C")
    up.add_argument("--assembly", type=Path,
                    help="the cloud assembly folder (default: ./cdk.out in a CDK project's "
                         f"folder, else {DEFAULT_ASSEMBLY})")
    up.add_argument("--watch", action=argparse.BooleanOptionalAction, default=False,
                    help="a saved handler runs at the next invocation, a saved app is "
                         "synthesized (--no-staging) and applied in place (default: off)")
    up.add_argument("--port", type=int, default=DEFAULT_PORT,
                    help="the one port for everything, on 127.0.0.1 (default: %(default)s)")
    up.add_argument("--state", type=Path, default=DEFAULT_STATE,
                    help="where data, queues and logs are kept (default: %(default)s)")
    up.add_argument("--reset", action="store_true", help="start from an empty state folder")
    up.add_argument("--retry-scale", type=float, default=1.0,
                    help="multiply AWS's retry delays, e.g. 0.01 (default: %(default)s)")
    up.add_argument("--fail-invocations", type=share, default=0.0, metavar="SHARE",
                    help="fault injection: this share of Lambda invocations fails")
    up.add_argument("--fail-deliveries", type=share, default=0.0, metavar="SHARE",
                    help="fault injection: this share of EventBridge deliveries is throttled")
    up.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                    help="also answer requests for this host name (repeatable); by default "
                         "only localhost, 127.0.0.1 and [::1]")
    up.add_argument("--integration-timeout", type=float, default=29.0, metavar="SECONDS",
                    help="API Gateway's integration timeout (default: %(default)s)")
    up.add_argument("--python", metavar="PATH",
                    help="the Python interpreter of every function's workers (it must import "
                         "awslambdaric); by default python3.X of each function's runtime when "
                         "it is on the PATH, else the sandbox's own")
    up.add_argument("--retention", type=duration, default=retention.DEFAULT_RETENTION_S,
                    metavar="AGE", help="keep history, traces and function logs this long: "
                                        "7d, 12h, 30m or seconds (default: 7d)")
    up.add_argument("--history-cap", type=size, default=retention.Retention().max_bytes,
                    metavar="SIZE", help="trim the oldest history while the state is bigger: "
                                         "1GB, 500MB or bytes (default: 1GB)")
    up.add_argument("--otlp-endpoint", metavar="URL",
                    help="send every span over OTLP/HTTP to this collector, e.g. "
                         "http://127.0.0.1:4318/v1/traces (Jaeger, Grafana Tempo...)")
    up.add_argument("--trace-dynamodb", action="store_true",
                    help="pass the functions' DynamoDB calls through the endpoint, each a span "
                         "of its trace (about 0.5 ms more per call)")

    dlq = commands.add_parser("dlq", help="list the messages in the failure queues")
    dlq.add_argument("--state", type=Path, default=DEFAULT_STATE)
    dlq.add_argument("--json", action="store_true", help="one JSON object a line")

    trace = commands.add_parser(
        "trace", help="a request's trace through the services, as a tree of spans with their "
                      "timings: found by a trace ID, a request or message ID, or a value its "
                      "events carry (an order ID); or a deployed item's journey (--stack)")
    trace.add_argument("key", help="a trace ID, a request ID, or a value such as an order ID")
    trace.add_argument("--state", type=Path, default=DEFAULT_STATE,
                       help="the sandbox's state folder, read-only (default: %(default)s)")
    deployed_arguments(trace)
    trace.add_argument("--logs", action="store_true", help="each invocation's log lines too")
    output = trace.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="the traces (or journey) as JSON")
    output.add_argument("--otlp-json", action="store_true",
                        help="the traces' spans as OTLP JSON (an ExportTraceServiceRequest)")

    orders = commands.add_parser("orders", help="the items (orders), newest first")
    orders.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="the running sandbox's port (default: %(default)s)")
    deployed_arguments(orders)
    orders.add_argument("--limit", type=int, default=20,
                        help="show this many, newest first (default: %(default)s)")
    fire_command = commands.add_parser(
        "fire", help="fire a schedule now in the running sandbox: a scheduled rule or an "
                     "EventBridge Scheduler schedule, by name")
    fire_command.add_argument("name", help="the rule's or the schedule's name")
    fire_command.add_argument("--port", type=int, default=DEFAULT_PORT,
                              help="the running sandbox's port (default: %(default)s)")
    invoke_command = commands.add_parser(
        "invoke", help="invoke a function of the running sandbox once, synchronously, and print "
                       "its answer and its log (what `sam local invoke` does)")
    invoke_command.add_argument("name", help="the function's name or ARN, or a unique part of "
                                             "its name (its construct id, e.g. OrderService)")
    event = invoke_command.add_mutually_exclusive_group()
    event.add_argument("--payload", default="{}", help="the event, as JSON (default: {})")
    event.add_argument("--event", type=Path, help="a file holding the event as JSON")
    invoke_command.add_argument("--port", type=int, default=DEFAULT_PORT,
                                help="the running sandbox's port (default: %(default)s)")
    return cli


def deployed_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--stack", help="read this deployed CloudFormation stack instead, "
                                         "with your AWS credentials: its table from its outputs")
    command.add_argument("--table", help="the deployed table, when the stack's outputs do not "
                                         "name it (implies a deployed stack)")
    command.add_argument("--region", help="the deployed stack's region (default: as the AWS "
                                          "CLI would choose)")
    command.add_argument("--profile", help="the AWS profile to use (default: as the AWS CLI "
                                           "would choose)")


def up(args: argparse.Namespace) -> int:
    settings = Settings(
        retry_scale=args.retry_scale,
        invoke_fault_share=args.fail_invocations,
        delivery_fault_share=args.fail_deliveries,
        integration_timeout_s=args.integration_timeout,
        allowed_hosts=tuple(args.allow_host),
        python=args.python,
        trace_dynamodb=args.trace_dynamodb,
    )
    kept = retention.Retention(args.retention, args.history_cap)
    assembly = args.assembly or default_assembly()
    project = Project.at(assembly.parent)
    if project is not None and (args.assembly is None or args.watch):
        synth_if_needed(project, assembly, args.watch)
    sandbox = Sandbox(assembly, args.state, args.port, settings, reset=args.reset,
                      retention=kept, otlp_endpoint=args.otlp_endpoint)
    stopped = threading.Event()
    # SIGTERM stops as Ctrl-C does, so `kill <pid>` leaves nothing behind either.
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    sandbox.start()  # a sandbox that cannot start has stopped what it started: one line says why
    # What the start loaded (modules, the assembly, the routes) lives as long as the process:
    # out of the collector's sight, or each full collection walks it all (37 ms under load,
    # the GIL held throughout: every hop waits).
    gc.freeze()
    watcher = Watcher(project, lambda: sandbox.lambda_.code_folders(), sandbox.retire,
                      lambda: apply_app(sandbox, project, assembly))
    try:
        if args.watch:
            watcher.start()
            print(f"sandbox: watching the functions' code"
                  f"{f' and {project.folder}' if project else ''}", flush=True)
        print(f"sandbox: ready on {sandbox.url} (Ctrl-C to stop)", flush=True)
        # A signal the kernel hands to another thread only marks the handler pending: the main
        # thread runs it once it wakes, so it must wake (an untimed wait hung now and then).
        while not stopped.wait(SIGNAL_POLL_S):
            pass
    finally:
        print("sandbox: stopping", flush=True)
        watcher.stop()
        sandbox.stop()
    return 0


def default_assembly() -> Path:
    """`cdk.out` in a CDK project's folder, else this repository's app."""
    here = Path("cdk.out")
    return here if Path("cdk.json").is_file() or here.is_dir() else DEFAULT_ASSEMBLY


def synth_if_needed(project: Project, assembly: Path, watching: bool) -> None:
    """Synthesize when the assembly is missing or stale, or, to watch, when its assets are
    copies rather than the source folders."""
    if project.stale(assembly) or (watching and staged(assembly)):
        project.synth(assembly, staging=not watching,
                      say=lambda line: print(line, flush=True))


def apply_app(sandbox: Sandbox, project: Project | None, assembly: Path) -> None:
    """A saved change to the app: synthesize and run the new assembly in place; a synth or an
    assembly that fails leaves the running version as it is."""
    if project is None:
        return
    try:
        project.synth(assembly, staging=False, say=lambda line: print(line, flush=True))
        if sandbox.reload():
            print(f"sandbox: ready on {sandbox.url} with the new assembly", flush=True)
    except SynthFailed as error:
        print(f"sandbox: {error}\nsandbox: the running version goes on", flush=True)
    except Exception as error:  # a reload that fails halfway must not end the watching
        print(f"sandbox: could not apply the new assembly: {error}", flush=True)


def dlq(args: argparse.Namespace) -> int:
    path = args.state / "sandbox.db"
    if not path.exists():
        print(f"no sandbox state at {args.state}", file=sys.stderr)
        return 1
    for message in State(path, read_only=True).messages():
        try:
            body = json.loads(message.body)
        except ValueError:
            body = None
        why = failure_reason(message.strings(), body)
        if args.json:
            print(json.dumps({"id": message.id, "queue": message.queue, "reason": why,
                              "sent": message.sent, "attributes": message.strings(),
                              "body": message.body}))
        else:
            sent = datetime.fromtimestamp(message.sent, UTC).isoformat(timespec="seconds")
            print(f"{sent}  {message.queue.split(':')[-1]}\n    {why}\n    {message.body}")
    return 0


def deployed(args: argparse.Namespace) -> bool:
    return bool(args.stack or args.table)


def trace(args: argparse.Namespace) -> int:
    try:
        if deployed(args):
            session = tracing.aws_session(args.profile, args.region)
            journey = tracing.deployed_journey(session, args.stack, args.table, args.key)
            print(json.dumps(journey, indent=2) if args.json else
                  text_timeline(journey, args.logs))
            return 0
        state = tracing.open_state(args.state)
        found = tracing.state_traces(state, args.key)
    except tracing.TraceError as error:
        print(f"trace: {error}", file=sys.stderr)
        return 1
    if args.otlp_json:
        from sandbox.traces.otlp import as_json  # OpenTelemetry's packages: only when asked

        print(json.dumps(as_json(s for t in found for s in t.spans), indent=2))
    elif args.json:
        print(json.dumps([t.as_dict() for t in found], indent=2))
    else:
        logs = tracing.invocation_logs(state) if args.logs else None
        print("\n\n".join(tracing.text_trace(t, logs) for t in found))
    return 0


def orders(args: argparse.Namespace) -> int:
    try:
        if deployed(args):
            session = tracing.aws_session(args.profile, args.region)
            items, total = tracing.deployed_items(session, args.stack, args.table)
        else:
            items, total = tracing.sandbox_items(f"http://127.0.0.1:{args.port}")
    except tracing.TraceError as error:
        print(f"orders: {error}", file=sys.stderr)
        return 1
    print(text_list(items[:args.limit]))
    if total > args.limit:
        print(f"... and {total - args.limit} older (--limit)")
    return 0


def fire(args: argparse.Namespace) -> int:
    url = f"http://127.0.0.1:{args.port}{SCHEDULES_ROUTE}/{args.name}/fire"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, b"", method="POST"),
                                    timeout=30) as answer:
            fired = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        print(f"fire: {json.loads(error.read()).get('message')}", file=sys.stderr)
        return 1
    except urllib.error.URLError as error:
        print(f"fire: no sandbox answers on port {args.port} ({error.reason})", file=sys.stderr)
        return 1
    print(f"fired {fired['kind']} {fired['fired']} ({fired['expression']})")
    return 0


def invoke(args: argparse.Namespace) -> int:
    """Through Lambda's own API (`aws lambda invoke --log-type Tail`): the log to stderr, the
    answer to stdout, exit 1 when the function failed."""
    payload = args.event.read_bytes() if args.event else args.payload.encode()
    try:
        answer = invoking.invoke(f"http://127.0.0.1:{args.port}", args.name, payload)
    except invoking.InvokeError as error:
        print(f"invoke: {error}", file=sys.stderr)
        return 1
    sys.stderr.write(answer.log)
    print(answer.result)
    return 1 if answer.failed else 0


def main(argv: list[str] | None = None, prog: str = "python -m sandbox") -> int:
    args = parser(prog).parse_args(argv)
    try:
        return {"up": up, "dlq": dlq, "trace": trace, "orders": orders,
                "fire": fire, "invoke": invoke}[args.command](args)
    except (AssemblyError, DynamoDBLocalError, StateError, StateLocked, OSError,
            InterpreterError, SynthFailed) as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 2


def entry() -> None:
    """The `cdk-sandbox` command (the package's console script)."""
    sys.exit(main(prog="cdk-sandbox"))


if __name__ == "__main__":
    sys.exit(main())
