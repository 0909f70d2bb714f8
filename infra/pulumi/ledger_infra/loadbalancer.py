"""The internet-facing Application Load Balancer in the public subnets, in front of the API tasks:
HTTPS only (TLS 1.3 policy, the configured certificate; port 80 only redirects), invalid header
fields dropped, access logs to their own bucket (access_logs.py), and an `ip` target group on 8080
whose health check is `/health/ready`."""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .access_logs import PREFIX as ACCESS_LOG_PREFIX, AccessLogs
from .network import API_PORT, HTTP_PORT, HTTPS_PORT, Network
from .settings import Settings

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
READY_PATH = "/health/ready"


@dataclass
class LoadBalancer:
    load_balancer: aws.lb.LoadBalancer
    target_group: aws.lb.TargetGroup
    https_listener: aws.lb.Listener
    access_logs: AccessLogs


def create(settings: Settings, network: Network, access_logs: AccessLogs) -> LoadBalancer:
    load_balancer = aws.lb.LoadBalancer(
        "command-api",
        load_balancer_type="application",
        internal=False,
        subnets=[subnet.id for subnet in network.public_subnets],
        security_groups=[network.load_balancer_security_group.id],
        drop_invalid_header_fields=True,
        idle_timeout=60,
        access_logs={"bucket": access_logs.bucket.bucket, "prefix": ACCESS_LOG_PREFIX, "enabled": True},
        opts=pulumi.ResourceOptions(depends_on=[access_logs.policy]),
    )
    target_group = aws.lb.TargetGroup(
        "ledger-api",
        target_type="ip",  # awsvpc tasks register by address
        protocol="HTTP",
        port=API_PORT,
        vpc_id=network.vpc.id,
        # In-flight requests finish (the service's own shutdown is bounded well below this).
        deregistration_delay=30,
        health_check={
            "path": READY_PATH,
            "matcher": "200",
            "protocol": "HTTP",
            "port": "traffic-port",
            "interval": 15,
            "timeout": 5,
            "healthy_threshold": 2,
            "unhealthy_threshold": 3,
        },
    )
    https_listener = aws.lb.Listener(
        "https",
        load_balancer_arn=load_balancer.arn,
        port=HTTPS_PORT,
        protocol="HTTPS",
        ssl_policy=TLS_POLICY,
        certificate_arn=settings.certificate_arn,
        default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
    )
    aws.lb.Listener(
        "http-redirect",
        load_balancer_arn=load_balancer.arn,
        port=HTTP_PORT,
        protocol="HTTP",
        default_actions=[{
            "type": "redirect",
            "redirect": {"protocol": "HTTPS", "port": str(HTTPS_PORT), "status_code": "HTTP_301"},
        }],
    )
    return LoadBalancer(load_balancer, target_group, https_listener, access_logs)
