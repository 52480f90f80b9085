"""Consumes a batch of SQS messages: prints each it handled as `HANDLED <body>`, and reports the
ones whose body says "fail" as batch item failures, so they come back and are redriven."""

import json


def handler(event, context):
    failures = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        if body.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
        else:
            print("HANDLED " + json.dumps({"body": body, "messageId": record["messageId"],
                                           "receives": record["attributes"][
                                               "ApproximateReceiveCount"]}, sort_keys=True))
    return {"batchItemFailures": failures}
