"""API keys and usage plans from the template: who gets through an `ApiKeyRequired` method,
the quota per period, and the deploy-time errors that stop the start."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandbox.apigateway.keys import UsagePlans, generated_value
from sandbox.assembly import AssemblyError, Stack, read_assembly

NOW = datetime(2026, 11, 24, 23, 59, tzinfo=UTC)


def stack_with(directory: Path, plan: dict, **extra: dict) -> Stack:
    resources = {
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "A"}},
        "Key": {"Type": "AWS::ApiGateway::ApiKey", "Properties": {"Value": "k-123",
                                                                   "Enabled": True}},
        "Generated": {"Type": "AWS::ApiGateway::ApiKey", "Properties": {"Enabled": True}},
        "Off": {"Type": "AWS::ApiGateway::ApiKey", "Properties": {"Value": "k-off"}},
        "Plan": {"Type": "AWS::ApiGateway::UsagePlan", "Properties": plan},
        **{f"{name}InPlan": {"Type": "AWS::ApiGateway::UsagePlanKey", "Properties": {
            "KeyId": {"Ref": name}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "Plan"}}}
           for name in ("Key", "Generated", "Off")},
        **extra,
    }
    manifest = {"artifacts": {"S": {"type": "aws:cloudformation:stack",
                                    "properties": {"templateFile": "S.template.json"}}}}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    (directory / "S.template.json").write_text(json.dumps({"Resources": resources}))
    (stack,) = read_assembly(directory, "http://127.0.0.1:4000")
    return stack


def plans_of(directory: Path, plan: dict, **extra: dict) -> tuple[UsagePlans, str]:
    stack = stack_with(directory, plan, **extra)
    api_id = stack.ref("Api")
    return UsagePlans.from_stacks([stack], {(api_id, "prod")}), api_id


def plan(limit: int | None = None, period: str = "DAY") -> dict:
    return {"ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": "prod"}],
            **({"Quota": {"Limit": limit, "Period": period}} if limit else {})}


def test_only_an_enabled_key_of_a_plan_for_the_stage_gets_through(tmp_path: Path) -> None:
    plans, api_id = plans_of(tmp_path, plan())
    assert plans.admit(api_id, "prod", "k-123", NOW) is None
    forbidden = (403, [("Content-Type", "application/json"),
                       ("x-amzn-ErrorType", "ForbiddenException")], b'{"message":"Forbidden"}')
    assert plans.admit(api_id, "prod", None, NOW) == forbidden
    assert plans.admit(api_id, "prod", "unknown", NOW) == forbidden
    assert plans.admit(api_id, "prod", "k-off", NOW) == forbidden  # Enabled defaults to false
    assert plans.admit(api_id, "beta", "k-123", NOW) == forbidden  # the plan has no beta stage


def test_a_key_without_value_gets_one_that_stays_across_starts(tmp_path: Path) -> None:
    plans, api_id = plans_of(tmp_path, plan())
    (generated,) = [key for key in plans.keys if key.generated]
    assert len(generated.value) == 40 and generated.value.isalnum()
    assert generated.value == generated_value(stack_with(tmp_path, plan()), "Generated")
    assert plans.admit(api_id, "prod", generated.value, NOW) is None


def test_the_quota_answers_429_until_the_next_period(tmp_path: Path) -> None:
    plans, api_id = plans_of(tmp_path, plan(limit=2))
    answers = [plans.admit(api_id, "prod", "k-123", NOW) for _ in range(3)]
    assert answers[:2] == [None, None]
    assert answers[2] is not None and answers[2][0::2] == (429, b'{"message":"Limit Exceeded"}')
    assert plans.admit(api_id, "prod", "other-key-has-its-own", NOW)[0] == 403
    tomorrow = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    assert plans.admit(api_id, "prod", "k-123", tomorrow) is None


@pytest.mark.parametrize(("broken", "message"), [
    (plan() | {"ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": "nope"}]},
     r"Resources\.Plan\.Properties\.ApiStages\[0\]: stage 'nope' of REST API"),
    (plan(limit=5, period="HOUR"), r"Resources\.Plan\.Properties\.Quota\.Period: 'HOUR'"),
])
def test_a_plan_cloudformation_refuses_stops_the_start(tmp_path: Path, broken: dict,
                                                      message: str) -> None:
    with pytest.raises(AssemblyError, match=message):
        plans_of(tmp_path, broken)


def test_a_usage_plan_key_naming_no_key_stops_the_start(tmp_path: Path) -> None:
    stray = {"Type": "AWS::ApiGateway::UsagePlanKey", "Properties": {
        "KeyId": "not-a-key", "KeyType": "API_KEY", "UsagePlanId": {"Ref": "Plan"}}}
    with pytest.raises(AssemblyError, match=r"S\.template\.json: Resources\.Stray\.Properties"
                                            r"\.KeyId: 'not-a-key' is not"):
        plans_of(tmp_path, plan(), Stray=stray)
