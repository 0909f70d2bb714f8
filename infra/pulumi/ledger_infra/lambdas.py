"""The two Lambda functions (provided.al2023, arm64, the zips of scripts/build-lambdas.sh) with the
ADOT collector layer, and the projection function's event source mapping on the events stream."""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from . import iam, observability
from .database import Database
from .network import Network
from .settings import Settings
from .tables import Tables

# The mapping gives up on a batch after this many retries or once its oldest record is this old; the
# records stay in the event store and `ledger dead-letters retry` re-reads the account (README).
MAXIMUM_RETRY_ATTEMPTS = 10
MAXIMUM_RECORD_AGE_SECONDS = 86_400
# The layer's collector reads its configuration from this variable (its `env:` confmap provider), so
# no file has to be added to the function's zip.
COLLECTOR_CONFIG_VARIABLE = "LEDGER_OTEL_COLLECTOR_CONFIG"


@dataclass
class Lambdas:
    projection: aws.lambda_.Function
    query: aws.lambda_.Function
    mapping: aws.lambda_.EventSourceMapping
    dead_letters: aws.sqs.Queue
    projection_role: aws.iam.Role
    query_role: aws.iam.Role


def _environment(settings: Settings, database: Database, service_name: str, **extra):
    variables = pulumi.Output.all(database.url, database.secret_arn).apply(
        lambda values: dict(
            {
                "LEDGER_EVENT_STORE": "dynamodb",
                "LEDGER_READ_MODEL": "postgres",
                "DATABASE_URL": values[0],
                "LEDGER_DATABASE_SECRET_ARN": values[1],
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318",
                "OTEL_SERVICE_NAME": service_name,
                "OPENTELEMETRY_COLLECTOR_CONFIG_URI": f"env:{COLLECTOR_CONFIG_VARIABLE}",
                COLLECTOR_CONFIG_VARIABLE: observability.lambda_collector_config(settings),
            },
            **extra,
        )
    )
    return {"variables": variables}


def _function(name: str, zip_path: str, role: aws.iam.Role, timeout: int, environment, settings: Settings,
              network: Network, depends_on: list):
    return aws.lambda_.Function(
        name,
        runtime="provided.al2023",
        architectures=["arm64"],
        handler="bootstrap",
        code=pulumi.FileArchive(zip_path),
        role=role.arn,
        timeout=timeout,
        memory_size=256,
        environment=environment,
        layers=[settings.adot_lambda_layer_arn],
        tracing_config={"mode": "Active"},
        # In the private subnets, to reach the read model; the functions' group is one of the two the
        # database's port is open to.
        vpc_config={
            "subnet_ids": [subnet.id for subnet in network.private_subnets],
            "security_group_ids": [network.functions_security_group.id],
        },
        # Active tracing checks the role's X-Ray rights when the function is created.
        opts=pulumi.ResourceOptions(depends_on=depends_on),
    )


def create(settings: Settings, tables: Tables, network: Network, database: Database) -> Lambdas:
    dead_letters = aws.sqs.Queue(
        "projection-dead-letters",
        message_retention_seconds=1_209_600,  # 14 days, the SQS maximum
        sqs_managed_sse_enabled=True,
    )
    projection_role = iam.lambda_role("projection-lambda")
    stream_access = iam.grant_projection(projection_role, tables.events.stream_arn, dead_letters.arn)
    projection_telemetry = iam.grant_function_telemetry_and_secret("projection-lambda", projection_role,
                                                                   database.secret_arn)
    projection = _function("projection", settings.projection_zip, projection_role, 60,
                           _environment(settings, database, "ledger-projection-lambda"), settings, network,
                           [projection_telemetry])
    mapping = aws.lambda_.EventSourceMapping(
        "projection-events-stream",
        event_source_arn=tables.events.stream_arn,
        function_name=projection.arn,
        starting_position="TRIM_HORIZON",
        batch_size=100,
        function_response_types=["ReportBatchItemFailures"],
        bisect_batch_on_function_error=True,
        maximum_retry_attempts=MAXIMUM_RETRY_ATTEMPTS,
        maximum_record_age_in_seconds=MAXIMUM_RECORD_AGE_SECONDS,
        destination_config={"on_failure": {"destination_arn": dead_letters.arn}},
        # The mapping checks the role's stream rights when it is created.
        opts=pulumi.ResourceOptions(depends_on=[stream_access]),
    )
    query_role = iam.lambda_role("query-lambda")
    query_telemetry = iam.grant_function_telemetry_and_secret("query-lambda", query_role, database.secret_arn)
    # The query function checks tokens itself too (the same rules as ledger-api), against the issuer
    # and audience the HTTP API's authorizer uses.
    query_environment = _environment(
        settings, database, "ledger-query-lambda",
        LEDGER_AUTH_JWKS_URL=settings.jwks_url,
        LEDGER_AUTH_ISSUER=settings.jwt_issuer,
        LEDGER_AUTH_AUDIENCE=settings.jwt_audience,
    )
    # Its timeout must exceed LEDGER_READ_WAIT_TIMEOUT_MS (5 s).
    query = _function("query", settings.query_zip, query_role, 10, query_environment, settings, network,
                      [query_telemetry])
    return Lambdas(projection, query, mapping, dead_letters, projection_role, query_role)
