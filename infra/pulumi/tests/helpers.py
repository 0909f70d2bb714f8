"""Reading recorded inputs: policy actions, unwrapped secrets."""

import json
import re

TABLE = "aws:dynamodb/table:Table"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a serialized secret


def unsecret(value):
    """A secret's plain value (the mocks see secrets as {sig: ..., value: ...})."""
    if isinstance(value, dict) and SECRET_SIG in value:
        return value["value"]
    return value


def is_secret(value) -> bool:
    return isinstance(value, dict) and SECRET_SIG in value


def statements(policy_json: str) -> list:
    found = json.loads(policy_json)["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def policies_of(built, role_name: str) -> list:
    """The inline policies attached to the role named `role_name` (the mocks give it id `<name>-id`)."""
    return [r for r in built.of_type(ROLE_POLICY) if r.inputs["role"] == f"{role_name}-id"]


def actions_of(built, role_name: str) -> list:
    return [a for p in policies_of(built, role_name) for s in statements(p.inputs["policy"]) for a in as_list(s["Action"])]


TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
DATABASE_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-mock"
PASSWORDLESS_DATABASE_URL = "postgres://ledger@read-model.mock.eu-west-1.rds.amazonaws.com:5432/ledger?sslmode=require"


def containers(built) -> dict:
    """The API task definition's containers, by name."""
    definitions = json.loads(built.one(TASK_DEFINITION, "ledger-api").inputs["containerDefinitions"])
    return {c["name"]: c for c in definitions}


def environment_of(container: dict) -> dict:
    return {e["name"]: e["value"] for e in container["environment"]}


def rules_of(built, typ: str, group_id: str) -> list:
    """The standalone rules of one security group, as (port, peer) pairs."""
    found = []
    for rule in built.of_type(typ):
        inputs = rule.inputs
        if inputs["securityGroupId"] == group_id:
            peer = inputs.get("referencedSecurityGroupId") or inputs.get("cidrIpv4") or inputs.get("prefixListId")
            found.append((int(inputs["fromPort"]), int(inputs["toPort"]), peer))
    return sorted(found)


_URL_WITH_PASSWORD = re.compile(r"postgres(ql)?://[^/@:]*:[^/@]*@")


def has_password_url(value: str) -> bool:
    """A connection string whose userinfo holds a password (`user:password@`)."""
    return bool(_URL_WITH_PASSWORD.search(value))
