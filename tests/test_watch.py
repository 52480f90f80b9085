"""Watch mode: what is watched (cdk.json's `watch`, as `cdk watch` reads it), a saved handler
run by the next invocation, and a changed app applied in place with its data and queued events
kept."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from cdk_project import make_project, project_path
from conftest import report
from sandbox_process import SandboxProcess, get, wait_for

from sandbox.__main__ import apply_app
from sandbox.watch import Project, matches


@pytest.mark.parametrize(("path", "pattern", "expected"), [
    ("app.py", "**", True),
    ("stacks/api.py", "**", True),
    ("tests/test_app.py", "tests", True),  # a folder covers what is under it
    ("stacks/__pycache__/api.pyc", "**/__pycache__", True),
    ("README.md", "README.md", True),
    ("docs/README.md", "README.md", False),  # relative to the project, as cdk watch has it
    ("cdk.json", "cdk*.json", True),
    ("lib/handler/index.py", "lib/*/index.py", True),
    ("lib/a/b/index.py", "lib/*/index.py", False),
])
def test_watch_patterns_match_as_cdk_watch_reads_them(path: str, pattern: str,
                                                      expected: bool) -> None:
    assert matches(path, pattern) is expected


def test_sources_follow_include_and_exclude(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    for name in ("README.md", "tests/test_app.py", "cdk.out/manifest.json",
                 "node_modules/x/index.js", ".git/HEAD"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    watched = Project.at(project)
    assert watched is not None
    assert sorted(p.relative_to(tmp_path).as_posix() for p in watched.sources()) == [
        "app.py", "handler/index.py"]
    manifest = tmp_path / "cdk.out" / "manifest.json"
    assert not watched.stale(tmp_path / "cdk.out")  # written after every source
    os.utime(tmp_path / "app.py", (manifest.stat().st_mtime + 1,) * 2)
    assert watched.stale(tmp_path / "cdk.out")
    manifest.unlink()
    assert watched.stale(tmp_path / "cdk.out")
    assert Project.at(tmp_path / "handler") is None  # no cdk.json, no project


def answer(sandbox: SandboxProcess) -> dict[str, str]:
    status, _, body = get(f"{sandbox.url}/prod/item")
    assert status == 200, body
    return json.loads(body)


@pytest.mark.slow
def test_a_saved_handler_runs_next_and_a_changed_app_is_applied_in_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "tiny")
    monkeypatch.setenv("PATH", project_path())
    monkeypatch.setenv("CDK_DISABLE_VERSION_CHECK", "1")
    sandbox = SandboxProcess(project / "cdk.out", tmp_path / "state",
                             extra_args=("--watch", "--retry-scale", "0.001"))
    sandbox.start(240)  # the first synth included
    try:
        assert "--no-staging" in sandbox.output()
        assert answer(sandbox)["version"] == "v1"  # a warm worker now holds v1

        handler = project / "handler" / "index.py"
        saved = time.monotonic()
        handler.write_text(handler.read_text().replace('"v1"', '"v2"'))
        wait_for(lambda: answer(sandbox)["version"] == "v2", 30, "the saved handler to answer")
        report(f"watch: {time.monotonic() - saved:.2f} s from a saved handler to its first answer")
        assert re.search(r"changed: new workers for Hello", sandbox.output())

        sqs = sandbox.client("sqs")
        (kept,) = sqs.list_queues()["QueueUrls"]
        items = sandbox.client("dynamodb")
        (table,) = items.list_tables()["TableNames"]
        before = items.scan(TableName=table)["Count"]  # one item and one event per answer
        wait_for(lambda: queued(sqs, kept) == before, 30, "every event queued")

        app = project / "app.py"
        app.write_text(app.read_text().replace("EXTRA_RULE = False", "EXTRA_RULE = True"))
        wait_for(lambda: "with the new assembly" in sandbox.output(), 120, "the new assembly")
        answer(sandbox)
        added = wait_for(lambda: [u for u in sqs.list_queues()["QueueUrls"] if "Added" in u],
                         30, "the new queue")[0]
        wait_for(lambda: queued(sqs, added) == 1, 30, "the new rule to deliver")
        assert queued(sqs, kept) == before + 1  # those queued before the change are kept
        assert items.scan(TableName=table)["Count"] == before + 1

    finally:
        sandbox.stop()

def queued(sqs: object, url: str) -> int:
    attributes = sqs.get_queue_attributes(  # type: ignore[attr-defined]
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


@pytest.mark.slow
def test_a_synth_that_fails_says_why_and_keeps_the_running_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    make_project(tmp_path)
    (tmp_path / "cdk.json").write_text(json.dumps(
        {"app": "python3 -c \"raise SystemExit('the app is broken')\""}))
    monkeypatch.setenv("PATH", project_path())
    reloads: list[bool] = []

    class Running:
        url = "http://127.0.0.1:4000"

        def reload(self) -> bool:
            reloads.append(True)
            return True

    apply_app(Running(), Project.at(tmp_path), tmp_path / "cdk.out")  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "cdk synth failed" in out and "the app is broken" in out, out
    assert "the running version goes on" in out
    assert reloads == []
