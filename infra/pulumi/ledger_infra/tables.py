"""The three DynamoDB tables, with the schemas of adapters/dynamodb/src/tables.rs, plus what only
production needs: point-in-time recovery, server-side encryption and deletion protection."""

from dataclasses import dataclass

import pulumi_aws as aws

from .settings import Settings


@dataclass
class Tables:
    events: aws.dynamodb.Table
    idempotency: aws.dynamodb.Table
    snapshots: aws.dynamodb.Table


def _protected():
    return dict(
        billing_mode="PAY_PER_REQUEST",
        point_in_time_recovery={"enabled": True},
        server_side_encryption={"enabled": True},
        deletion_protection_enabled=True,
    )


def create(settings: Settings) -> Tables:
    events = aws.dynamodb.Table(
        "events",
        name=settings.events_table,
        hash_key="account_id",
        range_key="sequence",
        attributes=[{"name": "account_id", "type": "S"}, {"name": "sequence", "type": "N"}],
        # The projector (Lambda or ledger-projector) reads the new image of each appended event.
        stream_enabled=True,
        stream_view_type="NEW_IMAGE",
        **_protected(),
    )
    idempotency = aws.dynamodb.Table(
        "idempotency",
        name=settings.idempotency_table,
        hash_key="client_request_id",
        attributes=[{"name": "client_request_id", "type": "S"}],
        ttl={"attribute_name": "expires_at", "enabled": True},
        **_protected(),
    )
    snapshots = aws.dynamodb.Table(
        "snapshots",
        name=settings.snapshots_table,
        hash_key="account_id",
        attributes=[{"name": "account_id", "type": "S"}],
        **_protected(),
    )
    return Tables(events, idempotency, snapshots)
