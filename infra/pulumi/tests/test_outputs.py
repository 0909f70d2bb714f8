"""The stack outputs an operator reads after `pulumi up` (`pulumi stack output <name>`)."""

import pulumi
import pytest

from ledger_infra.stack import outputs

EXPECTED = {
    # https on the ALB's name (no commandDomainName configured here)
    "commandApiUrl": "https://command-api-123.eu-west-1.elb.amazonaws.com",
    "accessLogBucket": "command-api-access-logs-bucket",
    "queryApiUrl": "https://mock.execute-api.eu-west-1.amazonaws.com/",
    "ecrRepositoryUrl": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ledger-api",
    "deadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/projection-dead-letters",
    "alarmTopicArn": "arn:aws:mock:eu-west-1:123456789012:alarms",
    "databaseEndpoint": "read-model.mock.eu-west-1.rds.amazonaws.com:5432",
    "databaseSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-mock",
}


def _assert_equal(actual, expected):
    assert actual == expected


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pulumi.runtime.test
def test_the_output_names_what_the_operator_needs(built, name):
    return outputs(built.stack)[name].apply(lambda actual: _assert_equal(actual, EXPECTED[name]))


def test_the_outputs_a_migration_run_needs_are_exported(built):
    assert {"ecsCluster", "migrateTaskDefinition", "privateSubnetIds", "apiTaskSecurityGroupId"} <= set(outputs(built.stack))
