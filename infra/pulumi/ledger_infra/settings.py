"""The stack's configuration (`pulumi config set ledger:<key> ...`), with the defaults the binaries use."""

from dataclasses import dataclass

import pulumi

# Pinned, never `latest`: a task started next month runs the collector this one ran.
ADOT_COLLECTOR_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.49.0"


@dataclass(frozen=True)
class Settings:
    events_table: str
    idempotency_table: str
    snapshots_table: str
    projection_zip: str
    query_zip: str
    jwt_issuer: str
    jwt_audience: str
    jwks_url: str
    projection_lag_alarm_ms: int
    metrics_namespace: str
    postgres_version: str
    database_instance_class: str
    database_multi_az: bool
    image_tag: str
    ecr_keep_images: int
    certificate_arn: str
    command_domain_name: str | None
    allowed_cidrs: list
    desired_count: int
    log_retention_days: int
    adot_collector_image: str
    adot_lambda_layer_arn: str
    alarm_email: str | None
    nat_gateways: bool
    access_log_retention_days: int


def _int_or(config: pulumi.Config, key: str, default: int) -> int:
    """The key's integer, the default only when unset (0 is a value: a service scaled to nothing)."""
    value = config.get_int(key)
    return default if value is None else value


def load() -> Settings:
    config = pulumi.Config("ledger")
    # As bootstrap/src/config.rs: LEDGER_DYNAMODB_TABLE_PREFIX prefixes the three default names.
    prefix = config.get("tablePrefix") or ""
    return Settings(
        events_table=config.get("eventsTable") or f"{prefix}ledger_events",
        idempotency_table=config.get("idempotencyTable") or f"{prefix}ledger_idempotency",
        snapshots_table=config.get("snapshotsTable") or f"{prefix}ledger_snapshots",
        projection_zip=config.get("projectionLambdaZip")
        or "../../target/lambda/ledger-projection-lambda/bootstrap.zip",
        query_zip=config.get("queryLambdaZip") or "../../target/lambda/ledger-query-lambda/bootstrap.zip",
        # One issuer and one audience, shared by the HTTP API's JWT authorizer and the binaries'
        # LEDGER_AUTH_ISSUER / LEDGER_AUTH_AUDIENCE, so both gates let in the same tokens.
        jwt_issuer=config.require("jwtIssuer"),
        jwt_audience=config.require("jwtAudience"),
        jwks_url=config.require("jwksUrl"),
        projection_lag_alarm_ms=config.get_int("projectionLagAlarmMs") or 10_000,
        metrics_namespace=config.get("metricsNamespace") or "Ledger",
        postgres_version=config.get("postgresVersion") or "16",
        database_instance_class=config.get("databaseInstanceClass") or "db.t4g.micro",
        database_multi_az=config.get_bool("databaseMultiAz") is not False,
        # Tags are immutable in the repository: each deploy names the image it runs.
        image_tag=config.require("imageTag"),
        ecr_keep_images=config.get_int("ecrKeepImages") or 20,
        certificate_arn=config.require("certificateArn"),
        command_domain_name=config.get("commandDomainName"),
        allowed_cidrs=[c.strip() for c in (config.get("allowedCidrs") or "0.0.0.0/0").split(",") if c.strip()],
        desired_count=_int_or(config, "desiredCount", 2),
        log_retention_days=config.get_int("logRetentionDays") or 30,
        adot_collector_image=config.get("adotCollectorImage") or ADOT_COLLECTOR_IMAGE,
        # Region-specific, e.g. arn:aws:lambda:eu-west-1:901920570463:layer:aws-otel-collector-arm64-ver-<v>:<n>
        adot_lambda_layer_arn=config.require("adotLambdaLayerArn"),
        alarm_email=config.get("alarmEmail"),
        # A NAT gateway per zone, the private subnets' way to a public issuer's JWKS (network.py);
        # false where `jwksUrl` is reachable privately (no NAT, no route out of the VPC at all).
        nat_gateways=config.get_bool("natGateways") is not False,
        access_log_retention_days=config.get_int("accessLogRetentionDays") or 90,
    )
