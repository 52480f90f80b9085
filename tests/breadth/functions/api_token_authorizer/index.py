"""A TOKEN authorizer: `Bearer allow-NAME` allows every method, `Bearer deny` denies, `Bearer
nobody` is Unauthorized, `Bearer crash` raises, `Bearer odd` answers no policy at all."""

import json


def handler(event, context):
    print("RECEIVED " + json.dumps(event, sort_keys=True))
    token = event["authorizationToken"].removeprefix("Bearer ")
    if token == "nobody":
        raise Exception("Unauthorized")
    if token == "crash":
        raise RuntimeError("the authorizer broke")
    if token == "odd":
        return {"principalId": "odd"}
    effect = "Allow" if token.startswith("allow-") else "Deny"
    api = event["methodArn"].split("/")[0]
    return {
        "principalId": token.removeprefix("allow-"),
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": effect, "Resource": f"{api}/*/GET/*"}]},
        "context": {"user": token.removeprefix("allow-"), "level": 7, "admin": False},
    }
