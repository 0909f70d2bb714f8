"""The PostgreSQL read model on RDS: encrypted, private, credentials in Secrets Manager, protected."""

DATABASE = "aws:rds/instance:Instance"
SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"


def _database(built):
    return built.one(DATABASE, "read-model").inputs


def test_the_database_is_postgres(built):
    assert _database(built)["engine"] == "postgres"


def test_the_database_storage_is_encrypted(built):
    assert _database(built)["storageEncrypted"] is True


def test_the_database_is_not_publicly_accessible(built):
    assert _database(built)["publiclyAccessible"] is False


def test_the_database_lives_in_the_private_subnets(built):
    assert sorted(built.one(SUBNET_GROUP, "read-model").inputs["subnetIds"]) == ["private-0-id", "private-1-id"]


def test_the_database_credentials_are_kept_by_rds_in_secrets_manager(built):
    inputs = _database(built)
    assert inputs["manageMasterUserPassword"] is True and "password" not in inputs


def test_the_database_is_deletion_protected_with_backups_and_a_final_snapshot(built):
    inputs = _database(built)
    assert (inputs["deletionProtection"], inputs["backupRetentionPeriod"] >= 7, inputs["skipFinalSnapshot"]) == (
        True, True, False)


def test_the_database_is_reached_only_through_its_security_group(built):
    assert _database(built)["vpcSecurityGroupIds"] == ["database-id"]


def test_the_master_secret_uses_the_aws_managed_key_so_no_role_needs_a_kms_grant(built):
    # With a key of its own, every role reading the secret would need kms:Decrypt on it (iam.py).
    granted = [p.name for p in built.of_type("aws:iam/rolePolicy:RolePolicy") if '"kms:' in p.inputs["policy"]]
    assert ("masterUserSecretKmsKeyId" in _database(built), granted) == (False, [])
