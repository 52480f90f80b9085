"""The answers API Gateway makes itself (its "gateway responses"), with the status, body and
`x-amzn-ErrorType` a client sees when no integration ran: a denied caller, a missing key, a
failing authorizer. Each is AWS's default for its type (developer guide, "Gateway response
types"): `{"message": ...}`; an authorizer that fails says `{"message":null}`."""

from __future__ import annotations

import json

from sandbox.core.wire import Response


def gateway_error(status: int, error_type: str, message: str | None) -> Response:
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)], body


# Lambda and Cognito authorizers, AWS_IAM methods
UNAUTHORIZED = gateway_error(401, "UnauthorizedException", "Unauthorized")
EXPLICIT_DENY = gateway_error(
    403, "AccessDeniedException",
    "User is not authorized to access this resource with an explicit deny")
NOT_ALLOWED = gateway_error(403, "AccessDeniedException",
                            "User is not authorized to access this resource")
AUTHORIZER_ERROR = gateway_error(500, "AuthorizerConfigurationException", None)
MISSING_TOKEN = gateway_error(403, "MissingAuthenticationTokenException",
                              "Missing Authentication Token")
# API keys and usage plans
FORBIDDEN = gateway_error(403, "ForbiddenException", "Forbidden")
LIMIT_EXCEEDED = gateway_error(429, "LimitExceededException", "Limit Exceeded")
# An integration API Gateway cannot run as configured (no mock response matches, a stage
# variable naming no function), Lambda refused to run (throttled, payload over 6 MB), or the
# sandbox's disk is full
CONFIGURATION_ERROR: Response = (
    500, [("Content-Type", "application/json"),
          ("x-amzn-ErrorType", "InternalServerErrorException")],
    b'{"message": "Internal server error"}')
