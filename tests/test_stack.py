"""The synthesized template holds the contract's resources, wired as the contract says.

One in-process synth (the session fixture) serves every test here; the CLI tests are elsewhere.
"""

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from conftest import ROOT, SynthesizedApp

PUBLISHERS = ("order-service", "fulfilment-service")
CONSUMERS = ("invoice-service", "fulfilment-service", "forecasting-service", "logistic-service")
SERVICES = ("order-service", "invoice-service", "fulfilment-service", "forecasting-service",
            "logistic-service")


@pytest.fixture(scope="module")
def app(synthesized_app: SynthesizedApp) -> SynthesizedApp:
    return synthesized_app


@pytest.fixture(scope="module")
def resources(app: SynthesizedApp) -> dict[str, dict[str, Any]]:
    return app.template["Resources"]


@pytest.fixture(scope="module")
def template(app: SynthesizedApp) -> Template:
    return Template.from_json(app.template)


def of_type(resources: dict[str, dict[str, Any]], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in resources.items() if value["Type"] == cfn_type}


def function_id(app: SynthesizedApp, folder: str) -> str:
    return app.logical_id(app.stack.functions[folder])


def get_att_arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def rule_named(resources: dict[str, dict[str, Any]], name: str) -> tuple[str, dict[str, Any]]:
    [(key, rule)] = [(key, rule) for key, rule in of_type(resources, "AWS::Events::Rule").items()
                     if rule["Properties"]["Name"] == name]
    return key, rule["Properties"]


def role_statements(resources: dict[str, dict[str, Any]], role_id: str) -> list[dict[str, Any]]:
    """Every statement that applies to the role: its inline policies and attached policies."""
    role = resources[role_id]["Properties"]
    statements = [statement for policy in role.get("Policies", [])
                  for statement in policy["PolicyDocument"]["Statement"]]
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else action


def all_statements(node: Any) -> list[dict[str, Any]]:
    """Every IAM statement anywhere in the template (roles, policies, queue policies...)."""
    if isinstance(node, dict):
        found = list(node["Statement"]) if isinstance(node.get("Statement"), list) else []
        return found + [s for value in node.values() for s in all_statements(value)]
    if isinstance(node, list):
        return [s for value in node for s in all_statements(value)]
    return []


# --- Resources of the contract ------------------------------------------------------------

def test_template_holds_the_contracts_resources_and_nothing_the_sandbox_cannot_run(
        template: Template, resources: dict[str, dict[str, Any]]) -> None:
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    template.resource_count_is("AWS::Events::EventBus", 1)
    template.resource_count_is("AWS::Events::Rule", 2)
    template.resource_count_is("AWS::Lambda::Function", 5)
    template.resource_count_is("AWS::ApiGateway::RestApi", 1)
    helpers = ("AWS::CloudFormation::CustomResource", "AWS::Lambda::LayerVersion")
    custom = [key for key, value in resources.items()
              if value["Type"].startswith("Custom::") or value["Type"] in helpers]
    assert custom == []


