"""Read a CDK cloud assembly (`cdk.out`) and answer for it what CloudFormation would.

The sandbox runs the synthesized template, never our CDK code, so what runs locally is what
deploys. At deploy time CloudFormation names each resource and gives every `Ref` and `Fn::GetAtt`
a value; here those values are computed locally. They are deterministic (the same assembly always
gives the same names), so the state the sandbox keeps between runs still matches after a restart.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.assembly_schema import SCHEMAS, SchemaError, checked

ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"

# Explicit name property of each named resource type, and the longest name its service accepts.
_NAMES: dict[str, tuple[str, int]] = {
    "AWS::DynamoDB::Table": ("TableName", 255),
    "AWS::Lambda::Function": ("FunctionName", 64),
    "AWS::SQS::Queue": ("QueueName", 80),
    "AWS::SNS::Topic": ("TopicName", 256),
    "AWS::Events::EventBus": ("Name", 256),
    "AWS::Events::Rule": ("Name", 64),
    "AWS::IAM::Role": ("RoleName", 64),
    "AWS::Logs::LogGroup": ("LogGroupName", 512),
    "AWS::Lambda::LayerVersion": ("LayerName", 140),
}
_DEFAULT_NAME_LIMIT = 255
# What Ref returns for these is an id API Gateway makes up, not a name.
_GENERATED_IDS = {
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::Deployment",
}
VERSION = "AWS::Lambda::Version"
ALIAS = "AWS::Lambda::Alias"
LAYER = "AWS::Lambda::LayerVersion"
# Where a function's code and a layer's content are.
_CODE_PROPERTY = {"AWS::Lambda::Function": "Code", LAYER: "Content"}
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class AssemblyError(Exception):
    """A cloud assembly the sandbox cannot run; the message says what is wrong and where."""


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: dict
    metadata: dict


class _NoValue:
    """`Ref: AWS::NoValue`: the key or list element holding it disappears."""


_NO_VALUE = _NoValue()


def _short_id(*parts: str) -> str:
    """A 10-character lowercase id like API Gateway's, stable for the same inputs."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return "".join(_ID_ALPHABET[byte % len(_ID_ALPHABET)] for byte in digest[:10])


