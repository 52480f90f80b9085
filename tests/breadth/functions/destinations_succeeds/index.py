"""Succeeds: answers with what it was given, so an OnSuccess record's responsePayload can be
checked against its requestPayload."""


def handler(event, context):
    return {"handled": event.get("detail")}
