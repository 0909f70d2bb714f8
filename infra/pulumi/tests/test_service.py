"""The command API on ECS Fargate: the task definition, its ADOT sidecar, and the service."""

import json
from urllib.parse import urlsplit

from helpers import (DATABASE_SECRET_ARN, PASSWORDLESS_DATABASE_URL, SERVICE, TASK_DEFINITION, containers,
                     environment_of, has_password_url)

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ledger-api:v1.2.3"


def _task(built):
    return built.one(TASK_DEFINITION, "ledger-api").inputs


def _api(built):
    return containers(built)["ledger-api"]


def _collector(built):
    return containers(built)["adot-collector"]


def _service(built):
    return built.one(SERVICE, "ledger-api").inputs


def test_the_cluster_has_container_insights(built):
    assert built.one("aws:ecs/cluster:Cluster", "ledger").inputs["settings"] == [
        {"name": "containerInsights", "value": "enabled"}]


def test_the_task_is_fargate_arm64_awsvpc(built):
    task = _task(built)
    assert (task["requiresCompatibilities"], task["networkMode"], task["runtimePlatform"]["cpuArchitecture"]) == (
        ["FARGATE"], "awsvpc", "ARM64")


def test_the_task_runs_with_its_own_task_and_execution_roles(built):
    task = _task(built)
    assert (task["taskRoleArn"], task["executionRoleArn"]) == (
        "arn:aws:mock:eu-west-1:123456789012:api-task", "arn:aws:mock:eu-west-1:123456789012:api-task-execution")


def test_the_api_runs_the_configured_tag_of_the_repository_image(built):
    assert _api(built)["image"] == IMAGE


def test_the_api_listens_on_8080_on_every_interface_of_the_task(built):
    api = _api(built)
    assert (environment_of(api)["LEDGER_HTTP_ADDR"], api["portMappings"]) == (
        "0.0.0.0:8080", [{"containerPort": 8080, "protocol": "tcp"}])


def test_the_api_selects_dynamodb_and_postgres_with_the_stack_tables(built):
    env = environment_of(_api(built))
    assert [env[k] for k in ("LEDGER_EVENT_STORE", "LEDGER_READ_MODEL", "LEDGER_DYNAMODB_EVENTS_TABLE",
                             "LEDGER_DYNAMODB_IDEMPOTENCY_TABLE", "LEDGER_DYNAMODB_SNAPSHOTS_TABLE")] == [
        "dynamodb", "postgres", "ledger_events", "ledger_idempotency", "ledger_snapshots"]


def test_the_api_database_url_has_no_password_and_the_secret_arn_comes_beside_it(built):
    env = environment_of(_api(built))
    assert (env["DATABASE_URL"], env["LEDGER_DATABASE_SECRET_ARN"]) == (PASSWORDLESS_DATABASE_URL, DATABASE_SECRET_ARN)


def test_the_api_checks_tokens_of_the_authorizer_issuer_and_audience(built):
    env = environment_of(_api(built))
    authorizer = built.one("aws:apigatewayv2/authorizer:Authorizer", "query-jwt").inputs["jwtConfiguration"]
    assert (env["LEDGER_AUTH_JWKS_URL"], env["LEDGER_AUTH_ISSUER"], [env["LEDGER_AUTH_AUDIENCE"]]) == (
        "https://issuer.example.com/.well-known/jwks.json", authorizer["issuer"], authorizer["audiences"])


def test_the_api_exports_telemetry_to_the_sidecar_on_loopback(built):
    env = environment_of(_api(built))
    assert (env["OTEL_EXPORTER_OTLP_ENDPOINT"], env["OTEL_SERVICE_NAME"]) == ("http://127.0.0.1:4318", "ledger-api")


def test_no_container_environment_holds_a_password(built):
    assert not [v for c in containers(built).values() for v in environment_of(c).values() if has_password_url(v)]


def test_both_containers_have_a_read_only_root_filesystem(built):
    assert {c["name"]: c["readonlyRootFilesystem"] for c in containers(built).values()} == {
        "ledger-api": True, "adot-collector": True}


def test_the_api_runs_as_the_image_non_root_user(built):
    assert _api(built)["user"] == "65532"


def test_both_containers_log_to_the_api_log_group(built):
    options = {c["name"]: (c["logConfiguration"]["logDriver"], c["logConfiguration"]["options"]["awslogs-group"])
               for c in containers(built).values()}
    assert options == {"ledger-api": ("awslogs", "/ledger/api"), "adot-collector": ("awslogs", "/ledger/api")}


