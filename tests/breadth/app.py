"""A stack of the project's own that uses every building block the sandbox runs beyond the
choreography's: rule targets of every kind with their inputs, schedules, Lambda's asynchronous
routes, and API Gateway's integrations and keys. Each part is a module beside this one with an
`add(stack)` function; the tests synthesize the whole app once and run it in one sandbox.

A function's code is a folder under `functions/`, stdlib only, as Lambda would run it.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk

FUNCTIONS = Path(__file__).resolve().parent / "functions"
STACK_NAME = "Breadth"
# The parts, in the order they are added; each is a module of this package.
PARTS: list[str] = ["targets", "api", "schedules", "destinations", "queues", "queue_load",
                    "streams", "topics", "functions_as_declared", "traces"]


def code(name: str) -> cdk.aws_lambda.Code:
    return cdk.aws_lambda.Code.from_asset(str(FUNCTIONS / name))


def function(scope: cdk.Stack, construct_id: str, folder: str,
             **kwargs: object) -> cdk.aws_lambda.Function:
    """A Python function of `functions/<folder>/index.py`, handler `handler`."""
    options = {"runtime": cdk.aws_lambda.Runtime.PYTHON_3_12, "handler": "index.handler",
               "timeout": cdk.Duration.seconds(10), **kwargs}
    return cdk.aws_lambda.Function(scope, construct_id, code=code(folder), **options)


def build(app: cdk.App) -> cdk.Stack:
    import importlib

    stack = cdk.Stack(app, STACK_NAME)
    for part in PARTS:
        importlib.import_module(f"breadth.{part}").add(stack)
    return stack
