"""API keys and usage plans: a method with `ApiKeyRequired` serves only callers with a key.

Facts (REST API developer guide, "Usage plans and API keys"; CloudFormation reference):
- A key counts for an API stage only through a usage plan naming that stage (`ApiStages`) and
  the key (`AWS::ApiGateway::UsagePlanKey`). The key comes in the `x-api-key` header (the API's
  `ApiKeySourceType` HEADER, the default) or from the Lambda authorizer's `usageIdentifierKey`
  (AUTHORIZER). No key, an unknown or disabled one (`Enabled` defaults to false), or one not in
  a plan for this stage -> 403 `{"message":"Forbidden"}`.
- A plan's `Quota` (`Limit` requests per `Period` DAY, WEEK or MONTH, in UTC) exceeded ->
  429 `{"message":"Limit Exceeded"}`.
- A key without `Value` gets one generated (40 letters and digits). Locally it is derived from
  the stack and logical id, so it stays the same across restarts; the start summary prints it.

Not emulated (said here and in the README): throttling (`Throttle` rate and burst, per plan and
per method), the quota's `Offset`; usage counts live in memory and restart at zero.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.apigateway.gateway_responses import FORBIDDEN, LIMIT_EXCEEDED
from sandbox.assembly import AssemblyError, Stack
from sandbox.core.wire import Response

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    value: str
    enabled: bool
    generated: bool


@dataclass(frozen=True)
class UsagePlan:
    plan_id: str
    name: str
    stages: frozenset[tuple[str, str]]  # (api id, stage name)
    quota_limit: int | None
    quota_period: str  # "DAY", "WEEK" or "MONTH"


def generated_value(stack: Stack, logical_id: str) -> str:
    digest = hashlib.sha256(f"{stack.name}/{logical_id}/api-key".encode()).digest()
    digest += hashlib.sha256(digest).digest()
    return "".join(_ALPHABET[byte % len(_ALPHABET)] for byte in digest[:40])


def _period(period: str, now: datetime) -> tuple[int, ...]:
    if period == "DAY":
        return now.year, now.month, now.day
    if period == "WEEK":
        return now.isocalendar()[:2]
    return now.year, now.month


class UsagePlans:
    """The keys and plans of the assembly, and each key's use in its quota period."""

    def __init__(self, keys: list[ApiKey], plans: list[UsagePlan],
                 members: dict[str, set[str]]) -> None:
        self.keys = keys
        self.plans = plans
        self._by_value = {key.value: key for key in keys}
        self._members = members  # plan id -> key ids
        self._lock = threading.Lock()
        self._used: dict[tuple[str, str], tuple[tuple[int, ...], int]] = {}

    @classmethod
    def from_stacks(cls, stacks: Iterable[Stack], stages: set[tuple[str, str]]) -> UsagePlans:
        """`stages`: the (api id, stage) pairs deployed, which a plan's ApiStages must name."""
        keys: list[ApiKey] = []
        plans: list[UsagePlan] = []
        members: dict[str, set[str]] = {}
        pending: list[tuple[Stack, Any]] = []
        for stack in stacks:
            keys += [_api_key(stack, r) for r in stack.of_type("AWS::ApiGateway::ApiKey")]
            plans += [_plan(stack, r, stages)
                      for r in stack.of_type("AWS::ApiGateway::UsagePlan")]
            pending += [(stack, r) for r in stack.of_type("AWS::ApiGateway::UsagePlanKey")]
        key_ids = {key.key_id for key in keys}
        plan_ids = {plan.plan_id for plan in plans}
        for stack, resource in pending:
            where = f"{stack.template_file}: Resources.{resource.logical_id}.Properties"
            props = stack.properties(resource.logical_id)
            if props.get("KeyId") not in key_ids:
                raise AssemblyError(f"{where}.KeyId: {props.get('KeyId')!r} is not an "
                                    "AWS::ApiGateway::ApiKey of this app")
            if props.get("UsagePlanId") not in plan_ids:
                raise AssemblyError(f"{where}.UsagePlanId: {props.get('UsagePlanId')!r} is not "
                                    "an AWS::ApiGateway::UsagePlan of this app")
            members.setdefault(props["UsagePlanId"], set()).add(props["KeyId"])
        return cls(keys, plans, members)

    def key_id(self, value: str | None) -> str | None:
        key = self._by_value.get(value or "")
        return key.key_id if key else None

    def admit(self, api_id: str, stage: str, value: str | None, now: datetime) -> Response | None:
        """None: the request may go on (and counts against its plan's quota)."""
        key = self._by_value.get(value or "")
        if key is None or not key.enabled:
            return FORBIDDEN
        plans = [plan for plan in self.plans if (api_id, stage) in plan.stages
                 and key.key_id in self._members.get(plan.plan_id, set())]
        if not plans:
            return FORBIDDEN
        plan = plans[0]
        if plan.quota_limit is None:
            return None
        window = _period(plan.quota_period, now)
        with self._lock:
            seen_window, used = self._used.get((plan.plan_id, key.key_id), (window, 0))
            used = used if seen_window == window else 0
            if used >= plan.quota_limit:
                return LIMIT_EXCEEDED
            self._used[(plan.plan_id, key.key_id)] = (window, used + 1)
        return None


def _api_key(stack: Stack, resource: Any) -> ApiKey:
    props = stack.properties(resource.logical_id)
    value = props.get("Value")
    return ApiKey(stack.ref(resource.logical_id), str(props.get("Name", resource.logical_id)),
                  str(value) if value else generated_value(stack, resource.logical_id),
                  props.get("Enabled", False) in (True, "true"), not value)


def _plan(stack: Stack, resource: Any, stages: set[tuple[str, str]]) -> UsagePlan:
    where = f"{stack.template_file}: Resources.{resource.logical_id}.Properties"
    props = stack.properties(resource.logical_id)
    named = set()
    for i, api_stage in enumerate(props.get("ApiStages") or []):
        pair = (str(api_stage.get("ApiId")), str(api_stage.get("Stage")))
        if pair not in stages:
            raise AssemblyError(f"{where}.ApiStages[{i}]: stage {pair[1]!r} of REST API "
                                f"{pair[0]!r} is not deployed by this app")
        named.add(pair)
    quota = props.get("Quota") or {}
    period = str(quota.get("Period", "DAY"))
    if quota and period not in ("DAY", "WEEK", "MONTH"):
        raise AssemblyError(f"{where}.Quota.Period: {period!r} is not DAY, WEEK or MONTH")
    limit = quota.get("Limit")
    return UsagePlan(stack.ref(resource.logical_id),
                     str(props.get("UsagePlanName", resource.logical_id)), frozenset(named),
                     int(limit) if limit is not None else None, period)
