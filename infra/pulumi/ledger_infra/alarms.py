"""CloudWatch alarms, each notifying the alarm topic when it fires and when it clears: projection lag
(the `ledger.projection.lag` metric, in ms, as the ADOT collector publishes it), the mapping's iterator
age, dead letters, each function's errors and throttles, and on the command API's load balancer its
targets' 5xx, its own 5xx and unhealthy targets; the query API's 5xx; and the service running fewer
tasks than it should (Container Insights' `RunningTaskCount` below the desired count)."""

from dataclasses import dataclass

import pulumi_aws as aws

from .lambdas import Lambdas
from .loadbalancer import LoadBalancer
from .service import Service
from .settings import Settings


@dataclass
class Notify:
    topic_arn: object

    def alarm(self, name, namespace, metric, dimensions, threshold, statistic="Maximum",
              comparison="GreaterThanThreshold", missing="notBreaching"):
        return aws.cloudwatch.MetricAlarm(
            name,
            namespace=namespace,
            metric_name=metric,
            dimensions=dimensions,
            statistic=statistic,
            period=60,
            evaluation_periods=5,
            threshold=threshold,
            comparison_operator=comparison,
            treat_missing_data=missing,
            alarm_actions=[self.topic_arn],
            ok_actions=[self.topic_arn],
        )


def create(settings: Settings, functions: Lambdas, balancer: LoadBalancer, query_api, service: Service,
           topic: aws.sns.Topic) -> list:
    notify = Notify(topic.arn)
    projection = {"FunctionName": functions.projection.name}
    query = {"FunctionName": functions.query.name}
    load_balancer = {"LoadBalancer": balancer.load_balancer.arn_suffix}
    target_group = {"LoadBalancer": balancer.load_balancer.arn_suffix,
                    "TargetGroup": balancer.target_group.arn_suffix}
    return [
        notify.alarm("projection-lag", settings.metrics_namespace, "ledger.projection.lag", None,
                     settings.projection_lag_alarm_ms),
        # IteratorAge (ms): how far behind the stream's head the mapping reads.
        notify.alarm("projection-iterator-age", "AWS/Lambda", "IteratorAge", projection, 60_000),
        notify.alarm("projection-dead-letters", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
                     {"QueueName": functions.dead_letters.name}, 0),
        notify.alarm("projection-errors", "AWS/Lambda", "Errors", projection, 0, "Sum"),
        notify.alarm("projection-throttles", "AWS/Lambda", "Throttles", projection, 0, "Sum"),
        notify.alarm("query-errors", "AWS/Lambda", "Errors", query, 0, "Sum"),
        notify.alarm("query-throttles", "AWS/Lambda", "Throttles", query, 0, "Sum"),
        # The service's own 5xx, and the load balancer's (no healthy target, a timeout).
        notify.alarm("command-api-target-5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", target_group, 0, "Sum"),
        notify.alarm("command-api-elb-5xx", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", load_balancer, 0, "Sum"),
        notify.alarm("query-api-5xx", "AWS/ApiGateway", "5xx", {"ApiId": query_api.id}, 0, "Sum"),
        notify.alarm("command-api-unhealthy-targets", "AWS/ApplicationELB", "UnHealthyHostCount", target_group, 0),
        # Fewer tasks than desired for 5 minutes: tasks failing to start or being replaced over and
        # over (a deployment never drops below the desired count). No data while tasks are wanted
        # means none report; with none wanted (the first deploy's desiredCount 0) it cannot fire.
        notify.alarm("command-api-running-tasks", "ECS/ContainerInsights", "RunningTaskCount",
                     {"ClusterName": service.cluster.name, "ServiceName": service.service.name},
                     settings.desired_count, "Minimum", comparison="LessThanThreshold",
                     missing="breaching" if settings.desired_count > 0 else "notBreaching"),
    ]
