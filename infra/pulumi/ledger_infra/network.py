"""The VPC: two zones, each with a private subnet (the API tasks, both Lambdas, the read model) that
nothing on the internet can reach (no public address, no route to the internet gateway), and a public
subnet that holds the internet-facing load balancer and, with `natGateways` (the default), the zone's
NAT gateway. The NAT is the private subnets' only way out, for one reason: the API tasks and the query
Lambda fetch and refresh `LEDGER_AUTH_JWKS_URL`, a public issuer's key set (Cognito, Auth0, Okta...).
AWS itself is reached through endpoints (endpoints.py), NAT or not. The security groups say who may
talk to whom: the load balancer to the tasks on 8080; the tasks and functions to the database on 5432,
to the endpoints on 443, and (only with NAT) to the internet on 443 alone; nothing else."""

from dataclasses import dataclass

import pulumi
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
    # One per zone, each with its default route to its own zone's NAT gateway (when there are NATs).
    private_route_tables: list
    public_route_table: aws.ec2.RouteTable
    nat_gateways: list
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


def _nat_gateways(public_subnets: list, gateway: aws.ec2.InternetGateway) -> list:
    """One per zone, in that zone's public subnet: a zone's outage takes only its own way out."""
    nats = []
    for index, subnet in enumerate(public_subnets):
        address = aws.ec2.Eip(f"nat-{index}", domain="vpc", tags={"Name": f"ledger-nat-{index}"})
        nats.append(aws.ec2.NatGateway(
            f"nat-{index}", allocation_id=address.id, subnet_id=subnet.id, connectivity_type="public",
            tags={"Name": f"ledger-nat-{index}"},
            # A NAT gateway's traffic leaves through the internet gateway, which must exist first.
            opts=pulumi.ResourceOptions(depends_on=[gateway]),
        ))
    return nats


def _private_route_tables(vpc: aws.ec2.Vpc, private_subnets: list, nats: list) -> list:
    """A table per zone: the VPC's local route, the gateway endpoints' (endpoints.py), and with NAT a
    default route to the zone's own NAT gateway; never a route to the internet gateway."""
    tables = []
    for index, subnet in enumerate(private_subnets):
        routes = [{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nats[index].id}] if nats else []
        table = aws.ec2.RouteTable(f"private-routes-{index}", vpc_id=vpc.id, routes=routes,
                                   tags={"Name": f"ledger-private-{index}"})
        aws.ec2.RouteTableAssociation(f"private-{index}", subnet_id=subnet.id, route_table_id=table.id)
        tables.append(table)
    return tables


def _rule(kind, name: str, group, port: int, **peer):
    """One standalone rule (ingress or egress), so two groups may name each other without a cycle."""
    return kind(name, security_group_id=group.id, ip_protocol="tcp", from_port=port, to_port=port, **peer)


def create(settings: Settings) -> Network:
    zones = aws.get_availability_zones(state="available")
    vpc = aws.ec2.Vpc("ledger", cidr_block=VPC_CIDR, enable_dns_support=True, enable_dns_hostnames=True)
    private_subnets = _subnets("private", vpc, PRIVATE_SUBNET_CIDRS, zones, public=False)
    public_subnets = _subnets("public", vpc, PUBLIC_SUBNET_CIDRS, zones, public=True)
    gateway = aws.ec2.InternetGateway("public", vpc_id=vpc.id)
    public_routes = _route_table(
        "public", vpc, public_subnets, routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}]
    )
    nats = _nat_gateways(public_subnets, gateway) if settings.nat_gateways else []
    private_routes = _private_route_tables(vpc, private_subnets, nats)

    # These groups name each other (the database's names the functions and the tasks, their egress
    # names the database), so their rules are standalone resources (and nothing inline: the provider
    # then removes AWS's default allow-all egress).
    functions = aws.ec2.SecurityGroup(
        "functions", vpc_id=vpc.id,
        description="The Lambda functions: out to the database, the endpoints, and with NAT the internet on 443",
    )
    load_balancer = aws.ec2.SecurityGroup(
        "load-balancer", vpc_id=vpc.id, description="The ALB: HTTPS and HTTP from the allowed CIDRs, out to the tasks"
    )
    tasks = aws.ec2.SecurityGroup(
        "tasks", vpc_id=vpc.id,
        description=("The API tasks: 8080 from the ALB; out to the database, endpoints, DynamoDB, S3, "
                     "and with NAT the internet on 443"),
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
    # With NAT, 443 anywhere: the issuer's JWKS (and nothing but HTTPS leaves, whatever a process tries).
    for name, group in (("tasks", tasks), ("functions", functions)):
        _rule(aws.vpc.SecurityGroupEgressRule, f"{name}-out-endpoints", group, HTTPS_PORT, cidr_ipv4=VPC_CIDR)
        if settings.nat_gateways:
            _rule(aws.vpc.SecurityGroupEgressRule, f"{name}-out-internet-https", group, HTTPS_PORT,
                  cidr_ipv4="0.0.0.0/0")

    database = aws.ec2.SecurityGroup(
        "database", vpc_id=vpc.id,
        description="The PostgreSQL read model: its port from the functions and the tasks alone",
        ingress=[{
            "protocol": "tcp", "from_port": POSTGRES_PORT, "to_port": POSTGRES_PORT,
            "security_groups": [functions.id, tasks.id],
        }],
    )
    for name, group in (("tasks", tasks), ("functions", functions)):
        _rule(aws.vpc.SecurityGroupEgressRule, f"{name}-out-database", group, POSTGRES_PORT,
              referenced_security_group_id=database.id)
    return Network(vpc, private_subnets, public_subnets, private_routes, public_routes, nats,
                   functions, tasks, load_balancer, database)