def _shorten(name: str, limit: int) -> str:
    """Fit a generated name within a service's limit; the hash keeps truncated names distinct."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - 9]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


class Stack:
    """One CloudFormation stack of the assembly, with the local values of its intrinsics."""

    def __init__(
        self,
        *,
        name: str,
        region: str,
        directory: Path,
        template_file: Path,
        template: dict,
        endpoint_url: str,
        asset_paths: dict[str, Path],
    ) -> None:
        self.name = name
        self.account = ACCOUNT
        self.region = region
        self.directory = directory
        self.template_file = template_file
        self._endpoint_url = endpoint_url.rstrip("/")
        self._asset_paths = asset_paths
        self._parameters = _mapping(template, "Parameters", template_file)
        self._conditions = _mapping(template, "Conditions", template_file)
        self._mappings = _mapping(template, "Mappings", template_file)
        self._condition_values: dict[str, bool] = {}
        self._in_progress: set[str] = set()
        self.outputs: dict = _mapping(template, "Outputs", template_file)
        self.resources: dict[str, Resource] = _resources(template, template_file)
        # A resource whose Condition is false is never created. (Conditions cannot refer to
        # resources, so evaluating them while every resource is still listed changes nothing.)
        self._left_out: set[str] = set()
        self._left_out = {
            lid
            for lid, condition in _resource_conditions(template).items()
            if not self._condition(condition, f"Resources.{lid}.Condition")
        }
        for lid in self._left_out:
            del self.resources[lid]

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type == type_]

    def ref(self, logical_id: str) -> str:
        """What `Ref` returns for a resource: its physical id, as CloudFormation defines it."""
        return self._ref_resource(logical_id, f"Ref {logical_id}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        return self._get_att(logical_id, attribute, f"Fn::GetAtt {logical_id}.{attribute}")

    def resolve(self, value: Any, where: str = "") -> Any:
        """Deep-resolve intrinsic functions in `value`; `where` (a template path) goes into errors.

        A value that is `Ref: AWS::NoValue` as a whole resolves to None.
        """
        resolved = self._resolve(value, where or "template")
        return None if resolved is _NO_VALUE else resolved

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties as its service receives them: intrinsics resolved, then
        checked against its type's schema (`assembly_schema`) as CloudFormation checks them
        before it creates anything, so a reader gets the types it expects."""
        where = f"Resources.{logical_id}.Properties"
        resource = self._resource(logical_id, where)
        resolved = self._resolve(resource.properties, where)
        if resource.type not in SCHEMAS:
            return resolved
        try:
            return checked(resolved, SCHEMAS[resource.type])
        except SchemaError as error:
            path = "".join(_step(step) for step in error.path)
            raise self._error(f"{where}{path}", "Properties validation failed for resource "
                                                f"{logical_id} with message: {error.message}"
                              ) from None

    def code_path(self, logical_id: str) -> Path:
        """The folder holding a function's code (the asset its `Code.S3Key` names) or a layer's
        content (`Content.S3Key`)."""
        resource = self._resource(logical_id, f"Resources.{logical_id}.Properties.Code")
        prop = _CODE_PROPERTY.get(resource.type)
        where = f"Resources.{logical_id}.Properties.{prop or 'Code'}"
        if prop is None:
            raise self._error(where, f"{logical_id} is a {resource.type}, not a function or a "
                                     "layer")
        code = resource.properties.get(prop)
        if not isinstance(code, dict):
            raise self._error(where, f"the {resource.type.rsplit(':', 1)[1].lower()} has no "
                                     f"{prop}")
        if "ZipFile" in code:
            raise self._error(where, "inline code (Code.ZipFile) has no asset folder: the "
                                     "function's reader writes it to the state folder")
        if "ImageUri" in code:
            raise self._error(where, "container image functions (Code.ImageUri) are not supported")
        key = None
        path = None
        if "S3Key" in code:
            key = self._string(self._resolve(code["S3Key"], f"{where}.S3Key"), f"{where}.S3Key")
            path = self._asset_paths.get(key)
        if path is None and "aws:asset:path" in resource.metadata:
            path = self.directory / str(resource.metadata["aws:asset:path"])
        if path is None:
            raise self._error(
                where,
                f"S3Key {key!r} is not an asset of this assembly (not in its assets manifest, "
                f"and the {resource.type} has no aws:asset:path metadata)",
            )
        if path.is_file():
            raise self._error(
                where, f"asset {path} is a file (a prebuilt zip?), not a folder of code"
            )
        if not path.is_dir():
            raise self._error(where, f"asset folder {path} does not exist or cannot be read")
        return path

    def function_of(self, logical_id: str) -> str:
        """The name of the function a version or an alias belongs to: its `FunctionName`, a name
        or an ARN (full or partial)."""
        return split_qualifier(self._property_text(logical_id, "FunctionName"))[0]

    def version_number(self, logical_id: str) -> str:
        """A version's number: CloudFormation publishes each `AWS::Lambda::Version` of a
        function in turn, so they are numbered 1, 2... in the template's order."""
        function = self.function_of(logical_id)
        versions = [r.logical_id for r in self.of_type(VERSION)
                    if self.function_of(r.logical_id) == function]
        return str(versions.index(logical_id) + 1)

    def outputs_resolved(self) -> dict[str, str]:
        """The stack's outputs, with API Gateway URLs pointing at the local endpoint."""
        resolved = {}
        for key, output in self.outputs.items():
            where = f"Outputs.{key}"
            if not isinstance(output, dict) or "Value" not in output:
                raise self._error(where, "an output needs a Value")
            if "Condition" in output and not self._condition(output["Condition"], where):
                continue
            value = self._resolve(output["Value"], f"{where}.Value")
            text = (
                ",".join(self._string(v, where) for v in value)
                if isinstance(value, list)
                else self._string(value, where)
            )
            resolved[key] = self._local_url(text)
        return resolved

    def _local_url(self, text: str) -> str:
        for api in self.of_type("AWS::ApiGateway::RestApi"):
            aws_url = f"https://{self.ref(api.logical_id)}.execute-api.{self.region}.{URL_SUFFIX}"
            text = text.replace(aws_url, self._endpoint_url)
        return text

    # -- names and ids ---------------------------------------------------------------------

    def _resource(self, logical_id: Any, where: str) -> Resource:
        if not isinstance(logical_id, str):
            raise self._error(where, f"expected a logical id, got {logical_id!r}")
        if logical_id in self.resources:
            return self.resources[logical_id]
        if logical_id in self._left_out:
            raise self._error(where, f"resource {logical_id} is left out by its Condition")
        raise self._error(where, f"unknown logical id {logical_id!r}")

    def _name(self, logical_id: str, where: str) -> str:
        resource = self._resource(logical_id, where)
        prop, limit = _NAMES.get(resource.type, ("", _DEFAULT_NAME_LIMIT))
        if prop in resource.properties:
            prop_where = f"Resources.{logical_id}.Properties.{prop}"
            if prop_where in self._in_progress:
                raise self._error(prop_where, f"the name of {logical_id} refers to itself")
            self._in_progress.add(prop_where)
            try:
                value = self._resolve(resource.properties[prop], prop_where)
            finally:
                self._in_progress.discard(prop_where)
            return self._string(value, prop_where)
        suffix = ".fifo" if self._is_fifo(resource) else ""
        return _shorten(f"{self.name}-{logical_id}", limit - len(suffix)) + suffix

    def _is_fifo(self, resource: Resource) -> bool:
        prop = {"AWS::SQS::Queue": "FifoQueue", "AWS::SNS::Topic": "FifoTopic"}.get(resource.type)
        if prop is None:
            return False
        where = f"Resources.{resource.logical_id}.Properties.{prop}"
        return self._resolve(resource.properties.get(prop, False), where) in (True, "true")

    def _rule_bus(self, resource: Resource) -> str:
        where = f"Resources.{resource.logical_id}.Properties.EventBusName"
        bus = self._resolve(resource.properties.get("EventBusName", "default"), where)
        bus = self._string(bus, where)
        # EventBusName may be a name or an ARN (arn:aws:events:region:account:event-bus/name).
        _, found, after = bus.partition(":event-bus/")
        return after if bus.startswith("arn:") and found else bus

    def _ref_resource(self, logical_id: str, where: str) -> str:
        resource = self._resource(logical_id, where)
        kind = resource.type
        if kind in _GENERATED_IDS:
            return _short_id(self.name, logical_id)
        if kind == "AWS::ApiGateway::Stage":
            stage_where = f"Resources.{logical_id}.Properties.StageName"
            return self._string(
                self._resolve(resource.properties.get("StageName"), stage_where), stage_where
            )
        if kind in (VERSION, ALIAS, LAYER):
            return self._lambda_arn(resource, where)
        name = self._name(logical_id, where)
        if kind == "AWS::SQS::Queue":
            return f"{self._endpoint_url}/{self.account}/{name}"
        if kind == "AWS::SNS::Topic":
            return self._get_att(logical_id, "TopicArn", where)
        if kind == "AWS::Events::Rule":
            # CloudFormation returns "bus|rule" for a rule on a custom bus, the name otherwise.
            bus = self._rule_bus(resource)
            return name if bus == "default" else f"{bus}|{name}"
        return name

    def _get_att(self, logical_id: str, attribute: str, where: str) -> str:
        resource = self._resource(logical_id, where)
        kind = resource.type
        name = self._name(logical_id, where) if kind in _NAMES else ""
        arn = f"arn:{PARTITION}"
        region, account = self.region, self.account
        match kind, attribute:
            case "AWS::DynamoDB::Table", "Arn":
                return f"{arn}:dynamodb:{region}:{account}:table/{name}"
            case "AWS::DynamoDB::Table", "StreamArn":
                table = f"{arn}:dynamodb:{region}:{account}:table/{name}"
                return f"{table}/stream/1970-01-01T00:00:00.000"
            case "AWS::Events::EventBus", "Arn":
                return f"{arn}:events:{region}:{account}:event-bus/{name}"
            case "AWS::Events::EventBus", "Name":
                return name
            case "AWS::Events::Rule", "Arn":
                bus = self._rule_bus(resource)
                path = name if bus == "default" else f"{bus}/{name}"
                return f"{arn}:events:{region}:{account}:rule/{path}"
            case "AWS::Lambda::Function", "Arn":
                return f"{arn}:lambda:{region}:{account}:function:{name}"
            case (
                ("AWS::Lambda::Version", "FunctionArn")
                | ("AWS::Lambda::Alias", "AliasArn")
                | ("AWS::Lambda::LayerVersion", "LayerVersionArn")
            ):
                return self._lambda_arn(resource, where)
            case "AWS::Lambda::Version", "Version":
                return self.version_number(logical_id)
            case "AWS::SQS::Queue", "Arn":
                return f"{arn}:sqs:{region}:{account}:{name}"
            case "AWS::SQS::Queue", "QueueName":
                return name
            case "AWS::SQS::Queue", "QueueUrl":
                return self._ref_resource(logical_id, where)
            case "AWS::SNS::Topic", "TopicArn":
                return f"{arn}:sns:{region}:{account}:{name}"
            case "AWS::SNS::Topic", "TopicName":
                return name
            case "AWS::IAM::Role", "Arn":
                path_where = f"Resources.{logical_id}.Properties.Path"
                path = self._resolve(resource.properties.get("Path", "/"), path_where)
                return f"{arn}:iam::{account}:role{self._string(path, path_where)}{name}"
            case "AWS::Logs::LogGroup", "Arn":
                return f"{arn}:logs:{region}:{account}:log-group:{name}:*"
            case "AWS::ApiGateway::RestApi", "RootResourceId":
                return _short_id(self.name, logical_id, "/")
            case (
                ("AWS::ApiGateway::RestApi", "RestApiId")
                | ("AWS::ApiGateway::Resource", "ResourceId")
                | ("AWS::ApiGateway::Deployment", "DeploymentId")
            ):
                return self._ref_resource(logical_id, where)
        raise self._error(where, f"the sandbox does not know attribute {attribute!r} of {kind}")

    def _lambda_arn(self, resource: Resource, where: str) -> str:
        """The ARN CloudFormation returns for a version (`function:name:3`), an alias
        (`function:name:live`) or a layer version (`layer:name:1`)."""
        prefix = f"arn:{PARTITION}:lambda:{self.region}:{self.account}"
        if resource.type == LAYER:
            name = self._name(resource.logical_id, where)
            same = [r.logical_id for r in self.of_type(LAYER)
                    if self._name(r.logical_id, where) == name]
            return f"{prefix}:layer:{name}:{same.index(resource.logical_id) + 1}"
        function = self.function_of(resource.logical_id)
        qualifier = (self.version_number(resource.logical_id) if resource.type == VERSION
                     else self._property_text(resource.logical_id, "Name"))
        return f"{prefix}:function:{function}:{qualifier}"

    def _property_text(self, logical_id: str, prop: str) -> str:
        """A resource's string property resolved, guarded against referring to itself."""
        where = f"Resources.{logical_id}.Properties.{prop}"
        resource = self._resource(logical_id, where)
        if prop not in resource.properties:
            raise self._error(where, f"{logical_id} has no {prop}")
        if where in self._in_progress:
            raise self._error(where, f"the {prop} of {logical_id} refers to itself")
        self._in_progress.add(where)
        try:
            return self._string(self._resolve(resource.properties[prop], where), where)
        finally:
            self._in_progress.discard(where)

    # -- intrinsic functions ---------------------------------------------------------------

    def _error(self, where: str, message: str) -> AssemblyError:
        return AssemblyError(f"{self.template_file}: {where}: {message}")

    def _string(self, value: Any, where: str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        raise self._error(where, f"expected a string, got {value!r}")

    def _resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            items = (self._resolve(item, f"{where}[{i}]") for i, item in enumerate(value))
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument, where)
            if key.startswith("Fn::"):
                return self._function(key, argument, f"{where}.{key}")
        resolved = {}
        for key, item in value.items():
            item = self._resolve(item, f"{where}.{key}")
            if item is not _NO_VALUE:
                resolved[key] = item
        return resolved

    def _ref(self, name: Any, where: str) -> Any:
        if not isinstance(name, str):
            raise self._error(where, f"Ref needs a logical id or a parameter name, got {name!r}")
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": self.name,
            "AWS::StackId": (
                f"arn:{PARTITION}:cloudformation:{self.region}:{self.account}:stack/{self.name}/"
                f"{hashlib.sha256(self.name.encode()).hexdigest()[:32]}"
            ),
            "AWS::NotificationARNs": [],
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self._parameters:
            return self._parameter(name, where)
        if name.startswith("AWS::"):
            raise self._error(where, f"pseudo parameter {name} is not supported")
        return self._ref_resource(name, where)

    def _parameter(self, name: str, where: str) -> Any:
        parameter = self._parameters[name]
        if not isinstance(parameter, dict) or "Default" not in parameter:
            raise self._error(
                where,
                f"parameter {name} has no Default; the sandbox cannot be given parameter values",
            )
        default = parameter["Default"]
        if str(parameter.get("Type", "")).startswith("List<") or parameter.get(
            "Type"
        ) == "CommaDelimitedList":
            return [item.strip() for item in str(default).split(",")]
        return self._string(default, f"Parameters.{name}.Default")

    def _function(self, name: str, argument: Any, where: str) -> Any:
        if name == "Fn::If":
            condition, if_true, if_false = self._arguments(argument, 3, where)
            chosen = if_true if self._condition(condition, where) else if_false
            return self._resolve(chosen, where)
        if name == "Fn::GetAtt":
            return self._function_get_att(argument, where)
        if name == "Fn::Sub":
            return self._function_sub(argument, where)
        argument = self._resolve(argument, where)
        if name == "Fn::Join":
            delimiter, items = self._arguments(argument, 2, where)
            if not isinstance(items, list):
                raise self._error(where, "Fn::Join needs a list to join")
            return self._string(delimiter, where).join(self._string(i, where) for i in items)
        if name == "Fn::Select":
            index, items = self._arguments(argument, 2, where)
            if not isinstance(items, list):
                raise self._error(where, "Fn::Select needs a list to select from")
            if not str(index).isdigit() or int(index) >= len(items):
                raise self._error(where, f"index {index!r} is not in a list of {len(items)}")
            return items[int(index)]
        if name == "Fn::Split":
            delimiter, source = self._arguments(argument, 2, where)
            return self._string(source, where).split(self._string(delimiter, where))
        if name == "Fn::FindInMap":
            return self._function_find_in_map(argument, where)
        if name == "Fn::GetAZs":
            return [f"{self.region}{zone}" for zone in "abc"]
        if name == "Fn::Base64":
            return base64.b64encode(self._string(argument, where).encode()).decode()
        raise self._error(where, f"{name} is not supported by the sandbox")

    def _arguments(self, argument: Any, count: int, where: str) -> list:
        if not isinstance(argument, list) or len(argument) != count:
            raise self._error(where, f"expected a list of {count} arguments, got {argument!r}")
        return argument

    def _function_get_att(self, argument: Any, where: str) -> str:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        logical_id, attribute = self._arguments(argument, 2, where)
        attribute = self._string(self._resolve(attribute, where), where)
        return self._get_att(logical_id, attribute, where)

    def _function_sub(self, argument: Any, where: str) -> str:
        if isinstance(argument, list):
            text, variables = self._arguments(argument, 2, where)
            if not isinstance(variables, dict):
                raise self._error(where, "the second argument of Fn::Sub must be an object")
            variables = self._resolve(variables, where)
        else:
            text, variables = argument, {}
        if not isinstance(text, str):
            raise self._error(where, f"Fn::Sub needs a string, got {text!r}")

        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return self._string(variables[name], where)
            logical_id, dot, attribute = name.partition(".")
            if dot and logical_id in self.resources:
                return self._get_att(logical_id, attribute, where)
            return self._string(self._ref(name, where), where)

        return _SUB_VARIABLE.sub(substitute, text)

    def _function_find_in_map(self, argument: Any, where: str) -> Any:
        map_name, top_key, second_key = self._arguments(argument, 3, where)
        try:
            return self._mappings[map_name][top_key][second_key]
        except (KeyError, TypeError):
            raise self._error(
                where, f"Mappings has no {map_name}.{top_key}.{second_key}"
            ) from None

    # -- conditions -------------------------------------------------------------------------

    def _condition(self, name: Any, where: str) -> bool:
        if not isinstance(name, str) or name not in self._conditions:
            raise self._error(where, f"unknown condition {name!r}")
        if name not in self._condition_values:
            key = f"Conditions.{name}"
            if key in self._in_progress:
                raise self._error(key, f"condition {name} refers to itself")
            self._in_progress.add(key)
            try:
                self._condition_values[name] = self._evaluate(self._conditions[name], key)
            finally:
                self._in_progress.discard(key)
        return self._condition_values[name]

    def _evaluate(self, expression: Any, where: str) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            ((name, argument),) = expression.items()
            if name == "Condition":
                return self._condition(argument, where)
            if name == "Fn::Equals":
                left, right = self._arguments(argument, 2, where)
                left, right = self._resolve(left, where), self._resolve(right, where)
                return self._string(left, where) == self._string(right, where)
            if name == "Fn::Not":
                (inner,) = self._arguments(argument, 1, where)
                return not self._evaluate(inner, where)
            if name in ("Fn::And", "Fn::Or") and isinstance(argument, list):
                values = [self._evaluate(inner, where) for inner in argument]
                return all(values) if name == "Fn::And" else any(values)
        raise self._error(where, f"not a condition the sandbox can evaluate: {expression!r}")


