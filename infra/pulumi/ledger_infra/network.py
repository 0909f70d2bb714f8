"""The VPC the read model lives in: private subnets only (no internet gateway, no NAT), two zones,
a gateway endpoint for DynamoDB and an interface endpoint for Secrets Manager, so that the Lambdas
and tasks reach AWS without leaving the VPC; and the security groups between the functions and the
database (PostgreSQL's port open to the functions' group alone)."""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

VPC_CIDR = "10.20.0.0/16"
PRIVATE_SUBNET_CIDRS = ["10.20.1.0/24", "10.20.2.0/24"]
POSTGRES_PORT = 5432


@dataclass
class Network:
    vpc: aws.ec2.Vpc
    private_subnets: list
    functions_security_group: aws.ec2.SecurityGroup
    database_security_group: aws.ec2.SecurityGroup


def create() -> Network:
    region = aws.get_region()
    zones = aws.get_availability_zones(state="available")
    vpc = aws.ec2.Vpc("ledger", cidr_block=VPC_CIDR, enable_dns_support=True, enable_dns_hostnames=True)
    private_subnets = [
        aws.ec2.Subnet(
            f"private-{index}",
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zones.names[index],
            map_public_ip_on_launch=False,
        )
        for index, cidr in enumerate(PRIVATE_SUBNET_CIDRS)
    ]
    private_routes = aws.ec2.RouteTable("private", vpc_id=vpc.id)
    for index, subnet in enumerate(private_subnets):
        aws.ec2.RouteTableAssociation(f"private-{index}", subnet_id=subnet.id, route_table_id=private_routes.id)

    functions_security_group = aws.ec2.SecurityGroup(
        "functions",
        vpc_id=vpc.id,
        description="The Lambda functions and API tasks: outbound within the VPC only",
        egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": [VPC_CIDR]}],
    )
    database_security_group = aws.ec2.SecurityGroup(
        "database",
        vpc_id=vpc.id,
        description="The PostgreSQL read model: its port from the functions' group alone",
        ingress=[{
            "protocol": "tcp",
            "from_port": POSTGRES_PORT,
            "to_port": POSTGRES_PORT,
            "security_groups": [functions_security_group.id],
        }],
    )
    endpoints_security_group = aws.ec2.SecurityGroup(
        "endpoints",
        vpc_id=vpc.id,
        description="Interface endpoints: HTTPS from within the VPC",
        ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [VPC_CIDR]}],
    )
    # DynamoDB through a gateway endpoint on the private route table: no NAT, no internet.
    aws.ec2.VpcEndpoint(
        "dynamodb",
        vpc_id=vpc.id,
        service_name=f"com.amazonaws.{region.region}.dynamodb",
        vpc_endpoint_type="Gateway",
        route_table_ids=[private_routes.id],
    )
    aws.ec2.VpcEndpoint(
        "secretsmanager",
        vpc_id=vpc.id,
        service_name=f"com.amazonaws.{region.region}.secretsmanager",
        vpc_endpoint_type="Interface",
        private_dns_enabled=True,
        subnet_ids=[subnet.id for subnet in private_subnets],
        security_group_ids=[endpoints_security_group.id],
    )
    pulumi.export("vpc_id", vpc.id)
    return Network(vpc, private_subnets, functions_security_group, database_security_group)
