"""The breadth stack (tests/breadth) running in one sandbox for the whole session, and what its
tests read back: the lines an echo function printed, the messages in a queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_process import FAST_RETRIES, SandboxProcess, failure_messages, wait_for


@pytest.fixture(scope="session")
def breadth(breadth_assembly: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(breadth_assembly, tmp_path_factory.mktemp("breadth-state"),
                        extra_args=FAST_RETRIES) as sandbox:
        yield sandbox


def received(sandbox: SandboxProcess, label: str) -> list[Any]:
    """What the echo function shown as `label` has received so far, oldest first."""
    prefix = f"[{label}] RECEIVED "
    return [json.loads(line.removeprefix(prefix)) for line in list(sandbox.lines)
            if line.startswith(prefix)]


def wait_received(sandbox: SandboxProcess, label: str, predicate: Any = bool,
                  timeout_s: float = 60) -> Any:
    """The first thing `label` received that satisfies `predicate`, once it has."""
    return wait_for(lambda: next((r for r in received(sandbox, label) if predicate(r)), None),
                    timeout_s, f"{label} to receive what the test expects")


def queue_messages(sandbox: SandboxProcess, queue_name_part: str) -> list[dict[str, Any]]:
    """The messages held in the queues whose name contains `queue_name_part`."""
    return [m for m in failure_messages(sandbox.state)
            if queue_name_part in m["queue"].split(":")[-1]]
