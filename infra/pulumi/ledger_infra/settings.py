"""The stack's configuration (`pulumi config set ledger:<key> ...`), with the defaults the binaries use."""

from dataclasses import dataclass

import pulumi


@dataclass(frozen=True)
class Settings:
    events_table: str
    idempotency_table: str
    snapshots_table: str
    projection_zip: str
    query_zip: str
    database_url: pulumi.Output
    jwt_issuer: str
    jwt_audiences: list
    projection_lag_alarm_ms: int
    metrics_namespace: str
    postgres_version: str
    database_instance_class: str
    database_multi_az: bool


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
        # A connection string with a password: a secret (`pulumi config set --secret ledger:databaseUrl`).
        database_url=config.require_secret("databaseUrl"),
        jwt_issuer=config.require("jwtIssuer"),
        jwt_audiences=[a.strip() for a in config.require("jwtAudience").split(",") if a.strip()],
        projection_lag_alarm_ms=config.get_int("projectionLagAlarmMs") or 10_000,
        metrics_namespace=config.get("metricsNamespace") or "Ledger",
        postgres_version=config.get("postgresVersion") or "16",
        database_instance_class=config.get("databaseInstanceClass") or "db.t4g.micro",
        database_multi_az=config.get_bool("databaseMultiAz") is not False,
    )
