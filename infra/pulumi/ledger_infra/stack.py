"""Assembles the stack; `__main__.py` and the tests both call `build()`, and export `outputs()`."""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from . import (access_logs, alarms, api, database, endpoints, iam, lambdas, loadbalancer, network, observability,
               registry, service, tables)
from .settings import Settings, load


@dataclass
class Stack:
    settings: Settings
    network: network.Network
    endpoints: dict
    database: database.Database
    tables: tables.Tables
    repository: aws.ecr.Repository
    observability: observability.Observability
    lambdas: lambdas.Lambdas
    api: api.Api
    load_balancer: loadbalancer.LoadBalancer
    api_task_execution_role: aws.iam.Role
    api_task_role: aws.iam.Role
    service: service.Service
    alarms: list


def build() -> Stack:
    settings = load()
    created_network = network.create(settings)
    created_endpoints = endpoints.create(created_network)
    created_database = database.create(settings, created_network)
    created_tables = tables.create(settings)
    repository = registry.create(settings)
    telemetry = observability.create(settings)
    created_lambdas = lambdas.create(settings, created_tables, created_network, created_database)
    created_api = api.create(settings, created_lambdas.query)
    balancer = loadbalancer.create(settings, created_network, access_logs.create(settings))
    execution_role = iam.api_task_execution_role(repository.arn, [telemetry.api_logs.arn],
                                                 registry.cached_repository_name(settings.adot_collector_image))
    task_role = iam.api_task_role(created_tables, created_database.secret_arn, telemetry.api_metrics_logs.arn,
                                  settings.metrics_namespace)
    migrate_role = iam.migrate_task_role(created_database.secret_arn)
    created_service = service.create(settings, created_network, created_tables, created_database, repository,
                                     balancer, execution_role, task_role, migrate_role)
    created_alarms = alarms.create(settings, created_lambdas, balancer, created_api.api, created_service,
                                   telemetry.alarm_topic)
    return Stack(settings, created_network, created_endpoints, created_database, created_tables, repository,
                 telemetry, created_lambdas, created_api, balancer, execution_role, task_role, created_service,
                 created_alarms)


def outputs(stack: Stack) -> dict:
    """What an operator needs after `pulumi up` (`pulumi stack output <name>`)."""
    host = (pulumi.Output.from_input(stack.settings.command_domain_name) if stack.settings.command_domain_name
            else stack.load_balancer.load_balancer.dns_name)
    return {
        "commandApiUrl": host.apply(lambda name: f"https://{name}"),
        "queryApiUrl": stack.api.stage.invoke_url,
        "commandLoadBalancerDnsName": stack.load_balancer.load_balancer.dns_name,
        "accessLogBucket": stack.load_balancer.access_logs.bucket.bucket,
        "ecrRepositoryUrl": stack.repository.repository_url,
        "deadLetterQueueUrl": stack.lambdas.dead_letters.url,
        "alarmTopicArn": stack.observability.alarm_topic.arn,
        "databaseEndpoint": stack.database.instance.endpoint,
        "databaseSecretArn": stack.database.secret_arn,
        "eventsTable": stack.tables.events.name,
        "eventsStreamArn": stack.tables.events.stream_arn,
        "ecsCluster": stack.service.cluster.name,
        "apiTaskDefinition": stack.service.task_definition.family,
        "migrateTaskDefinition": stack.service.migrate_task_definition.family,
        "privateSubnetIds": pulumi.Output.all(*[s.id for s in stack.network.private_subnets]),
        "apiTaskSecurityGroupId": stack.network.tasks_security_group.id,
    }
