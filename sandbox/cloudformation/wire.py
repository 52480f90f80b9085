"""CloudFormation's read calls over the assembly's stacks, so that scripts written for a deployed
stack (the README's `output()` helper over `describe-stacks`) run unchanged against the sandbox.

The AWS query protocol (`core/query`), version 2010-05-15, answered in XML as the CLI parses it.
Every stack of the assembly is CREATE_COMPLETE since the sandbox started. Served:
- DescribeStacks (one stack by name or stack id, or all): Outputs resolved to their local
  values (API URLs are the sandbox's, queue URLs its queues', names the local physical ids),
  Parameters at their template defaults;
- ListStacks, ListStackResources, DescribeStackResource, DescribeStackResources (logical to
  physical ids), GetTemplate (the synthesized template).
An unknown stack is `ValidationError` "Stack with id X does not exist" (400); an unknown
resource "Resource X does not exist for stack Y". Calls that would change a stack answer
`InvalidAction` naming the sandbox: the template is the assembly's, re-synthesized and restarted.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sandbox.assembly import AssemblyError, Stack
from sandbox.core import query
from sandbox.core.wire import Response

NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
COMPLETE = "CREATE_COMPLETE"
NOT_SERVED = {"CreateStack", "UpdateStack", "DeleteStack", "CreateChangeSet", "ExecuteChangeSet",
              "DeleteChangeSet", "DescribeChangeSet", "ListChangeSets", "DescribeStackEvents",
              "ValidateTemplate", "ContinueUpdateRollback", "CancelUpdateStack",
              "DetectStackDrift", "ListExports", "ListImports", "GetTemplateSummary"}


class StackError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def timestamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"


class CloudFormationWire:
    def __init__(self, stacks: list[Stack], started: float | None = None) -> None:
        self.stacks = {stack.name: stack for stack in stacks}
        self.created = timestamp(started or time.time())
        self.ids = {stack.name: f"arn:aws:cloudformation:{stack.region}:{stack.account}:stack/"
                                f"{stack.name}/{uuid.uuid5(uuid.NAMESPACE_URL, stack.name)}"
                    for stack in stacks}
        self.actions = {
            "DescribeStacks": self.describe_stacks,
            "ListStacks": self.list_stacks,
            "ListStackResources": self.list_stack_resources,
            "DescribeStackResource": self.describe_stack_resource,
            "DescribeStackResources": self.describe_stack_resources,
            "GetTemplate": self.get_template,
        }

    def owns(self, action: str) -> bool:
        return action in self.actions or action in NOT_SERVED

    def handle(self, action: str, params: dict[str, str]) -> Response:
        if action in NOT_SERVED:
            return query.error(400, "InvalidAction", f"The sandbox runs the assembly's stacks as "
                                                     f"synthesized and does not emulate "
                                                     f"CloudFormation {action}.", NAMESPACE)
        try:
            return query.answer(action, NAMESPACE, self.actions[action](params))
        except StackError as failure:
            return query.error(400, "ValidationError", failure.message, NAMESPACE)

    def _stack(self, params: dict[str, str]) -> Stack:
        name = params.get("StackName", "")
        for stack_name, stack_id in self.ids.items():
            if name in (stack_name, stack_id):
                return self.stacks[stack_name]
        raise StackError(f"Stack with id {name} does not exist")

    def _template(self, stack: Stack) -> dict[str, Any]:
        return json.loads(stack.template_file.read_text())

    def _physical_id(self, stack: Stack, logical_id: str) -> str:
        try:
            return stack.ref(logical_id)
        except AssemblyError:  # a type whose Ref the sandbox cannot name: its logical id
            return logical_id

    def describe_stacks(self, params: dict[str, str]) -> dict[str, Any]:
        stacks = [self._stack(params)] if params.get("StackName") else self.stacks.values()
        return {"Stacks": [self._described(stack) for stack in stacks]}

    def _described(self, stack: Stack) -> dict[str, Any]:
        template = self._template(stack)
        outputs = stack.outputs_resolved()
        return {
            "StackId": self.ids[stack.name], "StackName": stack.name,
            "Description": template.get("Description"),
            "Parameters": [{"ParameterKey": key, "ParameterValue": str(p.get("Default", ""))}
                           for key, p in template.get("Parameters", {}).items()],
            "CreationTime": self.created, "StackStatus": COMPLETE, "DisableRollback": False,
            "NotificationARNs": [], "Tags": [], "EnableTerminationProtection": False,
            "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"},
            "Outputs": [self._output(stack, key, outputs[key]) for key in outputs],
        }

    def _output(self, stack: Stack, key: str, value: str) -> dict[str, Any]:
        output = stack.outputs[key]
        export = output.get("Export", {}).get("Name")
        return {"OutputKey": key, "OutputValue": value,
                "Description": output.get("Description"),
                "ExportName": stack.resolve(export, f"Outputs.{key}.Export.Name")
                if export else None}

    def list_stacks(self, params: dict[str, str]) -> dict[str, Any]:
        return {"StackSummaries": [
            {"StackId": self.ids[stack.name], "StackName": stack.name,
             "TemplateDescription": self._template(stack).get("Description"),
             "CreationTime": self.created, "StackStatus": COMPLETE,
             "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"}}
            for stack in self.stacks.values()]}

    def _resource(self, stack: Stack, logical_id: str) -> dict[str, Any]:
        return {"StackName": stack.name, "StackId": self.ids[stack.name],
                "LogicalResourceId": logical_id,
                "PhysicalResourceId": self._physical_id(stack, logical_id),
                "ResourceType": stack.resources[logical_id].type,
                "ResourceStatus": COMPLETE,
                "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"}}

    def list_stack_resources(self, params: dict[str, str]) -> dict[str, Any]:
        stack = self._stack(params)
        summaries = []
        for logical_id in stack.resources:
            summary = self._resource(stack, logical_id)
            del summary["StackName"], summary["StackId"]
            summaries.append(summary | {"LastUpdatedTimestamp": self.created})
        return {"StackResourceSummaries": summaries}

    def describe_stack_resource(self, params: dict[str, str]) -> dict[str, Any]:
        stack = self._stack(params)
        logical_id = params.get("LogicalResourceId", "")
        if logical_id not in stack.resources:
            raise StackError(f"Resource {logical_id} does not exist for stack {stack.name}")
        metadata = stack.resources[logical_id].metadata
        return {"StackResourceDetail": self._resource(stack, logical_id) | {
            "LastUpdatedTimestamp": self.created,
            "Metadata": json.dumps(metadata) if metadata else None}}

    def describe_stack_resources(self, params: dict[str, str]) -> dict[str, Any]:
        if not params.get("StackName") and params.get("PhysicalResourceId"):
            stack = next((s for s in self.stacks.values() for lid in s.resources
                          if self._physical_id(s, lid) == params["PhysicalResourceId"]), None)
            if stack is None:
                raise StackError(f"Stack for {params['PhysicalResourceId']} does not exist")
        else:
            stack = self._stack(params)
        wanted = params.get("LogicalResourceId")
        return {"StackResources": [
            self._resource(stack, lid) | {"Timestamp": self.created}
            for lid in stack.resources if wanted in (None, lid)
            and params.get("PhysicalResourceId") in (None, self._physical_id(stack, lid))]}

    def get_template(self, params: dict[str, str]) -> dict[str, Any]:
        stack = self._stack(params)
        return {"TemplateBody": stack.template_file.read_text(),
                "StagesAvailable": ["Original", "Processed"]}
