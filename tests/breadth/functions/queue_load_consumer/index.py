"""Consumes a batch of SQS messages and prints, for each, what became of it with the receive
count Lambda gave: `HANDLED {...}`, or `FAILED {...}` for a body saying "fail", which it reports
as a batch item failure. A batch holding a message whose body says "hold" (seconds) on its first
receive prints `HOLDING {...}` with the worker's pid and waits that long first, so a test can kill
the worker, or the sandbox, while the batch is in flight."""

import json
import os
import time


def handler(event, context):
    records = event["Records"]
    hold = max((json.loads(r["body"]).get("hold", 0) for r in records
                if r["attributes"]["ApproximateReceiveCount"] == "1"), default=0)
    if hold:
        print("HOLDING " + json.dumps({"pid": os.getpid(),
                                       "messageIds": [r["messageId"] for r in records]}),
              flush=True)
        time.sleep(hold)
    failures = []
    for record in records:
        body = json.loads(record["body"])
        seen = {"messageId": record["messageId"], "n": body.get("n"),
                "receives": int(record["attributes"]["ApproximateReceiveCount"])}
        if body.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
        print(("FAILED " if body.get("fail") else "HANDLED ") + json.dumps(seen), flush=True)
    return {"batchItemFailures": failures}
