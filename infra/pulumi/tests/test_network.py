"""The VPC: private subnets without an internet path for everything but the load balancer, which alone
sits in the public subnets; endpoints instead of a way out; who may talk to whom."""

from helpers import (EGRESS_RULE, FUNCTION, INGRESS_RULE, SECURITY_GROUP, SERVICE, rules_of)

SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
PRIVATE = ["private-0-id", "private-1-id"]
PUBLIC = ["public-0-id", "public-1-id"]


def _subnets(built, tier):
    return [s for s in built.of_type(SUBNET) if s.inputs["tags"]["ledger:tier"] == tier]


def _tables_of(built, subnet_ids):
    return {a.inputs["routeTableId"] for a in built.of_type(ASSOCIATION) if a.inputs["subnetId"] in subnet_ids}


def test_no_subnet_gives_public_addresses(built):
    subnets = built.of_type(SUBNET)
    assert len(subnets) == 4 and all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)


def test_private_and_public_subnets_each_span_two_zones(built):
    assert [sorted(s.inputs["availabilityZone"] for s in _subnets(built, tier)) for tier in ("private", "public")] == [
        ["eu-west-1a", "eu-west-1b"], ["eu-west-1a", "eu-west-1b"]]


def test_private_route_tables_have_no_path_to_the_internet(built):
    private_tables = _tables_of(built, PRIVATE)
    routes = [r for t in built.of_type(ROUTE_TABLE) if f"{t.name}-id" in private_tables for r in t.inputs.get("routes", [])]
    standalone = [r for r in built.of_type("aws:ec2/route:Route") if r.inputs["routeTableId"] in private_tables]
    assert (private_tables, routes, standalone) == ({"private-id"}, [], [])


def test_there_is_no_nat_gateway(built):
    assert not {r.typ for r in built.resources} & {"aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip"}


def test_only_the_public_route_table_routes_to_the_internet_gateway(built):
    gateway_routes = {(t.name, r["cidrBlock"]) for t in built.of_type(ROUTE_TABLE)
                      for r in t.inputs.get("routes", []) if r.get("gatewayId") == "public-id"}
    assert (gateway_routes, _tables_of(built, PUBLIC)) == ({("public", "0.0.0.0/0")}, {"public-id"})


def test_only_the_load_balancer_uses_the_public_subnets(built):
    users = {r.name for r in built.resources if set(PUBLIC) & set(
        r.inputs.get("subnets") or r.inputs.get("subnetIds") or [])}
    assert users == {"command-api"}


def test_tasks_run_only_in_the_private_subnets_without_a_public_address(built):
    network = built.one(SERVICE, "ledger-api").inputs["networkConfiguration"]
    assert (sorted(network["subnets"]), network["assignPublicIp"], network["securityGroups"]) == (
        PRIVATE, False, ["tasks-id"])


def test_both_functions_run_in_the_private_subnets_with_the_functions_group(built):
    configs = {f.name: f.inputs["vpcConfig"] for f in built.of_type(FUNCTION)}
    assert {name: (sorted(c["subnetIds"]), c["securityGroupIds"]) for name, c in configs.items()} == {
        "projection": (PRIVATE, ["functions-id"]),
        "query": (PRIVATE, ["functions-id"]),
    }


def test_dynamodb_and_s3_are_reached_through_gateway_endpoints_on_the_private_routes(built):
    found = {e.name: (e.inputs["serviceName"], e.inputs["vpcEndpointType"], e.inputs["routeTableIds"])
             for e in built.of_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Gateway"}
    assert found == {"dynamodb": ("com.amazonaws.eu-west-1.dynamodb", "Gateway", ["private-id"]),
                     "s3": ("com.amazonaws.eu-west-1.s3", "Gateway", ["private-id"])}


def test_the_interface_endpoints_are_those_the_tasks_and_collectors_call(built):
    services = {e.inputs["serviceName"].removeprefix("com.amazonaws.eu-west-1.")
                for e in built.of_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Interface"}
    assert services == {"secretsmanager", "ecr.api", "ecr.dkr", "logs", "xray", "monitoring"}


def test_interface_endpoints_are_private_with_dns_in_the_private_subnets(built):
    interfaces = [e.inputs for e in built.of_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Interface"]
    assert {(i["privateDnsEnabled"], tuple(sorted(i["subnetIds"])), tuple(i["securityGroupIds"]))
            for i in interfaces} == {(True, tuple(PRIVATE), ("endpoints-id",))}


def test_the_endpoints_take_443_from_the_tasks_and_functions_groups_alone(built):
    ingress = built.one(SECURITY_GROUP, "endpoints").inputs["ingress"]
    assert [(r["fromPort"], r["toPort"], sorted(r["securityGroups"]), r.get("cidrBlocks")) for r in ingress] == [
        (443, 443, ["functions-id", "tasks-id"], None)]


def test_the_database_port_is_open_to_the_functions_and_tasks_groups_alone(built):
    ingress = built.one(SECURITY_GROUP, "database").inputs["ingress"]
    assert [(rule["fromPort"], rule["toPort"], sorted(rule["securityGroups"]), rule.get("cidrBlocks"))
            for rule in ingress] == [(5432, 5432, ["functions-id", "tasks-id"], None)]


def test_the_tasks_take_8080_from_the_load_balancer_alone(built):
    assert rules_of(built, INGRESS_RULE, "tasks-id") == [(8080, 8080, "load-balancer-id")]


def test_the_tasks_go_out_only_to_the_database_endpoints_dynamodb_and_s3(built):
    assert rules_of(built, EGRESS_RULE, "tasks-id") == [
        (443, 443, "10.20.0.0/16"), (443, 443, "pl-dynamodb"), (443, 443, "pl-s3"), (5432, 5432, "database-id")]


def test_the_load_balancer_takes_443_and_80_from_the_allowed_cidrs(built):
    assert rules_of(built, INGRESS_RULE, "load-balancer-id") == [(80, 80, "0.0.0.0/0"), (443, 443, "0.0.0.0/0")]


def test_the_load_balancer_goes_out_only_to_the_tasks_on_8080(built):
    assert rules_of(built, EGRESS_RULE, "load-balancer-id") == [(8080, 8080, "tasks-id")]


def test_the_groups_with_standalone_rules_have_no_inline_rules(built):
    # Inline and standalone rules on one group fight each other on every update.
    groups = [built.one(SECURITY_GROUP, name).inputs for name in ("tasks", "load-balancer")]
    assert [(g.get("ingress"), g.get("egress")) for g in groups] == [(None, None), (None, None)]
