"""CloudWatch alarms on the projection path, both functions and the command API, and where they go."""

from helpers import ALARM

TOPIC_ARN = "arn:aws:mock:eu-west-1:123456789012:alarms"
TOPIC = "aws:sns/topic:Topic"


def test_alarms_cover_lag_iterator_age_dead_letters_errors_throttles_5xx_and_running_tasks(built):
    metrics = {(a.inputs["namespace"], a.inputs["metricName"]) for a in built.of_type(ALARM)}
    assert metrics == {("Ledger", "ledger.projection.lag"), ("AWS/Lambda", "IteratorAge"),
                       ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
                       ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"),
                       ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
                       ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count"),
                       ("AWS/ApplicationELB", "UnHealthyHostCount"), ("AWS/ApiGateway", "5xx"),
                       ("ECS/ContainerInsights", "RunningTaskCount")}


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(built):
    assert {(tuple(a.inputs["alarmActions"]), tuple(a.inputs["okActions"])) for a in built.of_type(ALARM)} == {
        ((TOPIC_ARN,), (TOPIC_ARN,))}


def test_the_alarm_topic_is_encrypted_with_its_own_kms_key(built):
    assert built.one(TOPIC, "alarms").inputs["kmsMasterKeyId"] == "arn:aws:mock:eu-west-1:123456789012:alarms"


def test_cloudwatch_may_use_the_alarm_topic_key(built):
    import json
    policy = json.loads(built.one("aws:kms/key:Key", "alarms").inputs["policy"])
    granted = [s["Action"] for s in policy["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert granted == [["kms:Decrypt", "kms:GenerateDataKey*"]]


def test_the_configured_email_subscribes_to_the_alarm_topic(built):
    inputs = built.one("aws:sns/topicSubscription:TopicSubscription", "alarms-email").inputs
    assert (inputs["topic"], inputs["protocol"], inputs["endpoint"]) == (TOPIC_ARN, "email", "oncall@example.com")


def test_the_unhealthy_target_alarm_watches_the_api_target_group(built):
    inputs = built.one(ALARM, "command-api-unhealthy-targets").inputs
    assert inputs["dimensions"] == {"LoadBalancer": "app/command-api/0123456789abcdef",
                                    "TargetGroup": "app/ledger-api/0123456789abcdef"}


def test_the_running_task_alarm_fires_below_the_desired_count_of_the_api_service(built):
    inputs = built.one(ALARM, "command-api-running-tasks").inputs
    assert (inputs["dimensions"], inputs["statistic"], inputs["comparisonOperator"], inputs["threshold"]) == (
        {"ClusterName": "ledger", "ServiceName": "ledger-api"}, "Minimum", "LessThanThreshold", 2)


def test_the_running_task_alarm_counts_no_data_as_no_tasks(built):
    assert built.one(ALARM, "command-api-running-tasks").inputs["treatMissingData"] == "breaching"


def test_with_no_task_wanted_the_running_task_alarm_stays_quiet(built_with_no_tasks):
    inputs = built_with_no_tasks.one(ALARM, "command-api-running-tasks").inputs
    assert (inputs["threshold"], inputs["treatMissingData"]) == (0, "notBreaching")
