"""The DynamoDB tables: the schemas of adapters/dynamodb/src/tables.rs, and production's protections."""

from helpers import TABLE


def test_events_table_is_named_as_the_binaries_default(built):
    assert built.one(TABLE, "events").inputs["name"] == "ledger_events"


def test_events_table_keys_are_account_id_and_sequence(built):
    inputs = built.one(TABLE, "events").inputs
    types = {a["name"]: a["type"] for a in inputs["attributes"]}
    assert (inputs["hashKey"], inputs["rangeKey"], types) == (
        "account_id", "sequence", {"account_id": "S", "sequence": "N"})


def test_events_stream_is_new_image(built):
    inputs = built.one(TABLE, "events").inputs
    assert inputs["streamEnabled"] is True and inputs["streamViewType"] == "NEW_IMAGE"


def test_events_table_has_point_in_time_recovery(built):
    assert built.one(TABLE, "events").inputs["pointInTimeRecovery"] == {"enabled": True}


def test_events_table_has_deletion_protection(built):
    assert built.one(TABLE, "events").inputs["deletionProtectionEnabled"] is True


def test_every_table_is_encrypted_at_rest(built):
    assert all(t.inputs["serverSideEncryption"] == {"enabled": True} for t in built.of_type(TABLE))


def test_every_table_is_protected_from_deletion(built):
    assert all(t.inputs["deletionProtectionEnabled"] is True for t in built.of_type(TABLE))


def test_idempotency_ttl_is_expires_at(built):
    assert built.one(TABLE, "idempotency").inputs["ttl"] == {"enabled": True, "attributeName": "expires_at"}


def test_idempotency_key_is_client_request_id(built):
    inputs = built.one(TABLE, "idempotency").inputs
    assert (inputs["hashKey"], inputs["attributes"]) == (
        "client_request_id", [{"name": "client_request_id", "type": "S"}])


def test_snapshots_key_is_account_id(built):
    inputs = built.one(TABLE, "snapshots").inputs
    assert (inputs["name"], inputs["hashKey"], "rangeKey" in inputs) == ("ledger_snapshots", "account_id", False)