def split_qualifier(name_or_arn: str) -> tuple[str, str | None]:
    """(function name, qualifier or None) from a name, ARN or partial ARN, qualified or not:
    `arn:aws:lambda:us-east-1:1234:function:f:live`, `1234:function:f`, `f:3`."""
    _, found, after = name_or_arn.partition("function:")
    name, _, qualifier = (after if found else name_or_arn).partition(":")
    return name, qualifier or None


def _step(step: str | int) -> str:
    """One step of a property path: .Name, [0], or ["a key with spaces"]."""
    if isinstance(step, int):
        return f"[{step}]"
    return f".{step}" if re.fullmatch(r"[^\s\[\]\"]+", step) else f"[{json.dumps(step)}]"


def _mapping(template: dict, section: str, template_file: Path) -> dict:
    value = template.get(section) or {}
    if not isinstance(value, dict):
        raise AssemblyError(f"{template_file}: {section} is not an object")
    return value


def _resources(template: dict, template_file: Path) -> dict[str, Resource]:
    raw = template.get("Resources")
    if not isinstance(raw, dict) or not raw:
        raise AssemblyError(f"{template_file}: Resources is missing, empty or not an object")
    resources = {}
    for logical_id, body in raw.items():
        where = f"{template_file}: Resources.{logical_id}"
        if not isinstance(body, dict):
            raise AssemblyError(f"{where}: a resource must be an object")
        kind = body.get("Type")
        if not isinstance(kind, str) or not kind:
            raise AssemblyError(f"{where}: the resource has no Type")
        properties = body.get("Properties") or {}
        metadata = body.get("Metadata") or {}
        if not isinstance(properties, dict) or not isinstance(metadata, dict):
            raise AssemblyError(f"{where}: Properties and Metadata must be objects")
        resources[logical_id] = Resource(logical_id, kind, properties, metadata)
    return resources


