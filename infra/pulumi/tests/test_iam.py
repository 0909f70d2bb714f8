"""Least privilege: each role can touch only its own resources and actions."""

from helpers import ATTACHMENT, actions_of, as_list, policies_of, statements

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
    assert sorted(set(actions_of(built, "api-task"))) == [
        "dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem",
        "dynamodb:Query", "dynamodb:TransactWriteItems"]


def test_api_task_role_reaches_only_its_three_tables(built):
    resources = {r for s in _statements(built, "api-task") for r in as_list(s["Resource"])}
    assert resources == TABLE_ARNS


def test_no_policy_allows_everything(built):
    from helpers import ROLE_POLICY
    for policy in built.of_type(ROLE_POLICY):
        for s in statements(policy.inputs["policy"]):
            assert "*" not in as_list(s["Action"]) and "*" not in as_list(s["Resource"]), policy.name
