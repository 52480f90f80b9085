"""The property types of every resource type the sandbox reads, checked as CloudFormation checks
them: before it creates anything, CloudFormation validates each resource's properties against
its type's schema and fails the deploy naming the resource and the property ("Properties
validation failed for resource MyFn with message: #/Timeout: expected type: Integer, found:
String", "#: required key [Code] not found"). The readers then receive values of the types they
expect, so a template the sandbox cannot run stops it with one line and never a traceback.

Facts (the CloudFormation resource reference of each type):
- Only the properties the sandbox reads are listed, with those of them CloudFormation requires
  (a required property the sandbox never reads, such as a function's Role, is not asked for,
  so a hand-written template need not carry it). Other properties are left as written.
- CloudFormation's leniency is kept: an Integer given as a string of digits ("30") and a Boolean
  given as "true"/"false" are accepted, and a number or a boolean for a String property is
  taken as its text. The values are handed on converted (30, True, "30").
- A Json property (an event pattern, a redrive policy) is an object, or a string a service
  parses later (and refuses with its own error).
- A Double (an alias's routing weight) is a number, or a string of one.
- `null` is refused anywhere ("'null' values are not allowed in templates").
- Conditionally required properties (a zip function's Handler and Runtime) are the readers'
  checks: the schema cannot say them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Primitive:
    name: str  # String, Integer, Boolean, Double or Json


@dataclass(frozen=True)
class ListOf:
    item: Type


@dataclass(frozen=True)
class MapOf:
    value: Type


@dataclass(frozen=True)
class Shape:
    properties: dict[str, Type]
    required: frozenset[str] = field(default_factory=frozenset)


Type = Primitive | ListOf | MapOf | Shape
STRING = Primitive("String")
INTEGER = Primitive("Integer")
BOOLEAN = Primitive("Boolean")
JSON = Primitive("Json")
DOUBLE = Primitive("Double")
STRINGS = ListOf(STRING)
_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_DOUBLE_TEXT = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


def shape(*required: str, **properties: Type) -> Shape:
    """An object type: its properties, and the names of those required (each one listed)."""
    return Shape(properties, frozenset(required))


class SchemaError(Exception):
    """`path`: where in the properties (keys and list indices); `message`: CloudFormation's."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _pointer(path: tuple[str | int, ...]) -> str:
    return "#" + "".join(f"/{step}" for step in path)


