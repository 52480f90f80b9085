"""`python -m sandbox up | dlq`: the command line of the local sandbox."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from sandbox.assembly import AssemblyError
from sandbox.dynamodb_local import DynamoDBLocalError
from sandbox.sandbox import Sandbox
from sandbox.settings import Settings
from sandbox.state import State

DEFAULT_PORT = 4000
DEFAULT_ASSEMBLY = Path("cdk") / "cdk.out"
DEFAULT_STATE = Path(".sandbox")


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    commands = cli.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run a CDK cloud assembly locally until Ctrl-C")
    up.add_argument("--assembly", type=Path, default=DEFAULT_ASSEMBLY,
                    help="the cloud assembly folder (default: %(default)s)")
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
    up.add_argument("--integration-timeout", type=float, default=29.0, metavar="SECONDS",
                    help="API Gateway's integration timeout (default: %(default)s)")

    dlq = commands.add_parser("dlq", help="list the messages in the failure queues")
    dlq.add_argument("--state", type=Path, default=DEFAULT_STATE)
    dlq.add_argument("--json", action="store_true", help="one JSON object a line")
    return cli


def up(args: argparse.Namespace) -> int:
    settings = Settings(
        retry_scale=args.retry_scale,
        invoke_fault_share=args.fail_invocations,
        delivery_fault_share=args.fail_deliveries,
        integration_timeout_s=args.integration_timeout,
    )
    sandbox = Sandbox(args.assembly, args.state, args.port, settings, reset=args.reset)
    stopped = threading.Event()
    # SIGTERM stops as Ctrl-C does, so `kill <pid>` leaves nothing behind either.
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    try:
        sandbox.start()
        print(f"sandbox: ready on {sandbox.url} (Ctrl-C to stop)", flush=True)
        stopped.wait()
    finally:
        print("sandbox: stopping", flush=True)
        sandbox.stop()
    return 0


def reason(attributes: dict[str, str], body: dict) -> str:
    """Why a message is in a failure queue: EventBridge puts it in attributes, Lambda in the
    invocation record."""
    if "ERROR_CODE" in attributes:
        return f"{attributes['ERROR_CODE']}: {attributes.get('ERROR_MESSAGE', '')}"
    response = body.get("responsePayload") or {}
    condition = body.get("requestContext", {}).get("condition", "")
    return f"{condition}: {response.get('errorType', '')}: {response.get('errorMessage', '')}"


def dlq(args: argparse.Namespace) -> int:
    path = args.state / "sandbox.db"
    if not path.exists():
        print(f"no sandbox state at {args.state}", file=sys.stderr)
        return 1
    for message in State(path).messages():
        try:
            body = json.loads(message.body)
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        why = reason(message.attributes, body)
        if args.json:
            print(json.dumps({"id": message.id, "queue": message.queue, "reason": why,
                              "sent": message.sent, "attributes": message.attributes,
                              "body": message.body}))
        else:
            sent = datetime.fromtimestamp(message.sent, UTC).isoformat(timespec="seconds")
            print(f"{sent}  {message.queue.split(':')[-1]}\n    {why}\n    {message.body}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return {"up": up, "dlq": dlq}[args.command](args)
    except (AssemblyError, DynamoDBLocalError, OSError) as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
