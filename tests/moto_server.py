"""moto's server, started in this process on 127.0.0.1 and corrected where its CloudFormation
differs from AWS's in a way the deploy-workflow test would trip over.

In-process (moto's ThreadedMotoServer rather than `python -m moto.server`) so that the
correction, a patch of moto's own model, reaches the server. The corrections live here, in the
tests, never in the app: the app and its commands stay what a user runs against AWS.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
from moto.events.models import EventBus
from moto.server import ThreadedMotoServer

ACCOUNT = "123456789012"  # the account moto's server answers as
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
               "aws_session_token": "testing"}


@dataclass
class MotoServer:
    """A running server: its endpoint and what its CloudFormation skipped without failing."""

    endpoint_url: str
    # Resource types moto's CloudFormation has no model for: it leaves them out of the stack
    # and still reports the stack complete, so a reader of the test log must see which.
    skipped_resource_types: set[str] = field(default_factory=set)

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION,
                            **CREDENTIALS)

    def reset(self) -> None:
        """Forgets every resource in every account."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


class _SkippedResourceTypes(logging.Handler):
    """Notes the type in moto's "No Moto CloudFormation support for <type>" warnings."""

    def __init__(self, types: set[str]) -> None:
        super().__init__(logging.WARNING)
        self.types = types

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "No Moto CloudFormation support for %s" and record.args:
            self.types.add(str(record.args[0]))


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    """Starts the server on 127.0.0.1 and a free port, with no resources in it.

    The endpoint is `http://localhost:<port>`, not the IP: with an IP host, moto takes the
    bucket name from the wrong part of the URL the CLI gives CloudFormation for a template.
    """
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_logger = logging.getLogger("moto")
    werkzeug_logger = logging.getLogger("werkzeug")
    werkzeug_level = werkzeug_logger.level
    # One line per request would bury the figures the test prints.
    werkzeug_logger.setLevel(logging.WARNING)
    emulator = MotoServer(endpoint_url="")
    handler = _SkippedResourceTypes(emulator.skipped_resource_types)
    moto_logger.addHandler(handler)
    # AWS resolves `Ref` to an AWS::Events::EventBus to the bus's name; moto, whose EventBus has
    # no physical_resource_id, resolves it to the Python object, so the rule that names the bus
    # fails inside moto (a 500: 'EventBus' object has no attribute 'split') while the stack is
    # still reported CREATE_COMPLETE without the rule and its targets.
    bus_name = mock.patch.object(EventBus, "physical_resource_id",
                                 property(lambda bus: bus.name), create=True)
    try:
        with bus_name:
            server.start()
            try:
                _host, port = server.get_host_and_port()
                emulator.endpoint_url = f"http://localhost:{port}"
                # moto's state is global to the process: another test may have left some.
                emulator.reset()
                yield emulator
            finally:
                server.stop()
    finally:
        moto_logger.removeHandler(handler)
        werkzeug_logger.setLevel(werkzeug_level)
