"""A REQUEST authorizer: the `x-who` header `friend` is allowed on exactly this method ARN,
anyone else denied."""

import json


def handler(event, context):
    print("RECEIVED " + json.dumps(event, sort_keys=True))
    headers = {name.lower(): value for name, value in event["headers"].items()}
    who = headers.get("x-who")
    return {
        "principalId": who,
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow" if who == "friend" else "Deny",
             "Resource": event["methodArn"]}]},
        "context": {"who": who},
    }
