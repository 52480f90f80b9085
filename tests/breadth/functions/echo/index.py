"""Records what it received, so a test can read back exactly what a target was given: each
event is printed on one line as `RECEIVED <json>`, and answered as it came."""

import json


def handler(event, context):
    print("RECEIVED " + json.dumps(event, sort_keys=True))
    return event
