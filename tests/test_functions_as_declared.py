"""Functions as templates declare them, without starting the sandbox: inline code, layers,
versions and aliases (names, ARNs, qualifiers, routing weights), the limits Lambda refuses at
deploy time, and the interpreter the workers run on. The end-to-end part is
tests/test_breadth_functions.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from sandbox.assembly import AssemblyError, Stack
from sandbox.core.state import State
from sandbox.core.targets import Targets
from sandbox.lambda_.backend import (
    UNZIPPED_LIMIT,
    Alias,
    FunctionNotFound,
    LambdaService,
    pick_version,
    split_qualifier,
)
from sandbox.lambda_.interpreters import InterpreterError, Interpreters, chosen_interpreter
from sandbox.lambda_.runtime_api import FunctionConfig, FunctionWorkers, import_path
from sandbox.settings import Settings

ARN = "arn:aws:lambda:us-east-1:000000000000:function"
FN = {"Type": "AWS::Lambda::Function", "Properties": {
    "FunctionName": "fn", "Runtime": "python3.12", "Handler": "index.handler",
    "Code": {"ZipFile": "def handler(event, context):\n    return event\n"}}}
V1 = {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "Fn"}}}
V2 = {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Fn::GetAtt": ["Fn", "Arn"]}}}


def alias(version: Any, **routing: Any) -> dict[str, Any]:
    props = {"FunctionName": {"Ref": "Fn"}, "FunctionVersion": version, "Name": "live"}
    if routing:
        props["RoutingConfig"] = {"AdditionalVersionWeights": [routing]}
    return {"Type": "AWS::Lambda::Alias", "Properties": props}


def stack(tmp_path: Path, resources: dict[str, Any], assets: dict[str, Path] | None = None
          ) -> Stack:
    return Stack(name="S", region="us-east-1", directory=tmp_path,
                 template_file=tmp_path / "S.template.json", template={"Resources": resources},
                 endpoint_url="http://127.0.0.1:1", asset_paths=assets or {})


def service(tmp_path: Path, resources: dict[str, Any], assets: dict[str, Path] | None = None,
            **settings: Any) -> LambdaService:
    return LambdaService([stack(tmp_path, resources, assets)], State(tmp_path / "sandbox.db"),
                         Targets(), Settings(**settings), {}, lambda *_: None)


def refusal(tmp_path: Path, resources: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(AssemblyError) as refused:
        service(tmp_path, resources, **kwargs)
    return str(refused.value)


# -- names, ARNs and qualifiers -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("fn", ("fn", None)),
    ("fn:live", ("fn", "live")),
    (f"{ARN}:fn", ("fn", None)),
    (f"{ARN}:fn:$LATEST", ("fn", "$LATEST")),
    (f"{ARN}:fn:3", ("fn", "3")),
    ("000000000000:function:fn:live", ("fn", "live")),
])
def test_a_function_is_named_as_lambda_reads_names(name: str, expected: tuple) -> None:
    assert split_qualifier(name) == expected


def test_versions_and_aliases_have_cloudformations_return_values(tmp_path: Path) -> None:
    layer = {"Type": "AWS::Lambda::LayerVersion", "Properties": {
        "LayerName": "shared", "Content": {"S3Bucket": "b", "S3Key": "k.zip"}}}
    s = stack(tmp_path, {"Fn": FN, "V1": V1, "V2": V2, "Live": alias({"Fn::GetAtt": ["V2",
                                                                                  "Version"]}),
                         "Layer": layer})
    assert s.ref("V1") == f"{ARN}:fn:1"  # numbered in the template's order
    assert s.get_att("V2", "Version") == "2"
    assert s.get_att("V2", "FunctionArn") == f"{ARN}:fn:2"
    assert s.ref("Live") == s.get_att("Live", "AliasArn") == f"{ARN}:fn:live"
    assert s.resolve(alias({"Fn::GetAtt": ["V2", "Version"]})["Properties"]["FunctionVersion"]
                     ) == "2"
    assert s.ref("Layer") == s.get_att("Layer", "LayerVersionArn") == (
        "arn:aws:lambda:us-east-1:000000000000:layer:shared:1")


def test_each_qualifier_resolves_to_the_function_and_the_version_it_runs(tmp_path: Path) -> None:
    lambda_ = service(tmp_path, {"Fn": FN, "V1": V1, "V2": V2, "Live": alias("1")})
    config = lambda_.configs["fn"]
    assert lambda_.resolve("fn") == (config, "$LATEST")
    assert lambda_.resolve(f"{ARN}:fn:$LATEST") == (config, "$LATEST")
    assert lambda_.resolve(f"{ARN}:fn:2") == (config, "2")
    assert lambda_.resolve(f"{ARN}:fn:live") == (config, "1")
    assert lambda_.resolve("fn", "live") == (config, "1")
    assert lambda_.invoked_arn("fn:live") == f"{ARN}:fn:live"


@pytest.mark.parametrize("name", [f"{ARN}:fn:7", "fn:dev", "other"])
def test_an_unknown_qualifier_or_function_is_lambdas_404(tmp_path: Path, name: str) -> None:
    lambda_ = service(tmp_path, {"Fn": FN, "V1": V1, "Live": alias("1")})
    with pytest.raises(FunctionNotFound, match="Function not found: "):
        lambda_.resolve(name)


def test_each_qualified_arn_is_a_target_and_an_unknown_one_is_not(tmp_path: Path) -> None:
    lambda_ = service(tmp_path, {"Fn": FN, "V1": V1, "Live": alias("1")})
    assert set(lambda_.arns()) == {f"{ARN}:fn", f"{ARN}:fn:$LATEST", f"{ARN}:fn:1",
                                   f"{ARN}:fn:live"}
    targets = lambda_.targets
    assert f"{ARN}:fn:live" in targets and f"{ARN}:fn:dev" not in targets
    job = lambda_.async_job(f"{ARN}:fn:live", "{}")
    assert job.target == f"{ARN}:fn:live"  # the alias chooses the version at each try


# -- routing weights ----------------------------------------------------------------------------


def test_an_alias_routes_each_additional_version_its_weights_share() -> None:
    canary = Alias("fn", "live", "1", (("2", 0.25),))
    assert pick_version(canary, 0.0) == "2"
    assert pick_version(canary, 0.2499) == "2"
    assert pick_version(canary, 0.25) == "1"
    assert pick_version(canary, 0.99) == "1"
    assert pick_version(Alias("fn", "live", "$LATEST"), 0.5) == "$LATEST"


def test_the_weights_hold_over_many_invocations(tmp_path: Path) -> None:
    lambda_ = service(tmp_path, {"Fn": FN, "V1": V1, "V2": V2,
                                 "Live": alias("1", FunctionVersion="2", FunctionWeight="0.3")})
    picks = [lambda_.resolve("fn:live")[1] for _ in range(4000)]
    assert 0.26 < picks.count("2") / len(picks) < 0.34
    assert set(picks) == {"1", "2"}


# -- what CloudFormation and Lambda refuse at deploy time ----------------------------------------


def test_an_alias_to_a_version_that_does_not_exist_stops_the_start(tmp_path: Path) -> None:
    message = refusal(tmp_path, {"Fn": FN, "V1": V1, "Live": alias("7")})
    assert message == (f"{tmp_path / 'S.template.json'}: Resources.Live.Properties."
                       f"FunctionVersion: Function not found: {ARN}:fn:7")
    message = refusal(tmp_path, {"Fn": FN, "V1": V1,
                                 "Live": alias("1", FunctionVersion="4", FunctionWeight=0.5)})
    assert "RoutingConfig.AdditionalVersionWeights[0].FunctionVersion: Function not found" \
        in message


def test_a_weight_out_of_range_is_refused_in_lambdas_words(tmp_path: Path) -> None:
    message = refusal(tmp_path, {"Fn": FN, "V1": V1, "V2": V2,
                                 "Live": alias("1", FunctionVersion="2", FunctionWeight=1.5)})
    assert "Resources.Live.Properties.RoutingConfig.AdditionalVersionWeights[0].FunctionWeight" \
        in message
    assert "Member must have value less than or equal to 1.0" in message


def layered(tmp_path: Path, count: int) -> tuple[dict[str, Any], dict[str, Path]]:
    resources: dict[str, Any] = {"Fn": json.loads(json.dumps(FN))}
    assets = {}
    for i in range(count):
        folder = tmp_path / f"layer{i}"
        (folder / "python").mkdir(parents=True)
        assets[f"l{i}.zip"] = folder
        resources[f"Layer{i}"] = {"Type": "AWS::Lambda::LayerVersion", "Properties": {
            "Content": {"S3Bucket": "b", "S3Key": f"l{i}.zip"}}}
    resources["Fn"]["Properties"]["Layers"] = [{"Ref": f"Layer{i}"} for i in range(count)]
    return resources, assets


def test_more_than_five_layers_stop_the_start(tmp_path: Path) -> None:
    resources, assets = layered(tmp_path, 6)
    assert refusal(tmp_path, resources, assets=assets).endswith(
        "Resources.Fn.Properties.Layers: Cannot reference more than 5 layers.")


def test_a_layer_or_a_function_with_its_layers_over_250_mb_stops_the_start(
        tmp_path: Path) -> None:
    resources, assets = layered(tmp_path, 2)
    with open(tmp_path / "layer0" / "python" / "big.bin", "wb") as big:  # sparse: no disk used
        big.truncate(UNZIPPED_LIMIT + 1)
    assert refusal(tmp_path, resources, assets=assets).endswith(
        f"Resources.Layer0.Properties.Content: Unzipped size must be smaller than "
        f"{UNZIPPED_LIMIT} bytes")
    os.truncate(tmp_path / "layer0" / "python" / "big.bin", UNZIPPED_LIMIT // 2)
    with open(tmp_path / "layer1" / "python" / "big.bin", "wb") as big:  # each layer fits
        big.truncate(UNZIPPED_LIMIT // 2 + 1)
    message = refusal(tmp_path, resources, assets=assets)
    assert "Resources.Fn.Properties.Layers: Function code combined with layers exceeds the " \
           f"maximum allowed size of {UNZIPPED_LIMIT} bytes. The actual size is " in message


# -- inline code, layers on the import path, what start says ------------------------------------


def test_inline_code_is_index_py_in_the_state_folder_kept_until_the_template_changes(
        tmp_path: Path) -> None:
    config = service(tmp_path, {"Fn": FN}).configs["fn"]
    written = config.code_dir / "index.py"
    assert config.code_dir == tmp_path / "functions" / "fn"
    assert written.read_text() == FN["Properties"]["Code"]["ZipFile"]
    os.utime(written, (1, 1))
    service(tmp_path, {"Fn": FN})
    assert written.stat().st_mtime == 1  # the same code: untouched across a restart
    changed = json.loads(json.dumps(FN))
    changed["Properties"]["Code"]["ZipFile"] = "def handler(event, context):\n    return 1\n"
    service(tmp_path, {"Fn": changed})
    assert written.read_text().endswith("return 1\n")


def test_layers_follow_the_functions_code_the_last_layer_first(tmp_path: Path) -> None:
    config = FunctionConfig("fn", f"{ARN}:fn", Path("/code"), "index.handler", "python3.12", 3,
                            128, {}, layers=(Path("/l1"), Path("/l2")))
    assert import_path(config) == ["/code", "/l2/python/lib/python3.12/site-packages",
                                   "/l2/python", "/l1/python/lib/python3.12/site-packages",
                                   "/l1/python"]


def test_snapstart_and_provisioned_concurrency_are_named_as_not_emulated(
        tmp_path: Path) -> None:
    fn = json.loads(json.dumps(FN))
    fn["Properties"]["SnapStart"] = {"ApplyOn": "PublishedVersions"}
    live = alias("1")
    live["Properties"]["ProvisionedConcurrencyConfig"] = {"ProvisionedConcurrentExecutions": 2}
    notes = service(tmp_path, {"Fn": fn, "V1": V1, "Live": live}).notes
    assert any("SnapStart of Fn" in note and "not emulated" in note for note in notes)
    assert any("ProvisionedConcurrencyConfig of Live" in note for note in notes)


# -- the runtime's Python -----------------------------------------------------------------------


def test_a_runtime_without_its_python_here_is_said_once_with_what_differs() -> None:
    interpreters = Interpreters()
    assert interpreters.for_runtime("python3.99", "A") == sys.executable
    interpreters.for_runtime("python3.99", "B")
    (note,) = interpreters.notes()
    mine = ".".join(map(str, sys.version_info[:2]))
    assert note.startswith("python3.99 functions (A, B) run on Python ")
    assert "no python3.99 on the PATH" in note
    assert f"its standard library is {mine}'s, not 3.99's" in note
    assert "not the one Lambda's python3.99 runtime bundles" in note


def test_the_sandboxs_own_python_runs_its_own_version_without_a_word() -> None:
    interpreters = Interpreters()
    runtime = "python" + ".".join(map(str, sys.version_info[:2]))
    assert interpreters.for_runtime(runtime, "A") == sys.executable
    assert interpreters.notes() == []


def test_python_option_without_awslambdaric_says_how_to_install_it(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    with pytest.raises(InterpreterError, match=r"-m pip install awslambdaric=="):
        chosen_interpreter(str(bare / "bin" / "python"))
    with pytest.raises(InterpreterError, match="not a Python interpreter"):
        chosen_interpreter(str(tmp_path / "nothing"))


@pytest.mark.slow
def test_python_option_runs_the_workers_on_that_interpreter(tmp_path: Path) -> None:
    """A second interpreter: a venv (its own executable) that sees this one's packages."""
    other = tmp_path / "other"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(other)], check=True)
    site = next((other / "lib").glob("python3.*/site-packages"))
    (site / "sandbox-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = tmp_path / "code"
    code.mkdir()
    (code / "index.py").write_text("import sys\n\ndef handler(event, context):\n"
                                   "    return sys.executable\n")
    python = chosen_interpreter(str(other / "bin" / "python")).path
    workers = FunctionWorkers(FunctionConfig("fn", f"{ARN}:fn", code, "index.handler",
                                             "python3.12", 10, 256, {}, python=python),
                              lambda *_: None, {})
    try:
        invocation = workers.invoke(b"{}")
    finally:
        workers.close()
    assert invocation.ok, invocation.payload
    assert json.loads(invocation.payload) == str(other / "bin" / "python")