def _found(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Number"
    if isinstance(value, str):
        return "String"
    return "JSONArray" if isinstance(value, list) else "JSONObject"


def _mismatch(value: Any, expected: str, path: tuple[str | int, ...]) -> SchemaError:
    return SchemaError(path, f"{_pointer(path)}: expected type: {expected}, "
                             f"found: {_found(value)}")


def _primitive(value: Any, kind: str, path: tuple[str | int, ...]) -> Any:
    if kind == "String" and isinstance(value, str | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if kind == "Integer" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "Integer" and isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(value)
    if kind == "Boolean" and isinstance(value, bool):
        return value
    if kind == "Boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind == "Json" and isinstance(value, dict | str):
        return value
    if kind == "Double" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "Double" and isinstance(value, str) and _DOUBLE_TEXT.fullmatch(value.strip()):
        return float(value)
    raise _mismatch(value, {"Json": "JSONObject", "Double": "Number"}.get(kind, kind), path)


def checked(value: Any, kind: Type, path: tuple[str | int, ...] = ()) -> Any:
    """`value` converted to `kind` as CloudFormation accepts it, or SchemaError saying where."""
    if value is None:
        raise SchemaError(path, f"{_pointer(path)}: 'null' values are not allowed in templates")
    if isinstance(kind, Primitive):
        return _primitive(value, kind.name, path)
    if isinstance(kind, ListOf):
        if not isinstance(value, list):
            raise _mismatch(value, "JSONArray", path)
        return [checked(item, kind.item, (*path, i)) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        raise _mismatch(value, "JSONObject", path)
    if isinstance(kind, MapOf):
        return {key: checked(item, kind.value, (*path, key)) for key, item in value.items()}
    missing = sorted(kind.required - value.keys())
    if missing:
        raise SchemaError((*path, missing[0]),
                          f"{_pointer(path)}: required key [{missing[0]}] not found")
    return {key: checked(item, kind.properties[key], (*path, key))
            if key in kind.properties else item for key, item in value.items()}


_RETRY = shape(MaximumRetryAttempts=INTEGER, MaximumEventAgeInSeconds=INTEGER)
_DESTINATION = shape("Destination", Destination=STRING)
_KEY_SCHEMA = ListOf(shape("AttributeName", "KeyType", AttributeName=STRING, KeyType=STRING))
_THROUGHPUT = shape("ReadCapacityUnits", "WriteCapacityUnits", ReadCapacityUnits=INTEGER,
                    WriteCapacityUnits=INTEGER)
_PROJECTION = shape(NonKeyAttributes=STRINGS, ProjectionType=STRING)
_FILTERS = shape(Filters=ListOf(shape(Pattern=STRING)))
_SCHEDULE_TARGET = shape(
    "Arn", Arn=STRING, Input=STRING, RetryPolicy=_RETRY,
    DeadLetterConfig=shape(Arn=STRING), SqsParameters=shape(MessageGroupId=STRING),
    EventBridgeParameters=shape("DetailType", "Source", DetailType=STRING, Source=STRING))
_RULE_TARGET = shape(
    "Id", "Arn", Id=STRING, Arn=STRING, Input=STRING, InputPath=STRING,
    InputTransformer=shape("InputTemplate", InputTemplate=STRING,
                           InputPathsMap=MapOf(STRING)),
    RetryPolicy=_RETRY, DeadLetterConfig=shape(Arn=STRING),
    SqsParameters=shape("MessageGroupId", MessageGroupId=STRING))
_PROVISIONED = shape("ProvisionedConcurrentExecutions",
                     ProvisionedConcurrentExecutions=INTEGER)
_INTEGRATION_RESPONSE = shape(
    "StatusCode", StatusCode=STRING, SelectionPattern=STRING,
    ResponseParameters=MapOf(STRING), ResponseTemplates=MapOf(STRING))

# Resource type -> the schema of its Properties.
SCHEMAS: dict[str, Shape] = {
    "AWS::DynamoDB::Table": shape(
        "KeySchema", TableName=STRING, KeySchema=_KEY_SCHEMA,
        AttributeDefinitions=ListOf(shape("AttributeName", "AttributeType",
                                          AttributeName=STRING, AttributeType=STRING)),
        BillingMode=STRING, ProvisionedThroughput=_THROUGHPUT,
        GlobalSecondaryIndexes=ListOf(shape(
            "IndexName", "KeySchema", "Projection", IndexName=STRING, KeySchema=_KEY_SCHEMA,
            Projection=_PROJECTION, ProvisionedThroughput=_THROUGHPUT)),
        LocalSecondaryIndexes=ListOf(shape(
            "IndexName", "KeySchema", "Projection", IndexName=STRING, KeySchema=_KEY_SCHEMA,
            Projection=_PROJECTION)),
        StreamSpecification=shape("StreamViewType", StreamViewType=STRING)),
    "AWS::Events::EventBus": shape("Name", Name=STRING),
    "AWS::Events::Rule": shape(
        Name=STRING, EventBusName=STRING, EventPattern=JSON, ScheduleExpression=STRING,
        State=STRING, Description=STRING, Targets=ListOf(_RULE_TARGET)),
    "AWS::Scheduler::Schedule": shape(
        "ScheduleExpression", "Target", Name=STRING, GroupName=STRING,
        ScheduleExpression=STRING, ScheduleExpressionTimezone=STRING, StartDate=STRING,
        EndDate=STRING, State=STRING, Target=_SCHEDULE_TARGET),
    "AWS::Lambda::Function": shape(
        "Code", Code=shape(S3Bucket=STRING, S3Key=STRING, ZipFile=STRING, ImageUri=STRING),
        FunctionName=STRING, Handler=STRING, Runtime=STRING, Timeout=INTEGER,
        MemorySize=INTEGER, Environment=shape(Variables=MapOf(STRING)),
        DeadLetterConfig=shape(TargetArn=STRING), ReservedConcurrentExecutions=INTEGER,
        Layers=STRINGS, Architectures=STRINGS, SnapStart=shape("ApplyOn", ApplyOn=STRING)),
    "AWS::Lambda::LayerVersion": shape(
        "Content", LayerName=STRING, CompatibleRuntimes=STRINGS,
        CompatibleArchitectures=STRINGS,
        Content=shape("S3Bucket", "S3Key", S3Bucket=STRING, S3Key=STRING)),
    "AWS::Lambda::Version": shape(
        "FunctionName", FunctionName=STRING, Description=STRING,
        ProvisionedConcurrencyConfig=_PROVISIONED),
    "AWS::Lambda::Alias": shape(
        "FunctionName", "FunctionVersion", "Name", FunctionName=STRING,
        FunctionVersion=STRING, Name=STRING, ProvisionedConcurrencyConfig=_PROVISIONED,
        RoutingConfig=shape(AdditionalVersionWeights=ListOf(shape(
            "FunctionVersion", "FunctionWeight", FunctionVersion=STRING,
            FunctionWeight=DOUBLE)))),
    "AWS::Lambda::EventInvokeConfig": shape(
        "FunctionName", FunctionName=STRING, Qualifier=STRING,
        MaximumRetryAttempts=INTEGER, MaximumEventAgeInSeconds=INTEGER,
        DestinationConfig=shape(OnSuccess=_DESTINATION, OnFailure=_DESTINATION)),
    "AWS::Lambda::EventSourceMapping": shape(
        "FunctionName", FunctionName=STRING, EventSourceArn=STRING, Enabled=BOOLEAN,
        BatchSize=INTEGER, MaximumBatchingWindowInSeconds=INTEGER,
        ScalingConfig=shape(MaximumConcurrency=INTEGER), FilterCriteria=_FILTERS,
        FunctionResponseTypes=STRINGS, StartingPosition=STRING,
        DestinationConfig=shape(OnFailure=shape(Destination=STRING)),
        MaximumRecordAgeInSeconds=INTEGER, MaximumRetryAttempts=INTEGER,
        BisectBatchOnFunctionError=BOOLEAN, ParallelizationFactor=INTEGER,
        TumblingWindowInSeconds=INTEGER),
    "AWS::SQS::Queue": shape(
        QueueName=STRING, FifoQueue=BOOLEAN, ContentBasedDeduplication=BOOLEAN,
        VisibilityTimeout=INTEGER, MessageRetentionPeriod=INTEGER, DelaySeconds=INTEGER,
        MaximumMessageSize=INTEGER, ReceiveMessageWaitTimeSeconds=INTEGER,
        RedrivePolicy=JSON, SqsManagedSseEnabled=BOOLEAN, DeduplicationScope=STRING,
        FifoThroughputLimit=STRING),
    "AWS::SNS::Topic": shape(
        TopicName=STRING, DisplayName=STRING, FifoTopic=BOOLEAN,
        ContentBasedDeduplication=BOOLEAN,
        Subscription=ListOf(shape("Endpoint", "Protocol", Endpoint=STRING, Protocol=STRING))),
    "AWS::SNS::Subscription": shape(
        "Protocol", "TopicArn", Protocol=STRING, TopicArn=STRING, Endpoint=STRING,
        RawMessageDelivery=BOOLEAN, FilterPolicy=JSON, FilterPolicyScope=STRING,
        RedrivePolicy=JSON),
    "AWS::ApiGateway::RestApi": shape(
        Name=STRING, BinaryMediaTypes=STRINGS, ApiKeySourceType=STRING),
    "AWS::ApiGateway::Resource": shape(
        "ParentId", "PathPart", "RestApiId", ParentId=STRING, PathPart=STRING,
        RestApiId=STRING),
    "AWS::ApiGateway::Method": shape(
        "HttpMethod", "ResourceId", "RestApiId", HttpMethod=STRING, ResourceId=STRING,
        RestApiId=STRING, AuthorizationType=STRING, AuthorizerId=STRING,
        ApiKeyRequired=BOOLEAN,
        Integration=shape("Type", Type=STRING, Uri=STRING, TimeoutInMillis=INTEGER,
                          RequestTemplates=MapOf(STRING),
                          IntegrationResponses=ListOf(_INTEGRATION_RESPONSE)),
        MethodResponses=ListOf(shape("StatusCode", StatusCode=STRING,
                                     ResponseParameters=MapOf(BOOLEAN)))),
    "AWS::ApiGateway::Deployment": shape(
        "RestApiId", RestApiId=STRING, StageName=STRING,
        StageDescription=shape(Variables=MapOf(STRING))),
    "AWS::ApiGateway::Stage": shape(
        "RestApiId", RestApiId=STRING, DeploymentId=STRING, StageName=STRING,
        Variables=MapOf(STRING)),
    "AWS::ApiGateway::Authorizer": shape(
        "Name", "RestApiId", "Type", Name=STRING, RestApiId=STRING, Type=STRING,
        AuthorizerUri=STRING, IdentitySource=STRING, IdentityValidationExpression=STRING,
        AuthorizerResultTtlInSeconds=INTEGER),
    "AWS::ApiGateway::ApiKey": shape(Name=STRING, Value=STRING, Enabled=BOOLEAN),
    "AWS::ApiGateway::UsagePlan": shape(
        UsagePlanName=STRING, ApiStages=ListOf(shape(ApiId=STRING, Stage=STRING)),
        Quota=shape(Limit=INTEGER, Offset=INTEGER, Period=STRING)),
    "AWS::ApiGateway::UsagePlanKey": shape(
        "KeyId", "UsagePlanId", KeyId=STRING, UsagePlanId=STRING),
}
