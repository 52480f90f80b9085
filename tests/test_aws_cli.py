"""The README's own commands, through the AWS CLI version 2, against the sandbox running the
real app: the `output()` helper over `aws cloudformation describe-stacks`, get-item by the
`TableName` output, receive-message by a queue URL output, curl of `OrderUrl`, `aws lambda
invoke`, `aws logs tail` (with `--filter-pattern` and `--follow`) and `aws sts
get-caller-identity`; and AWS's answers to bad input.

The CLI is Debian's `awscli` package (2.9; `.ci/run` installs it): PyPI's `awscli` is version 1,
which has no `logs tail`. 2.9 predates `AWS_ENDPOINT_URL`, so every call passes
`--endpoint-url`, as the README says older CLIs need.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_process import FAST_RETRIES, ROOT, STAMPS, SandboxProcess, wait_for

pytestmark = pytest.mark.slow
STACK = "OrderChoreography"


def aws_cli_v2() -> str | None:
    """The first `aws` on PATH (or Debian's /usr/bin/aws) that is version 2."""
    candidates = [str(Path(d) / "aws") for d in os.environ.get("PATH", "").split(os.pathsep)]
    for path in [*candidates, "/usr/bin/aws"]:
        if not shutil.which(path):
            continue
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=60)
        if (version.stdout + version.stderr).startswith("aws-cli/2"):
            return path
    return None


AWS = aws_cli_v2()
if AWS is None:
    pytest.skip("the AWS CLI version 2 is not installed (Debian's awscli package: "
                "apt-get install awscli, as .ci/run does)", allow_module_level=True)


def readme_output_helper() -> str:
    """The README's `output()` shell function, as its deploy section writes it."""
    deploy = (ROOT / "README.md").read_text().split("\n## Deploy to AWS\n", 1)[-1]
    found = re.search(r"^output\(\) \{.*?\}$", deploy, re.MULTILINE | re.DOTALL)
    assert found, "README.md defines output() in its deploy section"
    return found.group(0)


