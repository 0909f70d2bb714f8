"""The VPC endpoints through which the private subnets reach AWS without the internet (with or without
NAT: AWS traffic never takes the NAT, which costs per GB and is there for the issuer's JWKS alone):
gateway endpoints for DynamoDB (the event store) and S3 (where ECR keeps image layers) on the private
route tables, and interface endpoints for what the tasks and functions call: Secrets Manager (the database
secret), ECR (image pulls), CloudWatch Logs (awslogs, EMF), X-Ray and CloudWatch (the ADOT
collectors' exporters). The endpoints' group takes 443 from the tasks' and functions' groups alone."""

import pulumi_aws as aws

from .network import HTTPS_PORT, Network

INTERFACE_SERVICES = ["secretsmanager", "ecr.api", "ecr.dkr", "logs", "xray", "monitoring"]
GATEWAY_SERVICES = ["dynamodb", "s3"]


def create(network: Network) -> dict:
    region = aws.get_region().region
    endpoints_group = aws.ec2.SecurityGroup(
        "endpoints",
        vpc_id=network.vpc.id,
        description="Interface endpoints: HTTPS from the tasks and the functions alone",
        ingress=[{
            "protocol": "tcp", "from_port": HTTPS_PORT, "to_port": HTTPS_PORT,
            "security_groups": [network.tasks_security_group.id, network.functions_security_group.id],
        }],
    )
    created = {}
    for service in GATEWAY_SERVICES:
        created[service] = aws.ec2.VpcEndpoint(
            service,
            vpc_id=network.vpc.id,
            service_name=f"com.amazonaws.{region}.{service}",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in network.private_route_tables],
        )
        # HTTPS to this service's addresses, via the gateway (the functions call neither).
        aws.vpc.SecurityGroupEgressRule(
            f"tasks-out-{service}",
            security_group_id=network.tasks_security_group.id,
            ip_protocol="tcp", from_port=HTTPS_PORT, to_port=HTTPS_PORT,
            prefix_list_id=created[service].prefix_list_id,
        )
    for service in INTERFACE_SERVICES:
        created[service] = aws.ec2.VpcEndpoint(
            service.replace(".", "-"),
            vpc_id=network.vpc.id,
            service_name=f"com.amazonaws.{region}.{service}",
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=[subnet.id for subnet in network.private_subnets],
            security_group_ids=[endpoints_group.id],
        )
    return created
