"""The cloud assembly the bench runs: the app's own stacks as synthesized, and beside each a twin
whose functions run the workshop-style code in `bench/workshop_style/`, so both run in one
sandbox, against one DynamoDB Local, in the same minutes.

A twin is the same template with what must differ to live beside the original in one sandbox:
its own stack name (so its table, queues and functions get names of their own), its own bus
name (the template names the bus explicitly), its own API stage (one endpoint serves every
API by stage path) and its functions' construct ids prefixed, so their log lines say which is
which. Everything else (rules, retry policies, memory sizes, timeouts) is the original's.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

WORKSHOP_CODE = Path(__file__).resolve().parent / "workshop_style"
TWIN_SUFFIX = "Workshop"
TWIN_STAGE = "workshop"
STACK = "aws:cloudformation:stack"
ASSETS = "cdk:asset-manifest"


class BenchAssemblyError(Exception):
    """The assembly cannot be turned into the bench's; the message says why."""


def service_folder(construct_id: str) -> str:
    """'OrderService' -> 'order-service': the construct id names the service's code folder."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", construct_id).lower()


def construct_id(resource: dict[str, Any], logical_id: str) -> str:
    """The function's construct id from CDK's path metadata (App/Stack/Id/Resource)."""
    parts = str(resource.get("Metadata", {}).get("aws:cdk:path", "")).split("/")
    if len(parts) < 3 or parts[-1] != "Resource":
        raise BenchAssemblyError(f"function {logical_id} has no aws:cdk:path metadata naming its "
                                 "construct, so its workshop-style code cannot be chosen")
    return parts[-2]


def twin_template(template: dict[str, Any], twin: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The twin's template, and for each of its functions the asset key -> service folder."""
    twin_template = json.loads(json.dumps(template))
    assets: dict[str, str] = {}
    for logical_id, resource in twin_template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Events::EventBus" and isinstance(properties.get("Name"), str):
            properties["Name"] += TWIN_SUFFIX
        elif kind == "AWS::ApiGateway::Stage" or (
                kind == "AWS::ApiGateway::Deployment" and "StageName" in properties):
            properties["StageName"] = TWIN_STAGE
        elif kind == "AWS::Lambda::Function":
            name = construct_id(resource, logical_id)
            folder = service_folder(name)
            if not (WORKSHOP_CODE / folder / "app.py").is_file():
                raise BenchAssemblyError(f"function {logical_id}: no workshop-style code at "
                                         f"{WORKSHOP_CODE / folder / 'app.py'}")
            key = f"workshop-{folder}.zip"
            properties["Code"] = {"S3Bucket": "workshop", "S3Key": key}
            metadata = resource.setdefault("Metadata", {})
            metadata["aws:cdk:path"] = f"{twin}/{TWIN_SUFFIX}{name}/Resource"
            metadata["aws:asset:path"] = f"asset.workshop-{folder}"
            assets[key] = folder
    return twin_template, assets


def build(source: Path, destination: Path) -> list[str]:
    """Copies the assembly at `source` to `destination` and adds a workshop twin of each stack;
    returns the twins' stack names."""
    manifest_file = source / "manifest.json"
    if not manifest_file.is_file():
        raise BenchAssemblyError(f"{source}: no manifest.json; synthesize first (make synth)")
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = json.loads(manifest_file.read_text())
    artifacts: dict[str, Any] = manifest["artifacts"]
    twins = []
    for artifact_id, artifact in list(artifacts.items()):
        if artifact.get("type") != STACK:
            continue
        twin = artifact_id + TWIN_SUFFIX
        template_file = artifact["properties"]["templateFile"]
        template, assets = twin_template(json.loads((source / template_file).read_text()), twin)
        (destination / f"{twin}.template.json").write_text(json.dumps(template, indent=1))
        files = {}
        for key, folder in assets.items():
            shutil.copytree(WORKSHOP_CODE / folder, destination / f"asset.workshop-{folder}",
                            ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            files[key.removesuffix(".zip")] = {
                "source": {"path": f"asset.workshop-{folder}", "packaging": "zip"},
                "destinations": {"local": {"bucketName": "workshop", "objectKey": key}},
            }
        (destination / f"{twin}.assets.json").write_text(
            json.dumps({"version": manifest.get("version"), "files": files}, indent=1))
        artifacts[f"{twin}.assets"] = {"type": ASSETS,
                                       "properties": {"file": f"{twin}.assets.json"}}
        artifacts[twin] = {
            "type": STACK,
            "environment": artifact.get("environment"),
            "properties": {"templateFile": f"{twin}.template.json"},
            "dependencies": [f"{twin}.assets"],
        }
        twins.append(twin)
    if not twins:
        raise BenchAssemblyError(f"{manifest_file}: no stack in it")
    (destination / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return twins
