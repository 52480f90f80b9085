"""The `cdk_sandbox` pytest fixture, registered through the `pytest11` entry point when the
package is installed: a test of a CDK app runs against the app itself, as moto's `mock_aws` lets
a test run against a fake AWS, but with the app's own functions, rules and queues.

- The assembly: `--cdk-assembly PATH`, else the ini option `cdk_assembly`, else `cdk.out` in
  pytest's rootdir; with a `cdk.json` beside it and no path given, synthesized first when
  missing or stale (as `cdk-sandbox up` does).
- One sandbox per session, in this process, on a free port, with its state in a temporary
  folder: fresh every session. Its terminal output (function logs, the start summary) goes to
  `sandbox.log` in that folder.
- `settle(timeout)` is what a test waits on instead of sleeping: no job (rule delivery,
  asynchronous invocation, destination, schedule) left in the state, no message in a queue that
  a function polls or held by a consumer, no invocation running.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sandbox.dynamodb.local import client, free_port
from sandbox.sandbox import Sandbox
from sandbox.settings import Settings
from sandbox.watch import Project

SETTLE_POLL_S = 0.05


def pytest_addoption(parser: pytest.Parser) -> None:
    help_text = "the CDK cloud assembly the cdk_sandbox fixture runs (default: cdk.out in rootdir)"
    parser.addoption("--cdk-assembly", metavar="PATH", help=help_text)
    parser.addini("cdk_assembly", help_text)


class CdkSandbox:
    """What a test gets: where the sandbox answers, clients bound to it, and `settle`."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.endpoint_url = sandbox.url

    def url(self, path: str) -> str:
        """The full URL of a path such as `/prod/order` (stage first, as API Gateway has it)."""
        return f"{self.endpoint_url}/{path.lstrip('/')}"

    def client(self, service_name: str) -> Any:
        """A boto3 client bound to the sandbox, with the stack's region and dummy credentials."""
        return client(self.endpoint_url, service_name)

    def pending(self) -> list[str]:
        """What is still on its way: jobs, polled or held messages, running invocations."""
        sandbox = self.sandbox
        with sandbox.state.reading() as db:
            jobs = [f"job {kind} -> {target}"
                    for kind, target in db.execute("SELECT kind, target FROM jobs")]
        polled = {mapping.queue_arn for mapping in sandbox.event_sources.sqs}
        now = time.time()
        messages = [f"message {m.id} in {m.queue.split(':')[-1]}"
                    for m in sandbox.state.messages()
                    if m.queue in polled or (m.receipt is not None and m.visible > now)]
        running = [f"invocation of {label}" for label in sandbox.lambda_.running()]
        return jobs + messages + running

    def settle(self, timeout: float = 30.0) -> None:
        """Return once nothing is in flight; fail naming what still is after `timeout` s."""
        deadline = time.monotonic() + timeout
        while pending := self.pending():
            if time.monotonic() > deadline:
                raise AssertionError(f"still in flight after {timeout} s: {'; '.join(pending)}")
            time.sleep(SETTLE_POLL_S)


def assembly_of(config: pytest.Config) -> tuple[Path, bool]:
    """The assembly's path, and whether it was named."""
    named = config.getoption("--cdk-assembly") or config.getini("cdk_assembly")
    if named:
        return Path(config.rootpath, named), True
    return config.rootpath / "cdk.out", False


@contextmanager
def running(assembly: Path, folder: Path) -> Iterator[CdkSandbox]:
    """A sandbox of `assembly` in this process, its state and log in `folder`: the fixture's
    body, for a conftest that makes its assembly itself."""
    with open(folder / "sandbox.log", "w") as log:
        sandbox = Sandbox(assembly, folder / "state", free_port(), Settings(), out=log)
        sandbox.start()
        try:
            yield CdkSandbox(sandbox)
        finally:
            sandbox.stop()


@pytest.fixture(scope="session")
def cdk_sandbox(pytestconfig: pytest.Config,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[CdkSandbox]:
    assembly, named = assembly_of(pytestconfig)
    project = Project.at(assembly.parent)
    if project is not None and not named and project.stale(assembly):
        project.synth(assembly, staging=True, say=print)
    with running(assembly, tmp_path_factory.mktemp("cdk-sandbox")) as sandbox:
        yield sandbox