def test_table_is_keyed_by_id_on_demand_and_deleted_with_the_stack(template: Template) -> None:
    template.has_resource("AWS::DynamoDB::Table", {
        "Properties": {
            "KeySchema": [{"AttributeName": "ID", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "ID", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
        "DeletionPolicy": "Delete",
    })


@pytest.mark.parametrize(("name", "pattern", "targets"), [
    ("order_created", {"detail-type": ["order_created"], "source": ["order_service"]},
     {"invoice-service", "fulfilment-service", "forecasting-service"}),
    ("fulfilment_completed",
     {"detail-type": ["fulfilment_completed"], "source": ["fulfilment_service"]},
     {"logistic-service"}),
])
def test_rule_has_the_exact_pattern_on_the_custom_bus_and_its_targets(
        app: SynthesizedApp, resources: dict[str, dict[str, Any]],
        name: str, pattern: dict[str, list[str]], targets: set[str]) -> None:
    _, rule = rule_named(resources, name)
    assert rule["EventPattern"] == pattern
    assert rule["EventBusName"] == {"Ref": app.logical_id(app.stack.bus)}
    assert [target["Arn"] for target in rule["Targets"]] == [
        get_att_arn(function_id(app, folder)) for folder in CONSUMERS if folder in targets]


def test_every_rule_target_has_a_retry_policy_and_a_dead_letter_queue_of_its_own(
        resources: dict[str, dict[str, Any]]) -> None:
    from choreography.order_choreography_stack import (
        DELIVERY_MAX_EVENT_AGE,
        DELIVERY_RETRY_ATTEMPTS,
    )

    queues = of_type(resources, "AWS::SQS::Queue")
    policies = of_type(resources, "AWS::SQS::QueuePolicy").values()
    dead_letter_queues = []
    for rule_id, rule in of_type(resources, "AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            assert target["RetryPolicy"] == {
                "MaximumRetryAttempts": DELIVERY_RETRY_ATTEMPTS,
                "MaximumEventAgeInSeconds": DELIVERY_MAX_EVENT_AGE.to_seconds()}
            queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
            assert queue_id in queues
            dead_letter_queues.append(queue_id)
            [policy] = [p for p in policies if p["Properties"]["Queues"] == [{"Ref": queue_id}]]
            allowed = [{key: value for key, value in statement.items() if key != "Sid"}
                       for statement in policy["Properties"]["PolicyDocument"]["Statement"]
                       if statement["Effect"] == "Allow"]
            assert allowed == [{
                "Action": "sqs:SendMessage",
                "Condition": {"ArnEquals": {"aws:SourceArn": get_att_arn(rule_id)}},
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Resource": get_att_arn(queue_id),
            }]
    assert len(dead_letter_queues) == 4
    assert len(set(dead_letter_queues)) == 4


def test_every_consumer_sends_failed_invocations_to_a_queue_of_its_own(
        app: SynthesizedApp, resources: dict[str, dict[str, Any]]) -> None:
    configs = {config["Properties"]["FunctionName"]["Ref"]: config["Properties"]
               for config in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()}
    assert set(configs) == {function_id(app, folder) for folder in CONSUMERS}
    destinations = set()
    for config in configs.values():
        assert config["MaximumRetryAttempts"] == 2
        destination = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        assert resources[destination]["Type"] == "AWS::SQS::Queue"
        destinations.add(destination)
    assert len(destinations) == 4
    rule_queues = {target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
                   for rule in of_type(resources, "AWS::Events::Rule").values()
                   for target in rule["Properties"]["Targets"]}
    assert destinations.isdisjoint(rule_queues)


def test_every_queue_is_encrypted_and_ssl_only(resources: dict[str, dict[str, Any]]) -> None:
    from choreography.order_choreography_stack import SQS_QUEUE_ACTIONS

    queues = of_type(resources, "AWS::SQS::Queue")
    assert len(queues) == 8
    for queue_id, queue in queues.items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        [policy] = [p for p in of_type(resources, "AWS::SQS::QueuePolicy").values()
                    if p["Properties"]["Queues"] == [{"Ref": queue_id}]]
        assert {
            "Action": SQS_QUEUE_ACTIONS,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": get_att_arn(queue_id),
        } in policy["Properties"]["PolicyDocument"]["Statement"]
        assert {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                "sqs:PurgeQueue"} <= set(SQS_QUEUE_ACTIONS)


# --- Functions ------------------------------------------------------------------------------

def newest_python_runtime() -> str:
    """The newest Python runtime the pinned aws-cdk-lib knows, e.g. python3.14."""
    minors = [int(match.group(1)) for name in dir(lambda_.Runtime)
              if (match := re.fullmatch(r"PYTHON_3_(\d+)", name))]
    return f"python3.{max(minors)}"


@pytest.mark.parametrize("folder", SERVICES)
def test_function_runs_the_newest_python_on_arm_with_tracing_and_its_own_log_group(
        app: SynthesizedApp, resources: dict[str, dict[str, Any]], folder: str) -> None:
    function = resources[function_id(app, folder)]["Properties"]
    assert function["Runtime"] == newest_python_runtime()
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "app.lambda_handler"
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert 3 <= function["Timeout"] <= 29  # within API Gateway's integration timeout
    assert function["MemorySize"] >= 128
    assert "FunctionName" not in function  # named by CloudFormation: stack copies coexist
    log_group = resources[function["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] > 0
    assert log_group["DeletionPolicy"] == "Delete"


@pytest.mark.parametrize("folder", SERVICES)
def test_function_environment_names_the_table_and_for_publishers_the_bus(
        app: SynthesizedApp, resources: dict[str, dict[str, Any]], folder: str) -> None:
    variables = resources[function_id(app, folder)]["Properties"]["Environment"]["Variables"]
    expected = {"TABLE_NAME": {"Ref": app.logical_id(app.stack.table)}}
    if folder in PUBLISHERS:
        expected["EVENTBUS_NAME"] = {"Ref": app.logical_id(app.stack.bus)}
    assert variables == expected


@pytest.mark.parametrize("folder", SERVICES)
def test_function_code_is_its_own_folder(app: SynthesizedApp, folder: str) -> None:
    """The staged asset is the service's folder, without the bytecode that tests leave there."""
    metadata = app.template["Resources"][function_id(app, folder)]["Metadata"]
    staged = app.assembly_dir / metadata["aws:asset:path"]
    source = ROOT / "lambda-functions" / folder

    def files(folder: Path) -> dict[str, bytes]:
        return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*")
                if path.is_file() and "__pycache__" not in path.parts}

    assert "app.py" in files(staged)
    assert files(staged) == files(source)
    assert not list(staged.rglob("*.pyc"))


# --- REST API -------------------------------------------------------------------------------

def test_get_order_on_stage_prod_is_a_lambda_proxy_to_the_order_service(
        app: SynthesizedApp, template: Template, resources: dict[str, dict[str, Any]]) -> None:
    template.has_resource_properties("AWS::ApiGateway::Stage", {"StageName": "prod"})
    [(resource_id, _)] = of_type(resources, "AWS::ApiGateway::Resource").items()
    template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "order"})
    [method] = of_type(resources, "AWS::ApiGateway::Method").values()
    assert method["Properties"]["HttpMethod"] == "GET"
    assert method["Properties"]["ResourceId"] == {"Ref": resource_id}
    integration = method["Properties"]["Integration"]
    assert integration["Type"] == "AWS_PROXY"
    assert get_att_arn(function_id(app, "order-service")) in integration["Uri"]["Fn::Join"][1]


def test_stage_writes_access_logs_to_a_log_group_of_the_stack(
        resources: dict[str, dict[str, Any]]) -> None:
    [stage] = of_type(resources, "AWS::ApiGateway::Stage").values()
    destination = stage["Properties"]["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1]
    [log_group_ref] = [part for part in destination if isinstance(part, dict) and "Ref" in part
                       and part["Ref"] in resources]
    assert resources[log_group_ref["Ref"]]["Type"] == "AWS::Logs::LogGroup"
    assert "$context.requestId" in stage["Properties"]["AccessLogSetting"]["Format"]


# --- IAM ------------------------------------------------------------------------------------

def test_no_statement_names_a_wildcard_action(app: SynthesizedApp) -> None:
    """Not `*`, not `<service>:*`: not even in the SSL-only denies, which name each action."""
    wildcard = re.compile(r"^(\*|[A-Za-z0-9-]+:\*)$")
    statements = all_statements(app.template["Resources"])
    assert statements
    for statement in statements:
        assert not [a for a in actions(statement) if wildcard.match(a)], statement


@pytest.mark.parametrize("folder", SERVICES)
def test_function_role_holds_only_what_its_service_needs(
        app: SynthesizedApp, resources: dict[str, dict[str, Any]], folder: str) -> None:
    function = resources[function_id(app, folder)]["Properties"]
    role_id = function["Role"]["Fn::GetAtt"][0]
    assert "ManagedPolicyArns" not in resources[role_id]["Properties"]
    granted: dict[str, list[Any]] = {}
    for statement in role_statements(resources, role_id):
        assert statement["Effect"] == "Allow"
        for action in actions(statement):
            granted.setdefault(action, []).append(statement["Resource"])

    table = get_att_arn(app.logical_id(app.stack.table))
    assert granted.pop("dynamodb:UpdateItem") == [table]
    log_group = get_att_arn(function["LoggingConfig"]["LogGroup"]["Ref"])
    assert granted.pop("logs:CreateLogStream") == granted.pop("logs:PutLogEvents") == [log_group]
    assert granted.pop("xray:PutTraceSegments") == granted.pop("xray:PutTelemetryRecords") == ["*"]
    if folder in PUBLISHERS:
        assert granted.pop("events:PutEvents") == [get_att_arn(app.logical_id(app.stack.bus))]
    if folder in CONSUMERS:
        configs = of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        [config] = [c["Properties"] for c in configs
                    if c["Properties"]["FunctionName"] == {"Ref": function_id(app, folder)}]
        own_queue = config["DestinationConfig"]["OnFailure"]["Destination"]
        for action in ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"):
            assert granted.pop(action) == [own_queue]
    assert granted == {}, f"{folder} may do more than it needs"


def test_only_the_two_publishers_may_put_events(
        app: SynthesizedApp, resources: dict[str, dict[str, Any]]) -> None:
    roles_putting_events = set()
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if any(action.startswith("events:") for action in actions(statement)):
                roles_putting_events |= {role["Ref"] for role in policy["Properties"]["Roles"]}
    assert roles_putting_events == {
        resources[function_id(app, folder)]["Properties"]["Role"]["Fn::GetAtt"][0]
        for folder in PUBLISHERS}


# --- Outputs and stack name ------------------------------------------------------------------

def test_outputs_name_the_urls_the_table_the_bus_and_every_queue(
        app: SynthesizedApp, resources: dict[str, dict[str, Any]]) -> None:
    outputs = app.template["Outputs"]
    stage_ref = {"Ref": next(iter(of_type(resources, "AWS::ApiGateway::Stage")))}
    api_url = outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    order_url = outputs["OrderUrl"]["Value"]["Fn::Join"][1]
    assert api_url[0] == order_url[0] == "https://"
    assert api_url[-2:] == [stage_ref, "/"]
    assert order_url[-2:] == [stage_ref, "/order"]
    assert outputs["TableName"]["Value"] == {"Ref": app.logical_id(app.stack.table)}
    assert outputs["EventBusName"]["Value"] == {"Ref": app.logical_id(app.stack.bus)}
    queue_outputs = {output["Value"]["Ref"] for key, output in outputs.items()
                     if key.endswith(("QueueUrl", "DLQUrl"))}
    assert queue_outputs == set(of_type(resources, "AWS::SQS::Queue"))


def test_stack_name_defaults_and_follows_the_context(cdk_app: ModuleType) -> None:
    default = cdk_app.build(cdk.App())
    renamed = cdk_app.build(cdk.App(context={"stack_name": "OrderChoreographyDev"}))
    assert default.stack_name == "OrderChoreography"
    assert renamed.stack_name == renamed.node.id == "OrderChoreographyDev"


# --- cdk-nag ---------------------------------------------------------------------------------

def test_cdk_nag_reports_no_unacknowledged_finding_and_every_acknowledgement_has_a_reason(
        app: SynthesizedApp) -> None:
    report = json.loads((app.assembly_dir / "validation-report.json").read_text())
    [nag] = [plugin for plugin in report["pluginReports"]
             if plugin["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    assert nag["suppressedViolations"], "cdk-nag ran no rule at all"
    for acknowledged in nag["suppressedViolations"]:
        assert len(acknowledged["reason"]) > 20, acknowledged["ruleName"]


def test_synth_fails_on_a_finding_nobody_acknowledged(cdk_app: ModuleType,
                                                      tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk_app.build(app)
    sqs.Queue(stack, "UncheckedQueue")  # no SSL-only policy: AwsSolutions-SQS4
    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed: .*AwsSolutions-SQS4"):
        app.synth()