class Shell:
    """bash with `aws` pointing at the sandbox (`--endpoint-url`), and the README's helper."""

    def __init__(self, sandbox: SandboxProcess, folder: Path) -> None:
        self.folder = folder
        self.env = {**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_PAGER": "", "NO_PROXY": "127.0.0.1,localhost", "STACK": STACK}
        self.env.pop("AWS_PROFILE", None)
        self.prelude = (f'aws() {{ command "{AWS}" --endpoint-url "{sandbox.url}" "$@"; }}\n'
                        f"{readme_output_helper()}\n")

    def popen(self, script: str) -> subprocess.Popen[str]:
        return subprocess.Popen(["bash", "-c", self.prelude + script], cwd=self.folder,
                                env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def run(self, script: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["bash", "-c", self.prelude + script], cwd=self.folder,
                              env=self.env, capture_output=True, text=True, timeout=120)
        if ok:
            assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
        return done


@pytest.fixture(scope="module")
def shell(assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    with SandboxProcess(assembly, tmp_path_factory.mktemp("cli-state"),
                        extra_args=FAST_RETRIES) as sandbox:
        yield Shell(sandbox, tmp_path_factory.mktemp("cli"))


def create_order(shell: Shell) -> str:
    answer = json.loads(shell.run('curl -s "$(output OrderUrl)"').stdout)
    assert answer["status"] == "order_created"
    return answer["ID"]


def test_caller_identity_is_the_local_account(shell: Shell) -> None:
    identity = json.loads(shell.run("aws sts get-caller-identity").stdout)
    assert identity == {"UserId": "000000000000", "Account": "000000000000",
                        "Arn": "arn:aws:iam::000000000000:root"}


def test_the_readme_reads_an_order_back_by_the_stack_outputs(shell: Shell) -> None:
    assert shell.run("output OrderUrl").stdout.strip().endswith("/prod/order")
    order_id = create_order(shell)
    key = json.dumps({"ID": {"S": order_id}})

    def stamped() -> dict | None:
        item = json.loads(shell.run(f'aws dynamodb get-item --consistent-read --table-name '
                                    f'"$(output TableName)" --key \'{key}\'').stdout or "{}")
        return item if all(s in item.get("Item", {}) for s in STAMPS) else None

    wait_for(stamped, 60, "the order's five stamps")


def test_a_queue_url_output_is_the_sandbox_queue(shell: Shell) -> None:
    queue = '"$(output InvoiceServiceOnFailureQueueUrl)"'
    shell.run(f"aws sqs send-message --queue-url {queue} --message-body from-the-cli "
              "--message-attributes '{\"why\": {\"DataType\": \"String\", "
              "\"StringValue\": \"a test\"}}'")
    received = json.loads(shell.run(f"aws sqs receive-message --queue-url {queue} "
                                    "--attribute-names All --message-attribute-names All"
                                    ).stdout)
    [message] = received["Messages"]
    assert message["Body"] == "from-the-cli"
    assert message["MessageAttributes"]["why"] == {"StringValue": "a test", "DataType": "String"}
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    shell.run(f"aws sqs delete-message --queue-url {queue} "
              f"--receipt-handle '{message['ReceiptHandle']}'")


def order_function(shell: Shell) -> str:
    return shell.run("aws lambda list-functions --query \"Functions[?contains(FunctionName, "
                     "'OrderService')].FunctionName\" --output text").stdout.strip()


def test_lambda_invoke_answers_with_the_result_and_the_log_tail(shell: Shell) -> None:
    answer = json.loads(shell.run(
        f"aws lambda invoke --function-name {order_function(shell)} --payload '{{}}' "
        "--cli-binary-format raw-in-base64-out --log-type Tail out.json").stdout)
    assert answer["StatusCode"] == 200
    assert answer["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in answer
    log = base64.b64decode(answer["LogResult"]).decode()
    assert log.startswith("START RequestId: ")
    assert "REPORT RequestId: " in log
    result = json.loads((shell.folder / "out.json").read_text())
    assert json.loads(result["body"])["status"] == "order_created"


def order_log_group(shell: Shell) -> str:
    """The order service's log group: the template's (the CLI 2.9 predates Lambda's
    LoggingConfig, so it is found by name)."""
    return shell.run("aws logs describe-log-groups --query \"logGroups[?contains(logGroupName, "
                     "'OrderServiceLogs')].logGroupName\" --output text").stdout.strip()


def test_logs_tail_filters_one_order_by_its_id(shell: Shell) -> None:
    order_id = create_order(shell)
    group = order_log_group(shell)
    pattern = f'{{ $.ID = "{order_id}" }}'
    lines = wait_for(lambda: shell.run(f"aws logs tail '{group}' --since 10m "
                                       f"--filter-pattern '{pattern}'").stdout.splitlines(),
                     30, "the order's log line")
    assert lines and all(order_id in line for line in lines)
    assert json.loads(lines[0].split(" ", 2)[2])["message"] == "order created"


def test_logs_tail_follow_shows_new_lines(shell: Shell) -> None:
    group = order_log_group(shell)
    follower = shell.popen(f"aws logs tail '{group}' --follow --since 1s "
                           "--filter-pattern '\"order created\"'")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(follower.stdout or ()), daemon=True)
    reader.start()
    try:
        order_id = wait_for(lambda: create_order(shell) if follower.poll() is None else None,
                            10, "the follower to run")
        wait_for(lambda: any(order_id in line for line in lines), 60,
                 "logs tail --follow to show the new order")
    finally:
        os.killpg(follower.pid, 15)
        follower.wait(timeout=30)


@pytest.mark.parametrize(("script", "code", "message"), [
    ("aws lambda invoke --function-name nope out.json", "ResourceNotFoundException",
     "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"),
    ("(printf '\"'; head -c 6291456 /dev/zero | tr '\\0' x; printf '\"') > big.json && "
     "aws lambda invoke --function-name "
     "\"$(aws lambda list-functions --query Functions[0].FunctionName --output text)\" "
     "--payload fileb://big.json out.json", "RequestEntityTooLargeException",
     "Request must be smaller than 6291456 bytes for the InvokeFunction operation"),
    ("aws logs filter-log-events --log-group-name \"$(aws logs describe-log-groups --query "
     "logGroups[0].logGroupName --output text)\" --filter-pattern '{ $.ID = '",
     "InvalidParameterException", "Invalid filter pattern"),
    ("aws cloudformation describe-stacks --stack-name Nope", "ValidationError",
     "Stack with id Nope does not exist"),
])
def test_bad_input_gets_aws_answer(shell: Shell, script: str, code: str, message: str) -> None:
    done = shell.run(script, ok=False)
    assert done.returncode == 254
    assert f"An error occurred ({code})" in done.stderr
    assert message in done.stderr
