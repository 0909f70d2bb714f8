"""The VPC: private subnets nothing on the internet can reach, whose one way out (with `natGateways`, the
default) is their zone's NAT gateway, on 443 alone; the load balancer and the NATs alone in the public
subnets; endpoints for AWS; who may talk to whom. `built_without_nat` is the stack with `natGateways=false`."""

from helpers import (EGRESS_RULE, FUNCTION, INGRESS_RULE, SECURITY_GROUP, SERVICE, rules_of)

SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
NAT = "aws:ec2/natGateway:NatGateway"
EIP = "aws:ec2/eip:Eip"
ROUTE = "aws:ec2/route:Route"
PRIVATE = ["private-0-id", "private-1-id"]
PUBLIC = ["public-0-id", "public-1-id"]
PRIVATE_TABLES = {"private-routes-0-id", "private-routes-1-id"}


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


def _private_routes(built):
    """Every route of the private subnets' tables, inline or standalone, as (table, route)."""
    tables = _tables_of(built, PRIVATE)
    inline = [(f"{t.name}-id", r) for t in built.of_type(ROUTE_TABLE) if f"{t.name}-id" in tables
              for r in t.inputs.get("routes", [])]
    standalone = [(r.inputs["routeTableId"], r.inputs) for r in built.of_type(ROUTE) if r.inputs["routeTableId"] in tables]
    return inline + standalone


def test_each_private_subnet_has_a_route_table_of_its_own(built):
    associations = {a.inputs["subnetId"]: a.inputs["routeTableId"] for a in built.of_type(ASSOCIATION)
                    if a.inputs["subnetId"] in PRIVATE}
    assert associations == {"private-0-id": "private-routes-0-id", "private-1-id": "private-routes-1-id"}


def test_no_private_route_reaches_the_internet_gateway_with_or_without_nat(built, built_without_nat):
    assert [[route for _, route in _private_routes(b) if route.get("gatewayId") == "public-id"]
            for b in (built, built_without_nat)] == [[], []]


def test_a_nat_gateway_per_zone_sits_in_that_zones_public_subnet_on_its_own_address(built):
    nats = {n.name: (n.inputs["subnetId"], n.inputs["allocationId"], n.inputs["connectivityType"])
            for n in built.of_type(NAT)}
    assert nats == {"nat-0": ("public-0-id", "nat-0-id", "public"), "nat-1": ("public-1-id", "nat-1-id", "public")}


def test_each_private_zone_goes_out_only_through_its_own_zones_nat(built):
    assert sorted((table, route["cidrBlock"], route.get("natGatewayId"), route.get("gatewayId"))
                  for table, route in _private_routes(built)) == [
        ("private-routes-0-id", "0.0.0.0/0", "nat-0-id", None), ("private-routes-1-id", "0.0.0.0/0", "nat-1-id", None)]


def test_the_only_public_addresses_are_the_nat_gateways(built):
    addresses = {e.name: e.inputs["domain"] for e in built.of_type(EIP)}
    assert (addresses, {n.inputs["allocationId"] for n in built.of_type(NAT)}) == (
        {"nat-0": "vpc", "nat-1": "vpc"}, {"nat-0-id", "nat-1-id"})


def test_without_nat_gateways_there_is_no_nat_and_no_default_route(built_without_nat):
    kinds = {r.typ for r in built_without_nat.resources} & {NAT, EIP}
    assert (kinds, _private_routes(built_without_nat), _tables_of(built_without_nat, PRIVATE)) == (
        set(), [], PRIVATE_TABLES)


def test_nat_gateways_are_the_default(built):
    assert built.stack.settings.nat_gateways is True


def test_only_the_public_route_table_routes_to_the_internet_gateway(built):
    gateway_routes = {(t.name, r["cidrBlock"]) for t in built.of_type(ROUTE_TABLE)
                      for r in t.inputs.get("routes", []) if r.get("gatewayId") == "public-id"}
    assert (gateway_routes, _tables_of(built, PUBLIC)) == ({("public", "0.0.0.0/0")}, {"public-id"})


def test_only_the_load_balancer_and_the_nat_gateways_use_the_public_subnets(built):
    users = {r.name for r in built.resources if set(PUBLIC) & set(
        r.inputs.get("subnets") or r.inputs.get("subnetIds") or [r.inputs.get("subnetId")])
        and r.typ != ASSOCIATION}
    assert users == {"command-api", "nat-0", "nat-1"}


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
    tables = ["private-routes-0-id", "private-routes-1-id"]
    assert found == {"dynamodb": ("com.amazonaws.eu-west-1.dynamodb", "Gateway", tables),
                     "s3": ("com.amazonaws.eu-west-1.s3", "Gateway", tables)}


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


TASKS_OUT_PRIVATELY = [(443, 443, "10.20.0.0/16"), (443, 443, "pl-dynamodb"), (443, 443, "pl-s3"),
                       (5432, 5432, "database-id")]
FUNCTIONS_OUT_PRIVATELY = [(443, 443, "10.20.0.0/16"), (5432, 5432, "database-id")]


def test_the_tasks_go_out_to_the_database_endpoints_dynamodb_s3_and_the_internet_on_443(built):
    assert rules_of(built, EGRESS_RULE, "tasks-id") == sorted(TASKS_OUT_PRIVATELY + [(443, 443, "0.0.0.0/0")])


def test_the_functions_go_out_to_the_database_endpoints_and_the_internet_on_443(built):
    assert rules_of(built, EGRESS_RULE, "functions-id") == sorted(FUNCTIONS_OUT_PRIVATELY + [(443, 443, "0.0.0.0/0")])


def test_without_nat_the_tasks_and_functions_go_out_only_within_the_vpc_and_to_its_gateways(built_without_nat):
    assert (rules_of(built_without_nat, EGRESS_RULE, "tasks-id"),
            rules_of(built_without_nat, EGRESS_RULE, "functions-id")) == (TASKS_OUT_PRIVATELY, FUNCTIONS_OUT_PRIVATELY)


def test_nothing_goes_to_the_internet_but_tcp_443(built):
    internet = {(r.inputs["ipProtocol"], r.inputs["fromPort"], r.inputs["toPort"]) for r in built.of_type(EGRESS_RULE)
                if r.inputs.get("cidrIpv4") == "0.0.0.0/0"}
    inline = [rule for g in built.of_type(SECURITY_GROUP) for rule in g.inputs.get("egress") or []]
    assert (internet, inline) == ({("tcp", 443, 443)}, [])


def test_the_database_group_takes_its_port_and_sends_nothing(built):
    database = built.one(SECURITY_GROUP, "database").inputs
    assert (database.get("egress"), rules_of(built, EGRESS_RULE, "database-id"),
            rules_of(built, INGRESS_RULE, "database-id")) == (None, [], [])


def test_the_load_balancer_takes_443_and_80_from_the_allowed_cidrs(built):
    assert rules_of(built, INGRESS_RULE, "load-balancer-id") == [(80, 80, "0.0.0.0/0"), (443, 443, "0.0.0.0/0")]


def test_the_load_balancer_goes_out_only_to_the_tasks_on_8080(built):
    assert rules_of(built, EGRESS_RULE, "load-balancer-id") == [(8080, 8080, "tasks-id")]


def test_the_groups_with_standalone_rules_have_no_inline_rules(built):
    # Inline and standalone rules on one group fight each other on every update.
    groups = [built.one(SECURITY_GROUP, name).inputs for name in ("tasks", "functions", "load-balancer")]
    assert [(g.get("ingress"), g.get("egress")) for g in groups] == [(None, None)] * 3
