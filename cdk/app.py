#!/usr/bin/env python3
"""The CDK app: one order choreography stack, checked by cdk-nag's AwsSolutions rules.

`cdk synth`, `cdk deploy` and `cdk diff` run this file. The stack is named `OrderChoreography`
unless the context says otherwise (`-c stack_name=OrderChoreographyDev`), so one account can hold
several copies.
"""

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from choreography import OrderChoreographyStack

DEFAULT_STACK_NAME = "OrderChoreography"


def build(app: cdk.App) -> OrderChoreographyStack:
    """Adds the stack and the checks to app; the tests build their app through this too.

    The stack name is also the construct id, so the CLI's stack selector is the name the user
    gave (`cdk diff OrderChoreographyDev`).
    """
    stack_name = app.node.try_get_context("stack_name") or DEFAULT_STACK_NAME
    stack = OrderChoreographyStack(app, stack_name)
    # A validation plugin: any finding that is not acknowledged fails the synth.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


if __name__ == "__main__":
    application = cdk.App()
    build(application)
    application.synth()
