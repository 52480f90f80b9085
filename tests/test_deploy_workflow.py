"""The deploy workflow a user runs against AWS, run against moto's server: `cdk bootstrap`,
`make deploy`, `make diff`, a change to the app, `make diff`, `make deploy`, `make destroy`.

After each step boto3 looks at what exists, because the CLI reports a stack complete even when
moto left resources out of it. The commands are the README's; what only the emulator needs is
passed through `ARGS` (below) or lives in tests/moto_server.py, never in the app.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from moto_server import ACCOUNT, REGION, MotoServer, moto_server

pytestmark = pytest.mark.slow

STACK = "OrderChoreography"
# Direct: moto's change sets ignore DependsOn, fill no outputs and fail a second deploy.
# No previous parameters: moto reads the stack's stored BootstrapVersion value as the name of an
# SSM parameter, and the update hangs, then fails.
DEPLOY_ARGS = "--method=direct --no-previous-parameters --require-approval never --no-notices"
# Template: the change-set diff takes about 50 s against moto. --fail: the exit code says
# whether there are differences.
DIFF_ARGS = "--method=template --fail --no-notices"
DESTROY_ARGS = "--force --no-notices"
COMMAND_TIMEOUT_S = 180

# The contract's five services (docs/choreography.md), each with its construct id, which
# CloudFormation puts into the function's physical name (`<stack>-<logical id>-<suffix>`).
SERVICES = {
    "order-service": "OrderService",
    "invoice-service": "InvoiceService",
    "fulfilment-service": "FulfilmentService",
    "forecasting-service": "ForecastingService",
    "logistic-service": "LogisticService",
}
PUBLISHERS = {"order-service", "fulfilment-service"}
RULES = {
    "order_created": ({"detail-type": ["order_created"], "source": ["order_service"]},
                      {"invoice-service", "fulfilment-service", "forecasting-service"}),
    "fulfilment_completed": ({"detail-type": ["fulfilment_completed"],
                              "source": ["fulfilment_service"]},
                             {"logistic-service"}),
}
MEMORY_SIZE = re.compile(r"memory_size=(\d+)")


@dataclass(frozen=True)
class Account:
    """What exists in the emulated account, reduced to what the contract speaks of."""

    tables: dict[str, dict[str, Any]]
    buses: dict[str, dict[str, dict[str, Any]]]  # bus name -> rule name -> pattern and targets
    functions: dict[str, dict[str, Any]]
    queues: set[str]
    apis: dict[str, dict[str, dict[str, str]]]  # API name -> path -> method -> integration

    def summary(self) -> str:
        rules = [rule for bus in self.buses.values() for rule in bus.values()]
        memory = sorted({function["memory"] for function in self.functions.values()})
        return (f"tables {len(self.tables)}, buses {len(self.buses)} (rules {len(rules)}, "
                f"targets {sum(len(rule['targets']) for rule in rules)}), "
                f"functions {len(self.functions)} (MB {memory}), queues {len(self.queues)}, "
                f"REST APIs {len(self.apis)}")

    def by_service(self) -> dict[str, dict[str, Any]]:
        """The contract's services, each found as the one function whose name holds its id."""
        found = {}
        for folder, construct_id in SERVICES.items():
            names = [name for name in self.functions if f"-{construct_id}" in name]
            assert len(names) == 1, f"{folder}: {names} among {sorted(self.functions)}"
            found[folder] = self.functions[names[0]]
        assert len(self.functions) == len(SERVICES), sorted(self.functions)
        return found


def look(aws: MotoServer) -> Account:
    """Asks each service what it holds: nothing here comes from CloudFormation's bookkeeping."""
    dynamodb, events, lambda_ = aws.client("dynamodb"), aws.client("events"), aws.client("lambda")
    sqs, apigateway = aws.client("sqs"), aws.client("apigateway")
    tables = {}
    for name in dynamodb.list_tables()["TableNames"]:
        table = dynamodb.describe_table(TableName=name)["Table"]
        tables[name] = {
            "keys": table["KeySchema"],
            "attributes": table["AttributeDefinitions"],
            "billing": table.get("BillingModeSummary", {}).get("BillingMode"),
        }
    buses: dict[str, dict[str, dict[str, Any]]] = {}
    for bus in events.list_event_buses()["EventBuses"]:
        buses[bus["Name"]] = {
            rule["Name"]: {
                "pattern": json.loads(rule["EventPattern"]),
                "targets": events.list_targets_by_rule(Rule=rule["Name"],
                                                       EventBusName=bus["Name"])["Targets"],
            }
            for rule in events.list_rules(EventBusName=bus["Name"])["Rules"]
        }
    functions = {
        function["FunctionName"]: {
            "arn": function["FunctionArn"],
            "memory": function["MemorySize"],
            "environment": function.get("Environment", {}).get("Variables", {}),
        }
        for function in lambda_.list_functions()["Functions"]
    }
    queues = {url.rsplit("/", 1)[1] for url in sqs.list_queues().get("QueueUrls", [])}
    apis = {}
    for api in apigateway.get_rest_apis()["items"]:
        routes: dict[str, dict[str, str]] = {}
        for resource in apigateway.get_resources(restApiId=api["id"])["items"]:
            routes[resource["path"]] = {}
            for method in resource.get("resourceMethods", {}):
                integration = apigateway.get_integration(
                    restApiId=api["id"], resourceId=resource["id"], httpMethod=method)
                routes[resource["path"]][method] = f"{integration['type']} {integration['uri']}"
        apis[api["name"]] = routes
    return Account(tables, buses, functions, queues, apis)


