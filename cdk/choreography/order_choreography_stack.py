"""The order choreography as one CloudFormation stack (the contract: docs/choreography.md).

The template must stay plain CloudFormation: the local sandbox runs the synthesized template, so
nothing here may make the CDK add a custom resource or a helper Lambda function (no
`log_retention=`, no `auto_delete_objects`, no cross-region references). The template holds
exactly the five functions of the contract.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

# Resolved from this file, not the working directory, so synth works from anywhere.
LAMBDA_FUNCTIONS = Path(__file__).resolve().parents[2] / "lambda-functions"

# Delivery failures (throttling, a missing permission, a deleted function) rarely heal by
# themselves after an hour; past that the event waits in the target's dead-letter queue, where
# someone sees it, instead of being retried for EventBridge's default 24 hours.
DELIVERY_RETRY_ATTEMPTS = 10
DELIVERY_MAX_EVENT_AGE = Duration.hours(1)
# Lambda's own figure for asynchronous invocations, written out so the template says it.
EXECUTION_RETRY_ATTEMPTS = 2
# SQS's maximum: a failed order stays inspectable for two weeks.
FAILED_EVENT_RETENTION = Duration.days(14)
# SSL only, without a wildcard: the deny names every SQS action a queue policy can govern, so
# not even a statement that grants nothing holds `sqs:*` (the project allows no `*` action).
SQS_QUEUE_ACTIONS = [f"sqs:{action}" for action in (
    "AddPermission", "CancelMessageMoveTask", "ChangeMessageVisibility", "DeleteMessage",
    "DeleteQueue", "GetQueueAttributes", "GetQueueUrl", "ListDeadLetterSourceQueues",
    "ListMessageMoveTasks", "ListQueueTags", "PurgeQueue", "ReceiveMessage", "RemovePermission",
    "SendMessage", "SetQueueAttributes", "StartMessageMoveTask", "TagQueue", "UntagQueue")]
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


@dataclass(frozen=True)
class Service:
    """One folder under lambda-functions/ and what its function needs to know."""

    folder: str
    construct_id: str
    description: str
    publishes: bool = False


ORDER = Service("order-service", "OrderService",
                "order-service: records a new order, then publishes order_created",
                publishes=True)
INVOICE = Service("invoice-service", "InvoiceService",
                  "invoice-service: records time_invoice_service on order_created")
FULFILMENT = Service("fulfilment-service", "FulfilmentService",
                     "fulfilment-service: records time_fulfilment_service on order_created, "
                     "then publishes fulfilment_completed", publishes=True)
FORECASTING = Service("forecasting-service", "ForecastingService",
                      "forecasting-service: records time_forecasting_service on order_created")
LOGISTIC = Service("logistic-service", "LogisticService",
                   "logistic-service: records time_logistic_service on fulfilment_completed")


class OrderChoreographyStack(Stack):
    """Table, custom bus, two rules, a REST API and five functions that only talk through events."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=(
            "Order choreography: five Lambda services that react to events on one EventBridge "
            "bus and stamp their step in one DynamoDB table"), **kwargs)

        self.table = dynamodb.Table(
            self, "OrderTable",
            partition_key=dynamodb.Attribute(name="ID", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.bus = events.EventBus(self, "OrderBus")

        self.functions = {
            service.folder: self._function(service)
            for service in (ORDER, INVOICE, FULFILMENT, FORECASTING, LOGISTIC)
        }
        for service in (INVOICE, FULFILMENT, FORECASTING, LOGISTIC):
            self._add_on_failure_destination(service)

        order_created = events.Rule(
            self, "OrderCreatedRule",
            rule_name="order_created",
            event_bus=self.bus,
            event_pattern=events.EventPattern(detail_type=["order_created"],
                                              source=["order_service"]),
        )
        for service in (INVOICE, FULFILMENT, FORECASTING):
            self._add_target(order_created, service)
        fulfilment_completed = events.Rule(
            self, "FulfilmentCompletedRule",
            rule_name="fulfilment_completed",
            event_bus=self.bus,
            event_pattern=events.EventPattern(detail_type=["fulfilment_completed"],
                                              source=["fulfilment_service"]),
        )
        self._add_target(fulfilment_completed, LOGISTIC)

        self.api = self._rest_api(self.functions[ORDER.folder])
        self._outputs()

    def _function(self, service: Service) -> lambda_.Function:
        """A function with its own role and log group, so each holds only what it needs.

        The role is ours rather than the CDK's default so that it carries no managed policy
        (AWSLambdaBasicExecutionRole allows writing to every log group in the account).
        """
        log_group = logs.LogGroup(
            self, f"{service.construct_id}Logs",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self, f"{service.construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{service.folder}: its own log group, its table writes, its events",
        )
        log_group.grant(role, "logs:CreateLogStream", "logs:PutLogEvents")
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
                    "X-Ray tracing: xray:PutTraceSegments and PutTelemetryRecords have no "
                    "resource-level permissions")
        environment = {"TABLE_NAME": self.table.table_name}
        if service.publishes:
            environment["EVENTBUS_NAME"] = self.bus.event_bus_name
        function = lambda_.Function(
            self, service.construct_id,
            description=service.description,
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="app.lambda_handler",
            code=lambda_.Code.from_asset(str(LAMBDA_FUNCTIONS / service.folder),
                                         exclude=["__pycache__", "*.pyc"]),
            role=role,
            environment=environment,
            timeout=Duration.seconds(10),
            memory_size=256,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
        )
        self.table.grant(function, "dynamodb:UpdateItem")
        if service.publishes:
            self.bus.grant_put_events_to(function)
        return function

    def _queue(self, construct_id: str, holds: str) -> sqs.Queue:
        """A queue that keeps events that could not be processed: encrypted, SSL only."""
        queue = sqs.Queue(
            self, construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            retention_period=FAILED_EVENT_RETENTION,
        )
        queue.add_to_resource_policy(iam.PolicyStatement(
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=SQS_QUEUE_ACTIONS,
            resources=[queue.queue_arn],
            conditions={"Bool": {"aws:SecureTransport": "false"}},
        ))
        acknowledge(queue, "AwsSolutions-SQS4",
                    "SSL is required: the policy denies every SQS action without "
                    "aws:SecureTransport, named one by one instead of sqs:*")
        acknowledge(queue, "AwsSolutions-SQS3",
                    "this queue is itself the last stop for failed events (an EventBridge "
                    "dead-letter queue or a Lambda on-failure destination)")
        CfnOutput(self, f"{construct_id}Url", value=queue.queue_url, description=holds)
        return queue

    def _add_on_failure_destination(self, service: Service) -> None:
        """Execution failures: after Lambda's retries, the event and the error land in a queue."""
        queue = self._queue(f"{service.construct_id}OnFailureQueue",
                            f"Events {service.folder} failed on after Lambda's retries, "
                            "with the error")
        self.functions[service.folder].configure_async_invoke(
            retry_attempts=EXECUTION_RETRY_ATTEMPTS,
            on_failure=destinations.SqsDestination(queue),
        )

    def _add_target(self, rule: events.Rule, service: Service) -> None:
        """Delivery failures: one dead-letter queue per target, so the queue names the service.

        The CDK gives the queue a policy that lets only events.amazonaws.com send, and only for
        this rule (aws:SourceArn).
        """
        rule.add_target(targets.LambdaFunction(
            self.functions[service.folder],
            retry_attempts=DELIVERY_RETRY_ATTEMPTS,
            max_event_age=DELIVERY_MAX_EVENT_AGE,
            dead_letter_queue=self._queue(
                f"{service.construct_id}DeliveryDLQ",
                f"Events EventBridge could not deliver to {service.folder}, with the reason"),
        ))

    def _rest_api(self, order_function: lambda_.Function) -> apigateway.RestApi:
        """`GET /order` on stage `prod`, with access logs in a log group of this stack.

        API Gateway can write logs only through the account's CloudWatch role (one per account
        and region); a fresh account has none, so the stack brings one. It is retained on
        destroy: other APIs in the account (or other copies of this stack) may rely on it.
        """
        access_logs = logs.LogGroup(
            self, "OrderApiAccessLogs",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        api = apigateway.RestApi(
            self, "OrderApi",
            description="The order choreography's entry point: GET /order creates an order",
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigateway.StageOptions(
                stage_name="prod",
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True,
                    request_time=True, resource_path=True, response_length=True,
                    status=True, user=False,
                ),
                tracing_enabled=True,
                # A public endpoint without authorization: cap what a stranger can make it cost.
                throttling_rate_limit=100,
                throttling_burst_limit=200,
            ),
        )
        method = api.root.add_resource("order").add_method(
            "GET", apigateway.LambdaIntegration(order_function, proxy=True))
        for rule_id in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            acknowledge(method, rule_id, "the workshop's GET /order is public by design: "
                                         "anyone may create a demo order (throttled)")
        acknowledge(api, "AwsSolutions-APIG2",
                    "GET /order takes no parameters and no body: nothing to validate")
        acknowledge(api.deployment_stage, "AwsSolutions-APIG3",
                    "no WAF: a demo API, throttled at the stage; WAF costs more than it guards")
        acknowledge(api.deployment_stage, "AwsSolutions-APIG6",
                    "access logs record every request; execution logs would fill a log group "
                    "that API Gateway creates outside the stack and cdk destroy leaves behind")
        acknowledge(api.node.find_child("CloudWatchRole"),
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                    "the CDK's account-wide API Gateway logging role uses the policy AWS "
                    "documents for it")
        # RestApi adds the base URL as an output itself; a readable id lets tools find it.
        endpoint = api.node.find_child("Endpoint")
        endpoint.override_logical_id("ApiUrl")
        endpoint.description = "Base URL of the API's prod stage"
        return api

    def _outputs(self) -> None:
        CfnOutput(self, "OrderUrl", value=self.api.url_for_path("/order"),
                  description="Open it to create an order (GET)")
        CfnOutput(self, "TableName", value=self.table.table_name,
                  description="DynamoDB table holding one item per order with its five stamps")
        CfnOutput(self, "EventBusName", value=self.bus.event_bus_name,
                  description="Custom EventBridge bus the services talk through")


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Keeps a cdk-nag AwsSolutions finding on purpose, on that construct only; the reason
    is the decision, and the synth fails on any finding that has none."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule_id}",
                                                         reason=reason))
