"""Where telemetry and alarms go: the API tasks' log groups (the containers' own, and the one the
ADOT sidecar writes CloudWatch EMF metrics to), the two ADOT collector configurations (the ECS
sidecar's and the Lambda layer's: OTLP in on localhost, traces to X-Ray, metrics as EMF), and the
SNS topic every alarm notifies, encrypted with a KMS key CloudWatch may use."""

import json
from dataclasses import dataclass

import pulumi_aws as aws

from .settings import Settings

API_LOG_GROUP = "/ledger/api"
API_METRICS_LOG_GROUP = "/ledger/api/metrics"
COLLECTOR_HEALTH_ENDPOINT = "localhost:13133"


@dataclass
class Observability:
    api_logs: aws.cloudwatch.LogGroup
    api_metrics_logs: aws.cloudwatch.LogGroup
    alarm_topic: aws.sns.Topic


def _collector_config(settings: Settings, host: str, emf_exporter: dict, extensions: dict) -> str:
    """JSON is YAML: the collectors take it as their configuration document."""
    pipelines = {
        "traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["awsxray"]},
        "metrics": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["awsemf"]},
    }
    return json.dumps({
        "extensions": extensions,
        "receivers": {"otlp": {"protocols": {
            # Loopback only: the application is the collector's one client, in the same task/sandbox.
            "grpc": {"endpoint": f"{host}:4317"},
            "http": {"endpoint": f"{host}:4318"},
        }}},
        "processors": {"batch": {}},
        "exporters": {"awsxray": {}, "awsemf": dict(emf_exporter, namespace=settings.metrics_namespace)},
        "service": {"extensions": list(extensions), "pipelines": pipelines},
    }, separators=(",", ":"))


def sidecar_collector_config(settings: Settings) -> str:
    """The ECS sidecar: EMF to its own log group (CloudWatch extracts the metrics), a health endpoint
    for the container health check the API container waits on."""
    return _collector_config(
        settings,
        "127.0.0.1",
        {"log_group_name": API_METRICS_LOG_GROUP, "log_stream_name": "{TaskId}"},
        {"health_check": {"endpoint": COLLECTOR_HEALTH_ENDPOINT}},
    )


def lambda_collector_config(settings: Settings) -> str:
    """The Lambda layer: EMF on stdout, into the function's own log group (no extra log rights)."""
    # `localhost`, as the function's OTEL_EXPORTER_OTLP_ENDPOINT and the layer's own default say.
    return _collector_config(settings, "localhost", {"output_destination": "stdout"}, {})


def _alarm_key() -> aws.kms.Key:
    # The AWS-managed alias/aws/sns key cannot be used by CloudWatch alarms (its policy cannot grant
    # cloudwatch.amazonaws.com), so the topic has a key of its own that says so.
    account = aws.get_caller_identity().account_id
    policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "CloudWatchPublishes", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"},
        ],
    })
    return aws.kms.Key("alarms", description="Encrypts the ledger alarm topic", enable_key_rotation=True, policy=policy)


def create(settings: Settings) -> Observability:
    api_logs = aws.cloudwatch.LogGroup("api", name=API_LOG_GROUP, retention_in_days=settings.log_retention_days)
    api_metrics_logs = aws.cloudwatch.LogGroup(
        "api-metrics", name=API_METRICS_LOG_GROUP, retention_in_days=settings.log_retention_days
    )
    topic = aws.sns.Topic("alarms", kms_master_key_id=_alarm_key().arn)
    if settings.alarm_email:
        # SNS mails a confirmation link first; nothing arrives until it is followed.
        aws.sns.TopicSubscription("alarms-email", topic=topic.arn, protocol="email", endpoint=settings.alarm_email)
    return Observability(api_logs, api_metrics_logs, topic)
