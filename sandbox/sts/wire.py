"""STS's GetCallerIdentity, so that `aws sts get-caller-identity` (the first command of a
deploy, and of many scripts) answers against the sandbox as against AWS.

The AWS query protocol (`core/query`), version 2011-06-15. The sandbox has one account,
`000000000000` (the account of every local ARN), and accepts any credentials, so the caller is
that account's root: `arn:aws:iam::000000000000:root`, whose UserId is the account id, as STS
answers for root credentials. The other STS actions are not emulated: they answer
`InvalidAction` naming the sandbox.
"""

from __future__ import annotations

from sandbox.assembly import ACCOUNT
from sandbox.core import query
from sandbox.core.wire import Response

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
NOT_SERVED = {"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "AssumeRoot",
              "DecodeAuthorizationMessage", "GetAccessKeyInfo", "GetFederationToken",
              "GetSessionToken"}


class StsWire:
    def owns(self, action: str) -> bool:
        return action == "GetCallerIdentity" or action in NOT_SERVED

    def handle(self, action: str, params: dict[str, str]) -> Response:
        if action in NOT_SERVED:
            return query.error(400, "InvalidAction",
                               f"The sandbox does not emulate STS {action}.", NAMESPACE)
        return query.answer(action, NAMESPACE, {
            "UserId": ACCOUNT, "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root"})
