"""The PostgreSQL read model on RDS: encrypted, in the private subnets, never publicly accessible,
its master credentials generated and kept by RDS in Secrets Manager (never in the program or its
state), deletion-protected with backups and a final snapshot."""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .network import Network
from .settings import Settings


DATABASE_NAME = "ledger"
DATABASE_USER = "ledger"


@dataclass
class Database:
    instance: aws.rds.Instance
    # The RDS-managed master secret (SecretString JSON with `username` and `password`).
    secret_arn: pulumi.Output
    # `postgres://ledger@<host>:5432/ledger?sslmode=require`: no password; the binaries read it from
    # the secret at start (LEDGER_DATABASE_SECRET_ARN), so it is never in the program, state or env.
    url: pulumi.Output


def _secret_arn(secrets) -> str | None:
    if not secrets:
        return None
    first = secrets[0]
    return first["secret_arn"] if isinstance(first, dict) and "secret_arn" in first else first.secret_arn


def create(settings: Settings, network: Network) -> Database:
    subnets = aws.rds.SubnetGroup(
        "read-model", subnet_ids=[subnet.id for subnet in network.private_subnets]
    )
    database = aws.rds.Instance(
        "read-model",
        engine="postgres",
        engine_version=settings.postgres_version,
        instance_class=settings.database_instance_class,
        allocated_storage=20,
        storage_type="gp3",
        storage_encrypted=True,
        publicly_accessible=False,
        db_subnet_group_name=subnets.name,
        vpc_security_group_ids=[network.database_security_group.id],
        db_name=DATABASE_NAME,
        username=DATABASE_USER,
        # RDS generates the password and keeps it in Secrets Manager, rotating it (every 7 days); the
        # binaries re-read the secret every LEDGER_DATABASE_SECRET_REFRESH_SECONDS (default 300).
        # No `master_user_secret_kms_key_id`: the secret is encrypted with the AWS-managed
        # `aws/secretsmanager` key, whose policy lets whoever may GetSecretValue decrypt through
        # Secrets Manager, so no role needs a KMS grant. A key of our own here would need
        # `kms:Decrypt` on it for the task, migrate and both Lambda roles (iam.py).
        manage_master_user_password=True,
        multi_az=settings.database_multi_az,
        backup_retention_period=7,
        deletion_protection=True,
        skip_final_snapshot=False,
        final_snapshot_identifier="ledger-read-model-final",
        auto_minor_version_upgrade=True,
    )
    url = pulumi.Output.all(database.address, database.port).apply(
        lambda parts: f"postgres://{DATABASE_USER}@{parts[0]}:{parts[1] or 5432}/{DATABASE_NAME}?sslmode=require"
    )
    return Database(database, database.master_user_secrets.apply(_secret_arn), url)
