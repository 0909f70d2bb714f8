"""Least privilege: each role can touch only its own resources and actions."""

from helpers import ATTACHMENT, DATABASE_SECRET_ARN, ROLE_POLICY, actions_of, as_list, policies_of, statements

MOCK = "arn:aws:mock:eu-west-1:123456789012"
# These have no resource-level permissions in IAM: `*` is the only resource they take.
RESOURCELESS_ACTIONS = {"ecr:GetAuthorizationToken", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                        "xray:GetSamplingRules", "xray:GetSamplingTargets", "cloudwatch:PutMetricData"}

EVENTS_ARN = "arn:aws:mock:eu-west-1:123456789012:events"
EVENTS_STREAM_ARN = f"{EVENTS_ARN}/stream/2026-12-01T00:00:00.000"
TABLE_ARNS = {f"arn:aws:mock:eu-west-1:123456789012:{t}" for t in ("events", "idempotency", "snapshots")}
LOGS_ONLY = {"arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"}


def _statements(built, role):
    return [s for p in policies_of(built, role) for s in statements(p.inputs["policy"])]


def test_projection_role_cannot_write_the_events_table(built):
    writes = {"dynamodb:PutItem", "dynamodb:TransactWriteItems", "dynamodb:UpdateItem",
              "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:*", "*"}
    assert writes.isdisjoint(actions_of(built, "projection-lambda"))


def test_projection_role_dynamodb_rights_are_stream_reads_on_the_events_stream(built):
    dynamo = [s for s in _statements(built, "projection-lambda")
              if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert [(sorted(as_list(s["Action"])), as_list(s["Resource"])) for s in dynamo] == [(
        ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"],
        [EVENTS_STREAM_ARN])]


def test_projection_role_may_send_only_to_its_dead_letter_queue(built):
    sqs = [s for s in _statements(built, "projection-lambda")
           if any(a.startswith("sqs:") for a in as_list(s["Action"]))]
    assert [(as_list(s["Action"]), as_list(s["Resource"])) for s in sqs] == [(
        ["sqs:SendMessage"], ["arn:aws:mock:eu-west-1:123456789012:projection-dead-letters"])]


def test_query_role_has_no_dynamodb_action(built):
    assert not [a for a in actions_of(built, "query-lambda") if a.startswith("dynamodb:") or a == "*"]


def test_lambda_roles_attach_only_the_logs_policy(built):
    assert {a.inputs["policyArn"] for a in built.of_type(ATTACHMENT)} == LOGS_ONLY


def test_api_task_role_uses_only_the_adapter_actions(built):
    assert sorted({a for a in actions_of(built, "api-task") if a.startswith("dynamodb:")}) == [
        "dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem",
        "dynamodb:Query", "dynamodb:TransactWriteItems"]


def test_api_task_role_reaches_only_its_three_tables(built):
    resources = {r for s in _statements(built, "api-task") if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))
                 for r in as_list(s["Resource"])}
    assert resources == TABLE_ARNS


def test_no_policy_allows_every_action(built):
    for policy in built.of_type(ROLE_POLICY):
        for s in statements(policy.inputs["policy"]):
            assert not [a for a in as_list(s["Action"]) if a == "*" or a.endswith(":*")], policy.name


def test_only_actions_without_resource_level_permissions_are_granted_on_every_resource(built):
    on_everything = {a for p in built.of_type(ROLE_POLICY) for s in statements(p.inputs["policy"])
                     if "*" in as_list(s["Resource"]) for a in as_list(s["Action"])}
    assert on_everything <= RESOURCELESS_ACTIONS


def test_no_role_reaches_dynamodb_or_secrets_on_every_resource(built):
    for policy in built.of_type(ROLE_POLICY):
        for s in statements(policy.inputs["policy"]):
            services = {a.split(":")[0] for a in as_list(s["Action"])}
            if services & {"dynamodb", "secretsmanager"}:
                assert all(r != "*" and not r.endswith(":*") for r in as_list(s["Resource"])), policy.name


def test_every_role_may_read_only_the_database_secret(built):
    readers = {}
    for policy in built.of_type(ROLE_POLICY):
        for s in statements(policy.inputs["policy"]):
            if any(a.startswith("secretsmanager:") for a in as_list(s["Action"])):
                readers[policy.inputs["role"]] = (as_list(s["Action"]), as_list(s["Resource"]))
    only_the_secret = (["secretsmanager:GetSecretValue"], [DATABASE_SECRET_ARN])
    assert readers == {"projection-lambda-id": only_the_secret, "query-lambda-id": only_the_secret,
                       "api-task-id": only_the_secret, "migrate-task-id": only_the_secret}


def test_the_task_role_cannot_write_beyond_the_adapter_actions(built):
    writes = {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteTable",
              "dynamodb:UpdateTable", "dynamodb:CreateTable", "dynamodb:PartiQLUpdate"}
    assert writes.isdisjoint(actions_of(built, "api-task"))


def test_the_task_role_metrics_are_limited_to_the_ledger_namespace(built):
    metric = [s for s in _statements(built, "api-task") if "cloudwatch:PutMetricData" in as_list(s["Action"])]
    assert [s.get("Condition") for s in metric] == [{"StringEquals": {"cloudwatch:namespace": "Ledger"}}]


def test_the_task_role_writes_logs_only_to_its_metrics_group(built):
    logs = {r for s in _statements(built, "api-task") if any(a.startswith("logs:") for a in as_list(s["Action"]))
            for r in as_list(s["Resource"])}
    assert logs == {f"{MOCK}:api-metrics", f"{MOCK}:api-metrics:*"}


def test_the_task_collector_may_send_traces_to_xray(built):
    assert {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
            "xray:GetSamplingTargets"} <= set(actions_of(built, "api-task"))


def test_both_functions_may_send_traces_to_xray(built):
    assert all({"xray:PutTraceSegments", "xray:PutTelemetryRecords"} <= set(actions_of(built, role))
               for role in ("projection-lambda", "query-lambda"))


def test_the_execution_role_pulls_only_from_its_repository_and_the_cached_collector(built):
    pulls = [s for s in _statements(built, "api-task-execution")
             if any(a.startswith("ecr:") and a != "ecr:GetAuthorizationToken" for a in as_list(s["Action"]))]
    pull = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    assert [(sorted(as_list(s["Action"])), as_list(s["Resource"])) for s in pulls] == [
        (pull, [f"{MOCK}:ledger-api"]),
        (sorted(pull + ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]),
         ["arn:aws:ecr:eu-west-1:123456789012:repository/ecr-public/aws-observability/aws-otel-collector"])]


def test_the_execution_role_writes_only_its_log_group(built):
    logs = [s for s in _statements(built, "api-task-execution") if any(a.startswith("logs:") for a in as_list(s["Action"]))]
    assert [(sorted(as_list(s["Action"])), as_list(s["Resource"])) for s in logs] == [(
        ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{MOCK}:api:*"])]


def test_the_execution_role_has_no_table_or_secret_access(built):
    assert not [a for a in actions_of(built, "api-task-execution") if a.split(":")[0] in ("dynamodb", "secretsmanager")]


def test_the_migrate_role_may_only_read_the_database_secret(built):
    assert [(as_list(s["Action"]), as_list(s["Resource"])) for s in _statements(built, "migrate-task")] == [
        (["secretsmanager:GetSecretValue"], [DATABASE_SECRET_ARN])]
