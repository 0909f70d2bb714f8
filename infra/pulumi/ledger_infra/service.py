"""The command API on ECS Fargate: a cluster with Container Insights, the `ledger-api` task (arm64,
awsvpc; read-only root filesystem, non-root, awslogs, its health check binary asking liveness) with an ADOT collector
sidecar it waits on, and the service in the private subnets behind the ALB's target group (no public
address, circuit breaker with rollback, never below the desired count while deploying); and the
one-off `ledger-migrate` task (`ledger migrate` from the same image), the only way into the private
read model to create its schema."""

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from . import observability, registry
from .database import Database
from .loadbalancer import LoadBalancer
from .network import API_PORT, Network
from .settings import Settings
from .tables import Tables

API_CONTAINER = "ledger-api"
COLLECTOR_CONTAINER = "adot-collector"
MIGRATE_CONTAINER = "ledger-migrate"
# The image's runtime user (Dockerfile): never root, even if the image were changed to say so.
RUNTIME_USER = "65532"
HEALTHCHECK = ["CMD", "/usr/local/bin/ledger-healthcheck"]
# ECS replaces a container its health check calls unhealthy, so the check asks liveness: readiness
# fails for reasons no restart fixes (PostgreSQL or DynamoDB briefly unreachable, an open dead letter),
# and would restart every task at once. Readiness is the ALB target group's check (loadbalancer.py):
# a task that cannot serve leaves the rotation and stays alive. Read by /usr/local/bin/ledger-healthcheck.
LIVENESS_URL = f"http://127.0.0.1:{API_PORT}/health/live"


@dataclass
class Service:
    cluster: aws.ecs.Cluster
    task_definition: aws.ecs.TaskDefinition
    service: aws.ecs.Service
    migrate_task_definition: aws.ecs.TaskDefinition


def _logs(group: str, region: str, prefix: str) -> dict:
    return {"logDriver": "awslogs", "options": {
        "awslogs-group": group, "awslogs-region": region, "awslogs-stream-prefix": prefix}}


def _environment(variables: dict) -> list:
    return [{"name": name, "value": value} for name, value in sorted(variables.items())]


def api_environment(settings: Settings, region: str, tables: list, database_url: str, secret_arn: str) -> dict:
    return {
        "AWS_REGION": region,
        "LEDGER_HTTP_ADDR": f"0.0.0.0:{API_PORT}",
        "LEDGER_EVENT_STORE": "dynamodb",
        "LEDGER_READ_MODEL": "postgres",
        "LEDGER_DYNAMODB_EVENTS_TABLE": tables[0],
        "LEDGER_DYNAMODB_IDEMPOTENCY_TABLE": tables[1],
        "LEDGER_DYNAMODB_SNAPSHOTS_TABLE": tables[2],
        "DATABASE_URL": database_url,
        "LEDGER_DATABASE_SECRET_ARN": secret_arn,
        "LEDGER_AUTH_JWKS_URL": settings.jwks_url,
        "LEDGER_AUTH_ISSUER": settings.jwt_issuer,
        "LEDGER_AUTH_AUDIENCE": settings.jwt_audience,
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_SERVICE_NAME": API_CONTAINER,
    }


def container_definitions(settings: Settings, region: str, image: str, environment: dict) -> str:
    registry_host = image.split("/", 1)[0]
    api = {
        "name": API_CONTAINER,
        "image": image,
        "essential": True,
        "user": RUNTIME_USER,
        "readonlyRootFilesystem": True,
        "portMappings": [{"containerPort": API_PORT, "protocol": "tcp"}],
        "environment": _environment(dict(environment, LEDGER_HEALTHCHECK_URL=LIVENESS_URL)),
        "logConfiguration": _logs(observability.API_LOG_GROUP, region, API_CONTAINER),
        "healthCheck": {"command": HEALTHCHECK, "interval": 15, "timeout": 5, "retries": 3, "startPeriod": 30},
        # Its first spans and metrics need the collector listening.
        "dependsOn": [{"containerName": COLLECTOR_CONTAINER, "condition": "HEALTHY"}],
    }
    collector = {
        "name": COLLECTOR_CONTAINER,
        # Through the account's pull-through cache: public.ecr.aws is on the internet, the tasks are not.
        "image": registry.through_cache(settings.adot_collector_image, registry_host),
        "essential": True,
        "readonlyRootFilesystem": True,
        # The image's entry point reads its whole configuration from this variable.
        "environment": _environment({"AOT_CONFIG_CONTENT": observability.sidecar_collector_config(settings)}),
        "logConfiguration": _logs(observability.API_LOG_GROUP, region, COLLECTOR_CONTAINER),
        "healthCheck": {"command": ["/healthcheck"], "interval": 10, "timeout": 5, "retries": 3, "startPeriod": 10},
    }
    return json.dumps([api, collector])


