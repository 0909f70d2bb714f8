"""Least-privilege roles: each function and task may touch only its own resources and actions.

- the projection Lambda reads the events stream and sends to its on-failure queue; it cannot touch
  any table (it writes PostgreSQL, not DynamoDB);
- the query Lambda has no DynamoDB access at all (it reads the PostgreSQL read model);
- the API task may write and read its three tables, with the five actions the DynamoDB adapter uses.
Both Lambdas also get the AWS-managed VPC execution policy (CloudWatch Logs and their network
interfaces in the private subnets, nothing else).
"""

import json
from dataclasses import dataclass

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


@dataclass
class Roles:
    projection: aws.iam.Role
    query: aws.iam.Role
    api_task: aws.iam.Role


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


def api_task_role(tables: Tables) -> aws.iam.Role:
    role = aws.iam.Role("api-task", assume_role_policy=_assume_role("ecs-tasks.amazonaws.com"))
    policy = pulumi.Output.all(tables.events.arn, tables.idempotency.arn, tables.snapshots.arn).apply(
        lambda arns: _document(
            {"Sid": "OwnTables", "Effect": "Allow", "Action": API_TABLE_ACTIONS, "Resource": list(arns)}
        )
    )
    aws.iam.RolePolicy("api-task-tables", role=role.id, policy=policy)
    return role
