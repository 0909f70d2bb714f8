"""The VPC: private subnets only, endpoints instead of an internet path, the functions inside it."""

from helpers import FUNCTION

SUBNET = "aws:ec2/subnet:Subnet"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"


def test_no_subnet_gives_public_addresses(built):
    subnets = built.of_type(SUBNET)
    assert len(subnets) == 2 and all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)


def test_the_subnets_span_two_zones(built):
    assert {s.inputs["availabilityZone"] for s in built.of_type(SUBNET)} == {"eu-west-1a", "eu-west-1b"}


def test_there_is_no_path_to_the_internet(built):
    kinds = {r.typ for r in built.resources}
    assert not kinds & {"aws:ec2/internetGateway:InternetGateway", "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip"}


def test_dynamodb_is_reached_through_a_gateway_endpoint_on_the_private_routes(built):
    endpoint = built.one(ENDPOINT, "dynamodb").inputs
    assert (endpoint["serviceName"], endpoint["vpcEndpointType"], endpoint["routeTableIds"]) == (
        "com.amazonaws.eu-west-1.dynamodb", "Gateway", ["private-id"])


def test_secrets_manager_is_reached_through_a_private_interface_endpoint(built):
    endpoint = built.one(ENDPOINT, "secretsmanager").inputs
    assert (endpoint["vpcEndpointType"], endpoint["privateDnsEnabled"], sorted(endpoint["subnetIds"])) == (
        "Interface", True, ["private-0-id", "private-1-id"])


def test_the_database_port_is_open_to_the_functions_group_alone(built):
    ingress = built.one(SECURITY_GROUP, "database").inputs["ingress"]
    assert [(rule["fromPort"], rule["toPort"], rule["securityGroups"], rule.get("cidrBlocks")) for rule in ingress] == [
        (5432, 5432, ["functions-id"], None)]


def test_both_functions_run_in_the_private_subnets_with_the_functions_group(built):
    configs = {f.name: f.inputs["vpcConfig"] for f in built.of_type(FUNCTION)}
    assert {name: (sorted(c["subnetIds"]), c["securityGroupIds"]) for name, c in configs.items()} == {
        "projection": (["private-0-id", "private-1-id"], ["functions-id"]),
        "query": (["private-0-id", "private-1-id"], ["functions-id"]),
    }
