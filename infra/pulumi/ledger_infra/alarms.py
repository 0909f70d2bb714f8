"""CloudWatch alarms: projection lag (the `ledger.projection.lag` metric, in ms, as the ADOT collector
publishes it), the mapping's iterator age, dead letters, and each function's errors and throttles."""

import pulumi_aws as aws

from .lambdas import Lambdas
from .settings import Settings


def _alarm(name, namespace, metric, dimensions, threshold, statistic="Maximum"):
    return aws.cloudwatch.MetricAlarm(
        name,
        namespace=namespace,
        metric_name=metric,
        dimensions=dimensions,
        statistic=statistic,
        period=60,
        evaluation_periods=5,
        threshold=threshold,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
    )


def create(settings: Settings, functions: Lambdas) -> list:
    projection = {"FunctionName": functions.projection.name}
    query = {"FunctionName": functions.query.name}
    return [
        _alarm("projection-lag", settings.metrics_namespace, "ledger.projection.lag", None,
               settings.projection_lag_alarm_ms),
        # IteratorAge (ms): how far behind the stream's head the mapping reads.
        _alarm("projection-iterator-age", "AWS/Lambda", "IteratorAge", projection, 60_000),
        _alarm("projection-dead-letters", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
               {"QueueName": functions.dead_letters.name}, 0),
        _alarm("projection-errors", "AWS/Lambda", "Errors", projection, 0, "Sum"),
        _alarm("projection-throttles", "AWS/Lambda", "Throttles", projection, 0, "Sum"),
        _alarm("query-errors", "AWS/Lambda", "Errors", query, 0, "Sum"),
        _alarm("query-throttles", "AWS/Lambda", "Throttles", query, 0, "Sum"),
    ]
