"""Least-privilege roles: each function and task may touch only its own resources and actions.

- the projection Lambda reads the events stream and sends to its on-failure queue; it cannot touch
  any table (it writes PostgreSQL, not DynamoDB);
- the query Lambda has no DynamoDB access at all (it reads the PostgreSQL read model);
- the API task may write and read its three tables, with the five actions the DynamoDB adapter uses;
- the API task's execution role pulls its one repository's images and writes its log group;
- each function and the task may read the RDS-managed database secret, and nothing else in Secrets
  Manager; their ADOT collectors may send traces to X-Ray, the sidecar metrics to its own log group
  and CloudWatch namespace.
Both Lambdas also get the AWS-managed VPC execution policy (CloudWatch Logs and their network
interfaces in the private subnets, nothing else). X-Ray and ECR's token call have no resource-level
permissions, so theirs are the only statements on `*`.
"""

import json
import pulumi
import pulumi_aws as aws

from .tables import Tables

# Logs, and the network interfaces a function in a VPC needs (AWS-managed; nothing else).
LAMBDA_LOGS_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"

STREAM_READ_ACTIONS = [
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
]
API_TABLE_ACTIONS = [
    "dynamodb:ConditionCheckItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:TransactWriteItems",
]

ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
# A pull through the cache creates the cached repository and imports the upstream image.
ECR_CACHE_ACTIONS = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
LOG_WRITE_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
XRAY_WRITE_ACTIONS = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
XRAY_SAMPLING_ACTIONS = ["xray:GetSamplingRules", "xray:GetSamplingTargets"]


def _assume_role(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def _document(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def lambda_role(name: str) -> aws.iam.Role:
    role = aws.iam.Role(name, assume_role_policy=_assume_role("lambda.amazonaws.com"))
    aws.iam.RolePolicyAttachment(f"{name}-logs", role=role.name, policy_arn=LAMBDA_LOGS_POLICY)
    return role


def grant_projection(role: aws.iam.Role, events_stream_arn, dead_letters_arn) -> aws.iam.RolePolicy:
    """The projector's only rights: read the events stream, send to its on-failure queue."""
    policy = pulumi.Output.all(events_stream_arn, dead_letters_arn).apply(
        lambda arns: _document(
            {"Sid": "ReadEventsStream", "Effect": "Allow", "Action": STREAM_READ_ACTIONS, "Resource": arns[0]},
            {"Sid": "SendDeadLetters", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": arns[1]},
        )
    )
    return aws.iam.RolePolicy("projection-lambda-access", role=role.id, policy=policy)


def _statement(sid: str, actions: list, resource, **extra) -> dict:
    return dict({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}, **extra)


def _read_database_secret(secret_arn: str) -> dict:
    return _statement("ReadDatabaseSecret", ["secretsmanager:GetSecretValue"], secret_arn)


def grant_function_telemetry_and_secret(name: str, role: aws.iam.Role, secret_arn) -> aws.iam.RolePolicy:
    """A function's collector layer sends traces to X-Ray; the function reads the database secret."""
    policy = pulumi.Output.from_input(secret_arn).apply(
        lambda arn: _document(
            _read_database_secret(arn),
            _statement("WriteTraces", XRAY_WRITE_ACTIONS + XRAY_SAMPLING_ACTIONS, "*"),
        )
    )
    return aws.iam.RolePolicy(f"{name}-secret-and-traces", role=role.id, policy=policy)


def api_task_execution_role(repository_arn, log_group_arns: list, cached_repository: str | None) -> aws.iam.Role:
    """What ECS itself needs to start the task: pull from this repository (and the collector's
    repository of the pull-through cache, which the first pull creates and fills), write these log
    groups."""
    role = aws.iam.Role("api-task-execution", assume_role_policy=_assume_role("ecs-tasks.amazonaws.com"))
    account = aws.get_caller_identity().account_id
    region = aws.get_region().region
    cached = ([_statement("PullCachedCollector", ECR_PULL_ACTIONS + ECR_CACHE_ACTIONS,
                          f"arn:aws:ecr:{region}:{account}:repository/{cached_repository}")]
              if cached_repository else [])
    policy = pulumi.Output.all(repository_arn, *log_group_arns).apply(
        lambda arns: _document(
            _statement("PullOwnImages", ECR_PULL_ACTIONS, arns[0]),
            *cached,
            # GetAuthorizationToken has no resource-level permission: the registry login itself.
            _statement("RegistryLogin", ["ecr:GetAuthorizationToken"], "*"),
            _statement("WriteOwnLogs", LOG_WRITE_ACTIONS, [f"{arn}:*" for arn in arns[1:]]),
        )
    )
    aws.iam.RolePolicy("api-task-execution-access", role=role.id, policy=policy)
    return role


def api_task_role(tables: Tables, secret_arn, metrics_log_group_arn, metrics_namespace: str) -> aws.iam.Role:
    role = aws.iam.Role("api-task", assume_role_policy=_assume_role("ecs-tasks.amazonaws.com"))
    policy = pulumi.Output.all(tables.events.arn, tables.idempotency.arn, tables.snapshots.arn).apply(
        lambda arns: _document(_statement("OwnTables", API_TABLE_ACTIONS, list(arns)))
    )
    aws.iam.RolePolicy("api-task-tables", role=role.id, policy=policy)
    sidecar = pulumi.Output.all(secret_arn, metrics_log_group_arn).apply(
        lambda arns: _document(
            _read_database_secret(arns[0]),
            _statement("WriteTraces", XRAY_WRITE_ACTIONS + XRAY_SAMPLING_ACTIONS, "*"),
            _statement("WriteOwnMetrics", ["cloudwatch:PutMetricData"], "*",
                       Condition={"StringEquals": {"cloudwatch:namespace": metrics_namespace}}),
            _statement("WriteMetricsLog", LOG_WRITE_ACTIONS + ["logs:DescribeLogStreams"],
                       [arns[1], f"{arns[1]}:*"]),
        )
    )
    aws.iam.RolePolicy("api-task-secret-and-telemetry", role=role.id, policy=sidecar)
    return role


def migrate_task_role(secret_arn) -> aws.iam.Role:
    """`ledger migrate` touches only PostgreSQL: it may read the database secret, nothing else."""
    role = aws.iam.Role("migrate-task", assume_role_policy=_assume_role("ecs-tasks.amazonaws.com"))
    policy = pulumi.Output.from_input(secret_arn).apply(lambda arn: _document(_read_database_secret(arn)))
    aws.iam.RolePolicy("migrate-task-secret", role=role.id, policy=policy)
    return role
