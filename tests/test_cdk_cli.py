"""The pinned CDK CLI, as the Makefile runs it, on a machine with no AWS credentials at all."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CDK_DIR, ROOT, SynthesizedApp

pytestmark = pytest.mark.slow

STACK = "OrderChoreography"


def offline_env() -> dict[str, str]:
    """The user's environment without anything that could find AWS credentials."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update({
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        # `"app": "python3 app.py"` must find the project's Python, as under make.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    })
    return env


def cdk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["npx", "--no-install", "cdk", *args, "--no-notices"],
                          cwd=CDK_DIR, env=offline_env(), capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `cdk synth` through the CLI into a folder of its own."""
    out = tmp_path_factory.mktemp("cli") / "cdk.out"
    synth = cdk("synth", "--quiet", "--output", str(out))
    assert synth.returncode == 0, synth.stdout + synth.stderr
    return out


def test_the_cli_is_the_pinned_one() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    version = cdk("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.split()[0] == pinned


def test_synth_needs_no_credentials_and_writes_the_stack(assembly: Path) -> None:
    manifest = json.loads((assembly / "manifest.json").read_text())
    stack = manifest["artifacts"][STACK]
    assert stack["type"] == "aws:cloudformation:stack"
    template = json.loads((assembly / stack["properties"]["templateFile"]).read_text())
    assert sum(resource["Type"] == "AWS::Lambda::Function"
               for resource in template["Resources"].values()) == 5


def test_the_cli_synthesizes_the_template_the_in_process_tests_check(
        assembly: Path, synthesized_app: SynthesizedApp) -> None:
    """Same context, same template: what the other tests assert is what deploys."""

    def resources(template: dict[str, Any]) -> dict[str, Any]:
        return {key: {field: value for field, value in resource.items() if field != "Metadata"}
                for key, resource in template["Resources"].items()}

    cli_template = json.loads((assembly / f"{STACK}.template.json").read_text())
    ours = synthesized_app.template
    assert {key: value for key, value in cli_template.items() if key != "Resources"} == {
        key: value for key, value in ours.items() if key != "Resources"}
    cli_resources, our_resources = resources(cli_template), resources(ours)
    assert [key for key in sorted(cli_resources.keys() | our_resources.keys())
            if cli_resources.get(key) != our_resources.get(key)] == []


def test_cfn_lint_finds_no_errors(assembly: Path) -> None:
    lint = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"),
                           str(assembly / f"{STACK}.template.json")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert lint.returncode & 2 == 0, lint.stdout + lint.stderr  # bit 2: errors


def test_diff_against_a_saved_template_works_offline(assembly: Path, tmp_path: Path) -> None:
    saved = tmp_path / "saved.json"
    saved.write_text((assembly / f"{STACK}.template.json").read_text())
    same = cdk("diff", "--app", str(assembly), "--template", str(saved), STACK, "--fail")
    assert same.returncode == 0, same.stdout + same.stderr

    template = json.loads(saved.read_text())
    [rule] = [resource for resource in template["Resources"].values()
              if resource["Type"] == "AWS::Events::Rule"
              and resource["Properties"]["Name"] == "fulfilment_completed"]
    rule["Properties"]["EventPattern"]["source"] = ["someone_else"]
    saved.write_text(json.dumps(template))
    changed = cdk("diff", "--app", str(assembly), "--template", str(saved), STACK, "--fail")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "someone_else" in changed.stdout + changed.stderr


def test_the_stack_name_comes_from_the_context(tmp_path: Path) -> None:
    listed = cdk("ls", "-c", "stack_name=OrderChoreographyDev", "--output", str(tmp_path))
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert listed.stdout.split() == ["OrderChoreographyDev"]
