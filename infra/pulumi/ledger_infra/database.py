"""The PostgreSQL read model on RDS: encrypted, in the private subnets, never publicly accessible,
its master credentials generated and kept by RDS in Secrets Manager (never in the program or its
state), deletion-protected with backups and a final snapshot."""

import pulumi
import pulumi_aws as aws

from .network import Network
from .settings import Settings


def create(settings: Settings, network: Network) -> aws.rds.Instance:
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
        db_name="ledger",
        username="ledger",
        # RDS generates the password and keeps it in Secrets Manager, rotating it.
        manage_master_user_password=True,
        multi_az=settings.database_multi_az,
        backup_retention_period=7,
        deletion_protection=True,
        skip_final_snapshot=False,
        final_snapshot_identifier="ledger-read-model-final",
        auto_minor_version_upgrade=True,
    )
    pulumi.export("database_endpoint", database.endpoint)
    pulumi.export(
        "database_secret_arn",
        database.master_user_secrets.apply(lambda secrets: secrets[0]["secret_arn"] if secrets else None),
    )
    return database
