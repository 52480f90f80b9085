"""A REST API's Lambda proxy backend: answers the event it received as its JSON body, so a test
reads back what API Gateway handed over; `?binary=1` answers a base64 PNG-ish body instead."""

import base64
import json


def handler(event, context):
    if (event.get("queryStringParameters") or {}).get("binary"):
        return {"statusCode": 200, "headers": {"Content-Type": "image/png"},
                "body": base64.b64encode(b"\x89PNG\r\n").decode(), "isBase64Encoded": True}
    return {"statusCode": 200, "body": json.dumps(event)}