def test_the_log_groups_keep_logs_for_a_bounded_time(built):
    groups = {g.inputs["name"]: g.inputs["retentionInDays"] for g in built.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert groups == {"/ledger/api": 30, "/ledger/api/metrics": 30}


def test_the_api_health_check_is_the_image_binary(built):
    assert _api(built)["healthCheck"]["command"] == ["CMD", "/usr/local/bin/ledger-healthcheck"]


def test_the_api_container_health_check_asks_liveness_on_the_port_it_listens_on(built):
    env = environment_of(_api(built))
    port = env["LEDGER_HTTP_ADDR"].rsplit(":", 1)[1]
    assert env["LEDGER_HEALTHCHECK_URL"] == f"http://127.0.0.1:{port}/health/live"


def test_liveness_restarts_the_container_while_readiness_only_takes_it_out_of_rotation(built):
    # Readiness failing (a dependency down) must not restart tasks: ECS checks liveness, the ALB readiness.
    container = urlsplit(environment_of(_api(built))["LEDGER_HEALTHCHECK_URL"]).path
    target_group = built.one("aws:lb/targetGroup:TargetGroup", "ledger-api").inputs["healthCheck"]["path"]
    assert (container, target_group) == ("/health/live", "/health/ready")


def test_the_api_waits_for_a_healthy_collector(built):
    assert _api(built)["dependsOn"] == [{"containerName": "adot-collector", "condition": "HEALTHY"}]


def test_the_collector_image_is_pinned_to_a_version(built):
    tag = _collector(built)["image"].rsplit(":", 1)[1]
    assert (tag.startswith("v"), tag != "latest") == (True, True)


def test_the_collector_image_comes_through_the_ecr_public_pull_through_cache(built):
    rule = built.one("aws:ecr/pullThroughCacheRule:PullThroughCacheRule", "ecr-public").inputs
    assert (_collector(built)["image"].rsplit(":", 1)[0], rule["ecrRepositoryPrefix"], rule["upstreamRegistryUrl"]) == (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecr-public/aws-observability/aws-otel-collector",
        "ecr-public", "public.ecr.aws")


def test_the_collector_has_a_health_check_of_its_own(built):
    collector = _collector(built)
    config = json.loads(environment_of(collector)["AOT_CONFIG_CONTENT"])
    assert (collector["healthCheck"]["command"], config["service"]["extensions"]) == (["/healthcheck"], ["health_check"])


def test_the_collector_receives_otlp_on_loopback_only(built):
    config = json.loads(environment_of(_collector(built))["AOT_CONFIG_CONTENT"])
    assert config["receivers"]["otlp"]["protocols"] == {
        "grpc": {"endpoint": "127.0.0.1:4317"}, "http": {"endpoint": "127.0.0.1:4318"}}


def test_the_collector_sends_traces_to_xray_and_metrics_as_emf_to_its_group(built):
    config = json.loads(environment_of(_collector(built))["AOT_CONFIG_CONTENT"])
    pipelines = config["service"]["pipelines"]
    assert (pipelines["traces"]["exporters"], pipelines["metrics"]["exporters"],
            config["exporters"]["awsemf"]["log_group_name"], config["exporters"]["awsemf"]["namespace"]) == (
        ["awsxray"], ["awsemf"], "/ledger/api/metrics", "Ledger")


def test_the_service_runs_the_configured_number_of_tasks_on_fargate(built):
    service = _service(built)
    assert (service["launchType"], service["desiredCount"]) == ("FARGATE", 2)


def test_a_failed_deployment_rolls_back(built):
    assert _service(built)["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}


def test_a_deployment_never_drops_below_the_desired_count(built):
    service = _service(built)
    assert (service["deploymentMinimumHealthyPercent"], service["deploymentMaximumPercent"] > 100) == (100, True)


def test_the_service_sits_behind_the_api_target_group(built):
    assert _service(built)["loadBalancers"] == [{
        "targetGroupArn": "arn:aws:mock:eu-west-1:123456789012:ledger-api",
        "containerName": "ledger-api", "containerPort": 8080}]


def _migrate(built):
    definitions = json.loads(built.one(TASK_DEFINITION, "ledger-migrate").inputs["containerDefinitions"])
    assert len(definitions) == 1
    return definitions[0]


def test_the_migrate_task_runs_ledger_migrate_from_the_same_image(built):
    migrate = _migrate(built)
    assert (migrate["image"], migrate["entryPoint"], migrate["command"]) == (IMAGE, ["/usr/local/bin/ledger"], ["migrate"])


def test_the_migrate_task_reaches_postgres_with_the_api_database_settings(built):
    env = environment_of(_migrate(built))
    assert (env["LEDGER_READ_MODEL"], env["DATABASE_URL"], env["LEDGER_DATABASE_SECRET_ARN"]) == (
        "postgres", PASSWORDLESS_DATABASE_URL, DATABASE_SECRET_ARN)


def test_the_migrate_task_runs_with_a_role_of_its_own(built):
    assert built.one(TASK_DEFINITION, "ledger-migrate").inputs["taskRoleArn"] == (
        "arn:aws:mock:eu-west-1:123456789012:migrate-task")
