"""Always fails, so its asynchronous invocations run out of retries and take the failure
routes (OnFailure, DeadLetterConfig)."""

MESSAGE = "breadth destinations: always fails"


def handler(event, context):
    raise ValueError(MESSAGE)
