"""Who may call a method: Lambda authorizers (TOKEN, REQUEST), Cognito user pools, AWS_IAM.

Facts, from the REST API developer guide ("Use API Gateway Lambda authorizers", "Input to an
API Gateway Lambda authorizer", "Output from an API Gateway Lambda authorizer"):
- The identity source (`method.request.header.Authorization` for TOKEN; for REQUEST any of
  `method.request.header|querystring.NAME`, `stageVariables.NAME`, `context.NAME`) missing or
  empty, or a token not matching `IdentityValidationExpression` -> 401 Unauthorized, and the
  function is not called. A REQUEST authorizer with caching off (TTL 0) is called anyway.
- The function gets `{"type": "TOKEN", "authorizationToken", "methodArn"}`, or for REQUEST the
  proxy event's fields with `type` and `methodArn`; `methodArn` is
  `arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH`.
- It answers `principalId`, `policyDocument` (IAM: `Effect`, `Action` execute-api:Invoke,
  `Resource` with `*`/`?` wildcards; an explicit Deny wins), optional `context` (string, number
  or boolean values, handed to the integration as strings in `requestContext.authorizer`) and
  `usageIdentifierKey`. An error "Unauthorized" -> 401; any other error, or an answer not of
  that shape -> 500 `{"message": null}` (AuthorizerConfigurationException); Deny -> 403
  "...with an explicit deny"; no Allow for this method -> 403.
- The policy is cached by the token (TOKEN) or by the identity sources' values (REQUEST) for
  `AuthorizerResultTtlInSeconds` (default 300, 0 = off), and a cached policy is evaluated
  against each request's own method ARN.

Locally, not verified (said at start): an AWS_IAM method accepts any `Authorization` header (no
SigV4 check), a Cognito method any JWT (its payload is read, its signature and expiry not).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TTL_S = 300


class MalformedAnswer(ValueError):
    """The authorizer's answer is not one API Gateway accepts: the client gets a 500."""


@dataclass(frozen=True)
class Authorizer:
    authorizer_id: str
    name: str
    type: str  # "TOKEN", "REQUEST" or "COGNITO_USER_POOLS"
    function_arn: str  # "" for Cognito
    identity_sources: tuple[str, ...]
    validation: str | None = None  # IdentityValidationExpression (TOKEN, Cognito)
    ttl_s: int = DEFAULT_TTL_S


@dataclass(frozen=True)
class Caller:
    """What the identity sources read from one request."""

    headers: dict[str, str]  # lower-case names
    query: dict[str, str]
    stage_variables: dict[str, str]
    context: dict[str, Any]

    def source(self, expression: str) -> str | None:
        for prefix, values in (("method.request.header.", self.headers),
                               ("method.request.querystring.", self.query),
                               ("stageVariables.", self.stage_variables),
                               ("context.", self.context)):
            if expression.startswith(prefix):
                name = expression.removeprefix(prefix)
                value = values.get(name.lower() if values is self.headers else name)
                return None if value in (None, "") else str(value)
        return None


def identity(authorizer: Authorizer, caller: Caller) -> tuple[str, ...] | None:
    """The identity sources' values (the cache key); None: API Gateway's 401 without a call."""
    values = tuple(caller.source(source) for source in authorizer.identity_sources)
    if any(value is None for value in values):
        if authorizer.type == "REQUEST" and authorizer.ttl_s == 0:
            return tuple(value or "" for value in values)
        return None
    if authorizer.validation and not re.fullmatch(authorizer.validation, values[0] or ""):
        return None
    return values  # type: ignore[return-value]


def method_arn(region: str, account: str, api_id: str, stage: str, http_method: str,
               path: str) -> str:
    return f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{http_method}/" \
           f"{path.lstrip('/')}"


def authorizer_event(authorizer: Authorizer, arn: str, token: str,
                     proxy: dict[str, Any]) -> dict[str, Any]:
    if authorizer.type == "TOKEN":
        return {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}
    fields = ("resource", "path", "httpMethod", "headers", "multiValueHeaders",
              "queryStringParameters", "multiValueQueryStringParameters", "pathParameters",
              "stageVariables", "requestContext")
    return {"type": "REQUEST", "methodArn": arn, **{name: proxy[name] for name in fields}}


@dataclass(frozen=True)
class Decision:
    principal_id: str
    statements: list[dict[str, Any]]
    context: dict[str, str] = field(default_factory=dict)
    usage_key: str | None = None

    def effect(self, arn: str) -> str:
        """"Deny" (explicit), "Allow", or "" (nothing allows it: an implicit deny)."""
        effects = {s.get("Effect") for s in self.statements if _covers(s, arn)}
        return "Deny" if "Deny" in effects else "Allow" if "Allow" in effects else ""

    def request_context(self, latency_ms: int) -> dict[str, Any]:
        return {"principalId": self.principal_id, **self.context,
                "integrationLatency": latency_ms}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, text: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def _covers(statement: dict[str, Any], arn: str) -> bool:
    actions = _listed(statement.get("Action", []))
    if not any(_wildcard(str(action), "execute-api:Invoke") for action in actions):
        return False
    return any(_wildcard(str(resource), arn) for resource in _listed(statement.get("Resource")))


def _text(value: Any) -> str:
    """An authorizer context value as the integration sees it: always a string."""
    return value if isinstance(value, str) else json.dumps(value)


def decision(payload: bytes) -> Decision:
    """The authorizer's answer read as API Gateway reads it; MalformedAnswer otherwise."""
    try:
        answer = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise MalformedAnswer("the authorizer's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise MalformedAnswer("the authorizer's answer is not a JSON object")
    principal = answer.get("principalId")
    policy = answer.get("policyDocument")
    if not isinstance(principal, str | int | float) or isinstance(principal, bool):
        raise MalformedAnswer("principalId is missing or not a string")
    if not isinstance(policy, dict) or "Statement" not in policy:
        raise MalformedAnswer("policyDocument is missing or has no Statement")
    statements = _listed(policy["Statement"])
    if not all(isinstance(s, dict) and s.get("Effect") in ("Allow", "Deny") for s in statements):
        raise MalformedAnswer("each Statement needs an Effect of Allow or Deny")
    context = answer.get("context") or {}
    if not isinstance(context, dict) or not all(
            isinstance(v, str | int | float | bool) for v in context.values()):
        raise MalformedAnswer("context values must be strings, numbers or booleans")
    key = answer.get("usageIdentifierKey")
    return Decision(_text(principal), statements, {k: _text(v) for k, v in context.items()},
                    key if isinstance(key, str) else None)


def jwt_claims(token: str) -> dict[str, str] | None:
    """A JWT's payload claims (as strings), unverified; None when it is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return {k: _text(v) for k, v in claims.items()} if isinstance(claims, dict) else None


class DecisionCache:
    """Decisions by (authorizer, identity) until their TTL runs out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, tuple[str, ...]], tuple[float, Decision]] = {}

    def get(self, authorizer: Authorizer, key: tuple[str, ...], now: float) -> Decision | None:
        with self._lock:
            until, found = self._entries.get((authorizer.authorizer_id, key), (0.0, None))
            return found if now < until else None

    def put(self, authorizer: Authorizer, key: tuple[str, ...], found: Decision,
            now: float) -> None:
        if authorizer.ttl_s > 0:
            with self._lock:
                self._entries[(authorizer.authorizer_id, key)] = (now + authorizer.ttl_s, found)
