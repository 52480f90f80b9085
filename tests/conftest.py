"""Fixtures shared by the tests."""

import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CDK_DIR = ROOT / "cdk"


def import_path(module_name: str, path: Path) -> ModuleType:
    """Imports the file at path under module_name: every service's file is called app.py, so
    each needs a name of its own (its module-level clients are made here, at import)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None, f"cannot import {path}"
    module = importlib.util.module_from_spec(spec)
    # Lambda's code folder is read-only: no bytecode may land in a function's (staged) code.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


FIGURES: list[str] = []


def report(line: str) -> None:
    """A figure a test measured (orders sent, completed, lost...): printed at the end of the
    run, in a section of its own, whether the test passed or not."""
    FIGURES.append(line)
    print(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
    from eventbridge_corpus import EXPECTED_CASES, MISSING, PRESENT

    if not PRESENT:  # said once, however many tests it skipped
        terminalreporter.write_line(f"skipped the {EXPECTED_CASES} AWS-recorded EventBridge "
                                    f"pattern cases: {MISSING}")


@dataclass(frozen=True)
class SynthesizedApp:
    """The CDK app as `cdk synth` builds it, synthesized in-process."""

    stack: Any  # choreography.OrderChoreographyStack
    template: dict[str, Any]
    assembly_dir: Path

    def logical_id(self, construct: Any) -> str:
        """The template's logical ID of an L2 construct's CloudFormation resource."""
        resource = construct.node.default_child
        return str(self.stack.resolve(self.stack.get_logical_id(resource)))


@pytest.fixture(scope="session")
def cdk_app() -> ModuleType:
    """cdk/app.py as a module: its build() makes the app exactly as `cdk synth` does."""
    sys.path.insert(0, str(CDK_DIR))  # app.py imports the `choreography` package beside it
    return import_path("cdk_app", CDK_DIR / "app.py")


@pytest.fixture(scope="session")
def synthesized_app(cdk_app: ModuleType,
                    tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """Synthesizes cdk/app.py once per session (6-13 s) with cdk.json's context, as the CLI does.

    The context also turns on the asset metadata the CLI turns on, so each function's resource
    names the staged folder of its code (`aws:asset:path`) inside the assembly.
    """
    import aws_cdk as cdk

    context = json.loads((CDK_DIR / "cdk.json").read_text())["context"]
    assembly_dir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(context={**context, "aws:cdk:enable-asset-metadata": True,
                           "aws:cdk:enable-path-metadata": True},
                  outdir=str(assembly_dir))
    stack = cdk_app.build(app)
    assembly = app.synth()
    template = assembly.get_stack_by_name(stack.stack_name).template
    return SynthesizedApp(stack=stack, template=template, assembly_dir=assembly_dir)


@pytest.fixture(scope="session")
def assembly(synthesized_app: SynthesizedApp) -> Path:
    """The synthesized cloud assembly (`cdk.out`) that the sandbox tests run."""
    return synthesized_app.assembly_dir


@pytest.fixture
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-process AWS in us-east-1, with fake credentials and no endpoint or profile
    from the user's environment, so no call can reach a real account."""
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def breadth_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/breadth synthesized as the CLI would, into a cloud assembly for the sandbox."""
    import aws_cdk as cdk

    sys.path.insert(0, str(ROOT / "tests"))
    from breadth.app import build

    assembly_dir = tmp_path_factory.mktemp("breadth.out")
    app = cdk.App(context={"aws:cdk:enable-asset-metadata": True,
                           "aws:cdk:enable-path-metadata": True},
                  outdir=str(assembly_dir))
    build(app)
    app.synth()
    return assembly_dir


@pytest.fixture(scope="session")
def cdk_sandbox(assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The package's own `cdk_sandbox` fixture (sandbox/pytest_plugin.py), run on the assembly
    this session synthesized, as another project's tests run it on their `cdk.out`."""
    from sandbox.pytest_plugin import running

    with running(assembly, tmp_path_factory.mktemp("cdk-sandbox")) as sandbox:
        yield sandbox
