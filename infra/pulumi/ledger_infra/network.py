"""The VPC: two zones, each with a private subnet (the API tasks, both Lambdas, the read model) that
has no route to the internet, and a public subnet that holds only the internet-facing load balancer
(the one route to the internet gateway is on the public route table). AWS is reached from the private
subnets through endpoints (endpoints.py). The security groups say who may talk to whom: the load
balancer to the tasks on 8080, the tasks and functions to the database on 5432 and to the endpoints
on 443, nothing else."""

from dataclasses import dataclass

import pulumi_aws as aws

from .settings import Settings

VPC_CIDR = "10.20.0.0/16"
PRIVATE_SUBNET_CIDRS = ["10.20.1.0/24", "10.20.2.0/24"]
PUBLIC_SUBNET_CIDRS = ["10.20.101.0/24", "10.20.102.0/24"]
POSTGRES_PORT = 5432
API_PORT = 8080
HTTPS_PORT = 443
HTTP_PORT = 80


@dataclass
class Network:
    vpc: aws.ec2.Vpc
    private_subnets: list
    public_subnets: list
    private_route_table: aws.ec2.RouteTable
    public_route_table: aws.ec2.RouteTable
    functions_security_group: aws.ec2.SecurityGroup
    tasks_security_group: aws.ec2.SecurityGroup
    load_balancer_security_group: aws.ec2.SecurityGroup
    database_security_group: aws.ec2.SecurityGroup


def _subnets(kind: str, vpc: aws.ec2.Vpc, cidrs: list, zones, public: bool) -> list:
    return [
        aws.ec2.Subnet(
            f"{kind}-{index}",
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zones.names[index],
            # Nothing gets a public address by launching here: the load balancer gets its own.
            map_public_ip_on_launch=False,
            tags={"Name": f"ledger-{kind}-{index}", "ledger:tier": "public" if public else "private"},
        )
        for index, cidr in enumerate(cidrs)
    ]


def _route_table(kind: str, vpc: aws.ec2.Vpc, subnets: list, **routes) -> aws.ec2.RouteTable:
    table = aws.ec2.RouteTable(kind, vpc_id=vpc.id, **routes)
    for index, subnet in enumerate(subnets):
        aws.ec2.RouteTableAssociation(f"{kind}-{index}", subnet_id=subnet.id, route_table_id=table.id)
    return table


def _rule(kind, name: str, group, port: int, **peer):
    """One standalone rule (ingress or egress), so two groups may name each other without a cycle."""
    return kind(name, security_group_id=group.id, ip_protocol="tcp", from_port=port, to_port=port, **peer)


def create(settings: Settings) -> Network:
    zones = aws.get_availability_zones(state="available")
    vpc = aws.ec2.Vpc("ledger", cidr_block=VPC_CIDR, enable_dns_support=True, enable_dns_hostnames=True)
    private_subnets = _subnets("private", vpc, PRIVATE_SUBNET_CIDRS, zones, public=False)
    public_subnets = _subnets("public", vpc, PUBLIC_SUBNET_CIDRS, zones, public=True)
    # No route out: the private table holds only the VPC's local route and the gateway endpoints'.
    private_routes = _route_table("private", vpc, private_subnets)
    gateway = aws.ec2.InternetGateway("public", vpc_id=vpc.id)
    public_routes = _route_table(
        "public", vpc, public_subnets, routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}]
    )

    functions = aws.ec2.SecurityGroup(
        "functions", vpc_id=vpc.id,
        description="The Lambda functions: outbound within the VPC only (database, endpoints)",
        egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": [VPC_CIDR]}],
    )
    # These two name each other, so their rules are standalone resources (and nothing inline:
    # the provider then removes AWS's default allow-all egress).
    load_balancer = aws.ec2.SecurityGroup(
        "load-balancer", vpc_id=vpc.id, description="The ALB: HTTPS and HTTP from the allowed CIDRs, out to the tasks"
    )
    tasks = aws.ec2.SecurityGroup(
        "tasks", vpc_id=vpc.id, description="The API tasks: 8080 from the ALB; out to the database, endpoints, DynamoDB and S3"
    )
    for port in (HTTPS_PORT, HTTP_PORT):
        for index, cidr in enumerate(settings.allowed_cidrs):
            _rule(aws.vpc.SecurityGroupIngressRule, f"load-balancer-in-{port}-{index}", load_balancer, port, cidr_ipv4=cidr)
    _rule(aws.vpc.SecurityGroupEgressRule, "load-balancer-out-tasks", load_balancer, API_PORT,
          referenced_security_group_id=tasks.id)
    _rule(aws.vpc.SecurityGroupIngressRule, "tasks-in-load-balancer", tasks, API_PORT,
          referenced_security_group_id=load_balancer.id)
    # 443 within the VPC reaches the interface endpoints; the gateway endpoints' prefix lists are
    # added by endpoints.py (DynamoDB and S3 answer on public addresses, routed through the gateway).
    _rule(aws.vpc.SecurityGroupEgressRule, "tasks-out-endpoints", tasks, HTTPS_PORT, cidr_ipv4=VPC_CIDR)

    database = aws.ec2.SecurityGroup(
        "database", vpc_id=vpc.id,
        description="The PostgreSQL read model: its port from the functions and the tasks alone",
        ingress=[{
            "protocol": "tcp", "from_port": POSTGRES_PORT, "to_port": POSTGRES_PORT,
            "security_groups": [functions.id, tasks.id],
        }],
    )
    _rule(aws.vpc.SecurityGroupEgressRule, "tasks-out-database", tasks, POSTGRES_PORT,
          referenced_security_group_id=database.id)
    return Network(vpc, private_subnets, public_subnets, private_routes, public_routes,
                   functions, tasks, load_balancer, database)