def assert_the_stack_exists(aws: MotoServer, app: Path) -> Account:
    """Everything the contract lists exists and is wired as the template the CLI deployed says.

    Not checked, because moto's CloudFormation skips them: the API's stage, the functions'
    on-failure destinations (AWS::Lambda::EventInvokeConfig), the queues' policies.
    """
    [stack] = aws.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    assert stack["StackStatus"] in {"CREATE_COMPLETE", "UPDATE_COMPLETE"}, stack["StackStatus"]
    outputs = {output["OutputKey"]: output["OutputValue"]
               for output in stack.get("Outputs", [])}
    template = json.loads((app / "cdk" / "cdk.out" / f"{STACK}.template.json").read_text())
    declared = template["Resources"].values()
    account = look(aws)

    # moto reports a stack complete even when it failed to create resources the outputs name.
    assert {"TableName", "EventBusName"} <= outputs.keys(), f"outputs: {outputs}"
    table, bus = outputs["TableName"], outputs["EventBusName"]
    assert account.tables == {table: {
        "keys": [{"AttributeName": "ID", "KeyType": "HASH"}],
        "attributes": [{"AttributeName": "ID", "AttributeType": "S"}],
        "billing": "PAY_PER_REQUEST",
    }}
    assert account.buses.keys() == {"default", bus}
    assert account.buses["default"] == {}

    functions = account.by_service()
    for folder, function in functions.items():
        expected = {"TABLE_NAME": table}
        if folder in PUBLISHERS:
            expected["EVENTBUS_NAME"] = bus
        assert function["environment"] == expected, folder

    declared_targets = {
        (resource["Properties"]["Name"], target["Id"]): target
        for resource in declared if resource["Type"] == "AWS::Events::Rule"
        for target in resource["Properties"]["Targets"]
    }
    rules = account.buses[bus]
    assert rules.keys() == RULES.keys()
    dead_letter_queues = []
    for name, (pattern, services) in RULES.items():
        assert rules[name]["pattern"] == pattern, name
        targets = rules[name]["targets"]
        assert sorted(target["Arn"] for target in targets) == sorted(
            functions[service]["arn"] for service in services), name
        for target in targets:
            assert target["RetryPolicy"] == declared_targets[name, target["Id"]]["RetryPolicy"]
            dead_letter_queues.append(target["DeadLetterConfig"]["Arn"].rsplit(":", 1)[1])
    # One dead-letter queue per target, each one that exists.
    assert len(set(dead_letter_queues)) == len(dead_letter_queues) == sum(
        len(services) for _pattern, services in RULES.values())
    assert set(dead_letter_queues) <= account.queues
    assert len(account.queues) == sum(resource["Type"] == "AWS::SQS::Queue"
                                      for resource in declared)

    [api] = account.apis.values()
    [integration] = api["/order"].values()
    assert api["/order"].keys() == {"GET"}
    assert integration.startswith("AWS_PROXY ")
    assert f"/functions/{functions['order-service']['arn']}/invocations" in integration
    return account


def assert_nothing_of_the_stack_exists(aws: MotoServer) -> Account:
    """Not checked: the REST API, which moto's CloudFormation never deletes (its RestAPI model
    has no delete hook), so after `destroy` it outlives the functions it points to."""
    account = look(aws)
    assert account.tables == {}
    assert account.buses == {"default": {}}
    assert account.functions == {}
    assert account.queues == set()
    return account


def assert_bootstrapped(aws: MotoServer) -> None:
    [toolkit] = aws.client("cloudformation").describe_stacks(StackName="CDKToolkit")["Stacks"]
    assert toolkit["StackStatus"] == "CREATE_COMPLETE"
    version = aws.client("ssm").get_parameter(Name="/cdk-bootstrap/hnb659fds/version")
    assert int(version["Parameter"]["Value"]) > 0
    aws.client("s3").head_bucket(Bucket=f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}")


