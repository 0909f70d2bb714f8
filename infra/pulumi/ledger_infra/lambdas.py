"""The two Lambda functions (provided.al2023, arm64, the zips of scripts/build-lambdas.sh) and the
projection function's event source mapping on the events stream."""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from . import iam
from .network import Network
from .settings import Settings
from .tables import Tables

# The mapping gives up on a batch after this many retries or once its oldest record is this old; the
# records stay in the event store and `ledger dead-letters retry` re-reads the account (README).
MAXIMUM_RETRY_ATTEMPTS = 10
MAXIMUM_RECORD_AGE_SECONDS = 86_400


@dataclass
class Lambdas:
    projection: aws.lambda_.Function
    query: aws.lambda_.Function
    mapping: aws.lambda_.EventSourceMapping
    dead_letters: aws.sqs.Queue
    projection_role: aws.iam.Role
    query_role: aws.iam.Role


def _environment(settings: Settings):
    return {
        "variables": {
            "LEDGER_EVENT_STORE": "dynamodb",
            "LEDGER_READ_MODEL": "postgres",
            "DATABASE_URL": settings.database_url,
        }
    }


def _function(name: str, zip_path: str, role: aws.iam.Role, timeout: int, settings: Settings, network: Network):
    return aws.lambda_.Function(
        name,
        runtime="provided.al2023",
        architectures=["arm64"],
        handler="bootstrap",
        code=pulumi.FileArchive(zip_path),
        role=role.arn,
        timeout=timeout,
        memory_size=256,
        environment=_environment(settings),
        # In the private subnets, to reach the read model; the functions' group is the only one the
        # database's port is open to.
        vpc_config={
            "subnet_ids": [subnet.id for subnet in network.private_subnets],
            "security_group_ids": [network.functions_security_group.id],
        },
    )


def create(settings: Settings, tables: Tables, network: Network) -> Lambdas:
    dead_letters = aws.sqs.Queue(
        "projection-dead-letters",
        message_retention_seconds=1_209_600,  # 14 days, the SQS maximum
        sqs_managed_sse_enabled=True,
    )
    projection_role = iam.lambda_role("projection-lambda")
    stream_access = iam.grant_projection(projection_role, tables.events.stream_arn, dead_letters.arn)
    projection = _function("projection", settings.projection_zip, projection_role, 60, settings, network)
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
    # Its timeout must exceed LEDGER_READ_WAIT_TIMEOUT_MS (5 s).
    query = _function("query", settings.query_zip, query_role, 10, settings, network)
    return Lambdas(projection, query, mapping, dead_letters, projection_role, query_role)
