"""Load: 1,000 orders, 20 at a time, through the order URL of the real app in the sandbox; every
order the API accepted must end with five stamps or in a failure queue."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import report
from order_accounting import send_orders, settle
from sandbox_process import FAST_RETRIES, SandboxProcess

pytestmark = pytest.mark.slow

ORDERS = 1000
AT_A_TIME = 20


def test_a_thousand_orders_twenty_at_a_time_lose_none(synthesized_app: Any,
                                                      tmp_path: Path) -> None:
    with SandboxProcess(synthesized_app.assembly_dir, tmp_path / "state",
                        extra_args=FAST_RETRIES) as sandbox:
        started = time.monotonic()
        accepted, refused = send_orders(sandbox, ORDERS, AT_A_TIME)
        answered = time.monotonic() - started
        account = settle(sandbox, ORDERS, accepted, "load", timeout_s=300)
        report(f"load: {ORDERS} orders answered in {answered:.1f} s, all settled in "
              f"{time.monotonic() - started:.1f} s")
    assert refused == 0, f"{refused} of {ORDERS} orders were not accepted"
    assert account.lost == [], f"orders neither complete nor in a failure queue: {account.lost}"
