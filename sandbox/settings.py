"""Knobs of the sandbox that AWS does not have: time scaling for retries, and fault injection."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    # AWS waits minutes between retries (Lambda: 1 then 2 minutes); tests and demos need not.
    retry_scale: float = 1.0
    # Share (0..1) of Lambda invocations that fail before the handler runs, to prove retries
    # and failure queues without touching the handlers' code.
    invoke_fault_share: float = 0.0
    # Share (0..1) of EventBridge deliveries that fail as a throttled target would.
    delivery_fault_share: float = 0.0
    # Host names besides this machine's own that requests may name (`--allow-host`).
    allowed_hosts: tuple[str, ...] = ()
    # API Gateway's integration timeout for a REST API method that sets no TimeoutInMillis.
    integration_timeout_s: float = 29.0
    # The interpreter of every function's workers (`--python`); None: the runtime's version
    # when this machine has it (sandbox.lambda_.interpreters).
    python: str | None = None
    # The functions' DynamoDB calls through the endpoint, each a span (`--trace-dynamodb`): off
    # by default, for the 0.5 ms each call costs (sandbox.dynamodb.wire).
    trace_dynamodb: bool = False
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def inject(self, share: float) -> bool:
        return share > 0 and self.rng.random() < share