def _resource_conditions(template: dict) -> dict[str, Any]:
    return {
        logical_id: body["Condition"]
        for logical_id, body in template["Resources"].items()
        if "Condition" in body
    }


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AssemblyError(f"{path}: cannot be read: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise AssemblyError(
            f"{path}: line {error.lineno} column {error.colno}: malformed JSON: {error.msg}"
        ) from None


def _region(environment: Any) -> str:
    """`aws://account/region` -> region; an environment-agnostic stack runs in DEFAULT_REGION."""
    if isinstance(environment, str) and environment.startswith("aws://"):
        region = environment.removeprefix("aws://").partition("/")[2]
        if region and region != "unknown-region":
            return region
    return DEFAULT_REGION


def _asset_paths(directory: Path, manifest_files: list[Path]) -> dict[str, Path]:
    """S3 object key -> local asset path, from the assets manifests CDK writes for publishing."""
    paths = {}
    for manifest_file in manifest_files:
        manifest = _read_json(manifest_file)
        files = manifest.get("files", {}) if isinstance(manifest, dict) else None
        if not isinstance(files, dict):
            raise AssemblyError(f"{manifest_file}: files is not an object")
        for asset_id, asset in files.items():
            source = asset.get("source", {}) if isinstance(asset, dict) else {}
            if not isinstance(source, dict) or not isinstance(source.get("path"), str):
                continue  # an asset built by a command: nothing local to point at
            for destination in (asset.get("destinations") or {}).values():
                key = destination.get("objectKey") if isinstance(destination, dict) else None
                if not isinstance(key, str):
                    raise AssemblyError(f"{manifest_file}: files.{asset_id}: no objectKey")
                paths[key] = directory / source["path"]
    return paths


