"""Builds the stack once under Pulumi's mocks (no CLI, no cloud) and records every resource's inputs.

Each test then asserts one property on the recorded inputs (what `pulumi up` would send to AWS).
"""

import os
import sys
from dataclasses import dataclass, field

import pulumi
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

CONFIG = {
    "ledger:jwtIssuer": "https://issuer.example.com/",
    "ledger:jwtAudience": "ledger-api",
    "ledger:jwksUrl": "https://issuer.example.com/.well-known/jwks.json",
    "ledger:imageTag": "v1.2.3",
    "ledger:certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/ledger",
    "ledger:adotLambdaLayerArn": "arn:aws:lambda:eu-west-1:901920570463:layer:aws-otel-collector-arm64-ver-0-117-0:1",
    "ledger:alarmEmail": "oncall@example.com",
}
DATABASE_ADDRESS = "read-model.mock.eu-west-1.rds.amazonaws.com"
ELB_ACCOUNT = "156460612806"  # Elastic Load Balancing's account in eu-west-1
DATABASE_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-mock"


@dataclass
class Recorded:
    typ: str
    name: str
    inputs: dict


@dataclass
class Mocks(pulumi.runtime.Mocks):
    resources: list = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(Recorded(args.typ, args.name, dict(args.inputs)))
        arn = f"arn:aws:mock:eu-west-1:123456789012:{args.name}"
        state = dict(args.inputs, arn=arn)
        if args.typ == "aws:dynamodb/table:Table":
            state["streamArn"] = f"{arn}/stream/2026-12-01T00:00:00.000"
        if args.typ == "aws:lambda/function:Function":
            state["invokeArn"] = f"arn:aws:apigateway:eu-west-1:lambda:path/functions/{arn}/invocations"
        if args.typ == "aws:apigatewayv2/api:Api":
            state["executionArn"] = f"arn:aws:execute-api:eu-west-1:123456789012:{args.name}"
        if args.typ == "aws:apigatewayv2/stage:Stage":
            state["invokeUrl"] = "https://mock.execute-api.eu-west-1.amazonaws.com/"
        if args.typ == "aws:sqs/queue:Queue":
            state["url"] = f"https://sqs.eu-west-1.amazonaws.com/123456789012/{args.name}"
        if args.typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
            state["prefixListId"] = f"pl-{args.name}"
        if args.typ == "aws:rds/instance:Instance":
            state.update(address=DATABASE_ADDRESS, port=5432, endpoint=f"{DATABASE_ADDRESS}:5432",
                         masterUserSecrets=[{"secretArn": DATABASE_SECRET_ARN, "secretStatus": "active"}])
        if args.typ in ("aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup"):
            state["arnSuffix"] = f"app/{args.name}/0123456789abcdef"
            state["dnsName"] = f"{args.name}-123.eu-west-1.elb.amazonaws.com"
        if args.typ == "aws:s3/bucket:Bucket":
            state.update(bucket=f"{args.name}-bucket", arn=f"arn:aws:s3:::{args.name}-bucket")
        if args.typ == "aws:ecr/repository:Repository":
            state["repositoryUrl"] = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{args.name}"
        if "name" not in state:
            state["name"] = args.name
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ["eu-west-1a", "eu-west-1b", "eu-west-1c"], "zoneIds": ["euw1-az1", "euw1-az2", "euw1-az3"]}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": "eu-west-1", "region": "eu-west-1", "id": "eu-west-1"}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/mock", "userId": "mock"}
        if args.token == "aws:elb/getServiceAccount:getServiceAccount":
            return {"arn": f"arn:aws:iam::{ELB_ACCOUNT}:root", "id": ELB_ACCOUNT, "region": "eu-west-1"}
        return {}


class Built:
    def __init__(self, mocks: Mocks, stack):
        self.resources = mocks.resources
        self.stack = stack

    def of_type(self, typ: str) -> list:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str) -> Recorded:
        found = [r for r in self.of_type(typ) if r.name == name]
        assert len(found) == 1, f"expected one {typ} named {name}, found {len(found)}"
        return found[0]


def _build(overrides: dict) -> Built:
    """One build of the whole program under fresh mocks and exactly this configuration."""
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="ledger", stack="test", preview=False)
    pulumi.runtime.set_all_config(dict(CONFIG, **overrides))
    from ledger_infra.stack import build

    holder = {}

    @pulumi.runtime.test
    def run():
        # The decorator waits for every registration the build started, so the inputs are recorded.
        holder["stack"] = build()

    run()
    return Built(mocks, holder["stack"])


@pytest.fixture(scope="session")
def built() -> Built:
    return _build({})


@pytest.fixture(scope="session")
def built_without_nat() -> Built:
    """The stack of an operator whose issuer is reachable privately: `natGateways=false`."""
    return _build({"ledger:natGateways": "false"})


@pytest.fixture(scope="session")
def built_with_no_tasks() -> Built:
    """The first deploy's stack, before the image is pushed: `desiredCount=0`."""
    return _build({"ledger:desiredCount": "0"})