@pytest.fixture
def aws() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A copy of the app to change and deploy; the project's own files stay untouched.

    The venv and node_modules are links to the project's: the copy runs the same pinned tools.
    """
    for name in ("Makefile", "package.json", "package-lock.json"):
        shutil.copy2(ROOT / name, tmp_path / name)
    for folder in ("cdk", "lambda-functions"):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("cdk.out", "__pycache__"))
    for name in (".venv", "node_modules"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    return tmp_path


class Workflow:
    """Runs the user's commands in the copy of the app, with the emulator as AWS, and keeps
    the seconds each took."""

    def __init__(self, app: Path, aws: MotoServer, capsys: pytest.CaptureFixture[str]) -> None:
        self.app, self.capsys = app, capsys
        self.figures: list[tuple[str, float]] = []
        # The user's environment, less anything that could reach a real account.
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith(("AWS_", "CDK_"))
                    and name not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
        self.env.update({
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": aws.endpoint_url,
            "CDK_DEFAULT_ACCOUNT": ACCOUNT,
            "CDK_DEFAULT_REGION": REGION,
            "CDK_DISABLE_VERSION_CHECK": "1",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        })

    def make(self, target: str, args: str, *, expect_failure: bool = False) -> str:
        """`make <target> ARGS="..."`; the two stamps are taken as up to date (`-o`) because the
        copy's .venv and node_modules are the project's own, set up already, and `setup` must
        never reinstall them from a copy (`npm ci` empties node_modules first)."""
        return self._run(["make", "-o", ".venv/.installed", "-o", "node_modules/.installed",
                          target, f"ARGS={args}"], self.app, f"make {target}",
                         expect_failure=expect_failure)

    def _run(self, command: list[str], cwd: Path, label: str, *,
             expect_failure: bool = False) -> str:
        started = time.monotonic()
        # A session of its own, so a command that hangs is stopped with its children (the CLI,
        # node, the app's python).
        process = subprocess.Popen(command, cwd=cwd, env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = process.communicate(timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            raise AssertionError(
                f"{label} still running after {COMMAND_TIMEOUT_S} s:\n{output}") from None
        seconds = time.monotonic() - started
        self.figures.append((label, seconds))
        self.say(f"{label:<14} {seconds:6.1f} s  exit {process.returncode}")
        assert (process.returncode != 0) == expect_failure, f"{' '.join(command)}:\n{output}"
        return output

    def say(self, line: str) -> None:
        """Straight to the terminal, so the CI log shows the figures without `-s`."""
        with self.capsys.disabled():
            print(f"[deploy workflow] {line}", flush=True)


@pytest.mark.filterwarnings("ignore:Tried to parse AWS::")  # listed by the test instead
def test_bootstrap_deploy_diff_change_deploy_destroy(
        aws: MotoServer, app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workflow = Workflow(app, aws, capsys)

    workflow.make("bootstrap", f"aws://{ACCOUNT}/{REGION} --no-notices")
    assert_bootstrapped(aws)
    empty = assert_nothing_of_the_stack_exists(aws)
    assert empty.apis == {}
    workflow.say(f"  exists: {empty.summary()}")

    workflow.make("deploy", DEPLOY_ARGS)
    deployed = assert_the_stack_exists(aws, app)
    workflow.say(f"  exists: {deployed.summary()}")

    same = workflow.make("diff", DIFF_ARGS)
    assert "There were no differences" in same
    assert look(aws) == deployed

    # The change: every function's memory doubled, in the copy's stack file.
    stack_file = app / "cdk" / "choreography" / "order_choreography_stack.py"
    source = stack_file.read_text()
    [old_memory] = [int(size) for size in MEMORY_SIZE.findall(source)]
    assert {function["memory"] for function in deployed.functions.values()} == {old_memory}
    new_memory = 2 * old_memory
    stack_file.write_text(MEMORY_SIZE.sub(f"memory_size={new_memory}", source))
    workflow.say(f"  change: memory_size={old_memory} -> {new_memory} in the copy's stack")

    changed = workflow.make("diff", DIFF_ARGS, expect_failure=True)
    for construct_id in SERVICES.values():
        assert f"AWS::Lambda::Function {construct_id} " in changed
    assert re.search(rf"MemorySize\s+├─ \[-\] {old_memory}\s+└─ \[\+\] {new_memory}", changed)
    assert look(aws) == deployed  # a diff changes nothing

    workflow.make("deploy", DEPLOY_ARGS)
    updated = assert_the_stack_exists(aws, app)
    workflow.say(f"  exists: {updated.summary()}")
    assert {function["memory"] for function in updated.functions.values()} == {new_memory}
    # Updated in place: the same table (and its orders), bus, functions and queues.
    assert updated.tables.keys() == deployed.tables.keys()
    assert updated.buses.keys() == deployed.buses.keys()
    assert updated.functions.keys() == deployed.functions.keys()
    assert updated.queues == deployed.queues

    workflow.make("destroy", DESTROY_ARGS)
    destroyed = assert_nothing_of_the_stack_exists(aws)
    workflow.say(f"  exists: {destroyed.summary()} (moto never deletes a REST API)")

    total = sum(seconds for _label, seconds in workflow.figures)
    workflow.say(f"{'all commands':<14} {total:6.1f} s")
    workflow.say("moto's CloudFormation skipped (no model; not checked): "
                 + ", ".join(sorted(aws.skipped_resource_types)))