def migrate_container_definitions(region: str, image: str, environment: dict) -> str:
    """`ledger migrate` with the API's configuration (so it reads the same secret), no telemetry
    (there is no collector in this task), run once per schema change: `aws ecs run-task` (README)."""
    variables = {k: v for k, v in environment.items() if not k.startswith("OTEL_")}
    return json.dumps([{
        "name": MIGRATE_CONTAINER,
        "image": image,
        "essential": True,
        "user": RUNTIME_USER,
        "readonlyRootFilesystem": True,
        # ECS overrides cannot replace an entry point, so the admin tool gets a definition of its own.
        "entryPoint": ["/usr/local/bin/ledger"],
        "command": ["migrate"],
        "environment": _environment(variables),
        "logConfiguration": _logs(observability.API_LOG_GROUP, region, MIGRATE_CONTAINER),
    }])


def _fargate_task(name: str, definitions, execution_role: aws.iam.Role, task_role: aws.iam.Role, cpu: str,
                  memory: str) -> aws.ecs.TaskDefinition:
    return aws.ecs.TaskDefinition(
        name,
        family=name,
        requires_compatibilities=["FARGATE"],
        network_mode="awsvpc",
        cpu=cpu,
        memory=memory,
        runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "ARM64"},
        execution_role_arn=execution_role.arn,
        task_role_arn=task_role.arn,
        container_definitions=definitions,
    )


def create(settings: Settings, network: Network, tables: Tables, database: Database, repository: aws.ecr.Repository,
           balancer: LoadBalancer, execution_role: aws.iam.Role, task_role: aws.iam.Role,
           migrate_role: aws.iam.Role) -> Service:
    region = aws.get_region().region
    cluster = aws.ecs.Cluster("ledger", settings=[{"name": "containerInsights", "value": "enabled"}])
    inputs = pulumi.Output.all(
        repository.repository_url, database.url, database.secret_arn,
        tables.events.name, tables.idempotency.name, tables.snapshots.name,
    ).apply(lambda values: (f"{values[0]}:{settings.image_tag}",
                            api_environment(settings, region, values[3:6], values[1], values[2])))
    task_definition = _fargate_task(
        API_CONTAINER,
        inputs.apply(lambda image_and_env: container_definitions(settings, region, *image_and_env)),
        execution_role, task_role, cpu="512", memory="1024",
    )
    migrate_task_definition = _fargate_task(
        MIGRATE_CONTAINER,
        inputs.apply(lambda image_and_env: migrate_container_definitions(region, *image_and_env)),
        execution_role, migrate_role, cpu="256", memory="512",
    )
    service = aws.ecs.Service(
        API_CONTAINER,
        cluster=cluster.arn,
        task_definition=task_definition.arn,
        launch_type="FARGATE",
        desired_count=settings.desired_count,
        deployment_minimum_healthy_percent=100,
        deployment_maximum_percent=200,
        deployment_circuit_breaker={"enable": True, "rollback": True},
        health_check_grace_period_seconds=60,
        network_configuration={
            "subnets": [subnet.id for subnet in network.private_subnets],
            "security_groups": [network.tasks_security_group.id],
            "assign_public_ip": False,
        },
        load_balancers=[{
            "target_group_arn": balancer.target_group.arn,
            "container_name": API_CONTAINER,
            "container_port": API_PORT,
        }],
        # The target group must belong to a listener before a service can register into it.
        opts=pulumi.ResourceOptions(depends_on=[balancer.https_listener]),
    )
    return Service(cluster, task_definition, service, migrate_task_definition)
