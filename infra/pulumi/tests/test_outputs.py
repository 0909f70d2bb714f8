"""The stack outputs an operator reads after `pulumi up` (`pulumi stack output <name>`)."""

import pulumi

from ledger_infra.stack import outputs


def _check(built, name, expected):
    return outputs(built.stack)[name].apply(lambda actual: _assert_equal(actual, expected))


def _assert_equal(actual, expected):
    assert actual == expected


@pulumi.runtime.test
def test_command_api_url_is_https_on_the_load_balancer(built):
    return _check(built, "commandApiUrl", "https://command-api-123.eu-west-1.elb.amazonaws.com")


@pulumi.runtime.test
def test_query_api_url_is_the_http_api_stage(built):
    return _check(built, "queryApiUrl", "https://mock.execute-api.eu-west-1.amazonaws.com/")


@pulumi.runtime.test
def test_ecr_repository_url_is_exported(built):
    return _check(built, "ecrRepositoryUrl", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ledger-api")


@pulumi.runtime.test
def test_dead_letter_queue_url_is_exported(built):
    return _check(built, "deadLetterQueueUrl", "https://sqs.eu-west-1.amazonaws.com/123456789012/projection-dead-letters")


@pulumi.runtime.test
def test_alarm_topic_arn_is_exported(built):
    return _check(built, "alarmTopicArn", "arn:aws:mock:eu-west-1:123456789012:alarms")


@pulumi.runtime.test
def test_database_endpoint_is_exported(built):
    return _check(built, "databaseEndpoint", "read-model.mock.eu-west-1.rds.amazonaws.com:5432")


@pulumi.runtime.test
def test_database_secret_arn_is_exported(built):
    return _check(built, "databaseSecretArn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-mock")


def test_the_outputs_a_migration_run_needs_are_exported(built):
    assert {"ecsCluster", "migrateTaskDefinition", "privateSubnetIds", "apiTaskSecurityGroupId"} <= set(outputs(built.stack))