def _stacks(directory: Path, endpoint_url: str) -> list[Stack]:
    if not directory.is_dir():
        raise AssemblyError(f"{directory}: no such folder (synthesize the app first: cdk synth)")
    manifest_file = directory / "manifest.json"
    if not manifest_file.is_file():
        raise AssemblyError(f"{directory}: no manifest.json, so not a CDK cloud assembly")
    manifest = _read_json(manifest_file)
    artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
    if not isinstance(artifacts, dict):
        raise AssemblyError(f"{manifest_file}: artifacts is missing or not an object")
    for artifact_id, artifact in artifacts.items():
        if not isinstance(artifact, dict) or not isinstance(artifact.get("properties", {}), dict):
            raise AssemblyError(f"{manifest_file}: artifacts.{artifact_id} is not an object")
    asset_manifests = {
        artifact_id: directory / str(artifact.get("properties", {}).get("file"))
        for artifact_id, artifact in artifacts.items()
        if artifact.get("type") == "cdk:asset-manifest"
    }
    stacks = []
    for artifact_id, artifact in artifacts.items():
        kind = artifact.get("type")
        properties = artifact.get("properties", {})
        where = f"{manifest_file}: artifacts.{artifact_id}"
        if kind == "cdk:cloud-assembly":  # the stacks of a CDK Stage live in a nested assembly
            stacks += _stacks(directory / str(properties.get("directoryName")), endpoint_url)
        if kind != "aws:cloudformation:stack":
            continue
        template_name = properties.get("templateFile")
        if not isinstance(template_name, str):
            raise AssemblyError(f"{where}: properties.templateFile is missing")
        template_file = directory / template_name
        if not template_file.is_file():
            raise AssemblyError(f"{where}: template file {template_file} does not exist")
        template = _read_json(template_file)
        if not isinstance(template, dict):
            raise AssemblyError(f"{template_file}: the template is not a JSON object")
        own = [asset_manifests[d] for d in artifact.get("dependencies", []) if d in asset_manifests]
        stacks.append(
            Stack(
                name=str(properties.get("stackName") or artifact_id),
                region=_region(artifact.get("environment")),
                directory=directory,
                template_file=template_file,
                template=template,
                endpoint_url=endpoint_url,
                asset_paths=_asset_paths(directory, own or list(asset_manifests.values())),
            )
        )
    return stacks


def read_assembly(directory: Path, endpoint_url: str) -> list[Stack]:
    """Every stack of the assembly in `directory`; `endpoint_url` is where the sandbox listens.

    The endpoint is part of some values: `Ref` of a queue is its URL, and the stack outputs give
    the REST API's local URL.
    """
    directory = Path(directory)
    stacks = _stacks(directory, endpoint_url)
    if not stacks:
        raise AssemblyError(
            f"{directory / 'manifest.json'}: no stack in it "
            "(no artifact of type aws:cloudformation:stack)"
        )
    return stacks
