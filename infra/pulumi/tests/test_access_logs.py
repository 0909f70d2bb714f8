"""The command API load balancer's access logs: their own bucket, private, encrypted, expiring."""

import json

NAME = "command-api-access-logs"
BUCKET = "command-api-access-logs-bucket"


def _of(built, typ):
    return built.one(f"aws:s3/{typ}", NAME).inputs


def test_the_load_balancer_writes_access_logs_to_its_bucket_under_its_prefix(built):
    assert built.one("aws:lb/loadBalancer:LoadBalancer", "command-api").inputs["accessLogs"] == {
        "bucket": BUCKET, "prefix": "command-api", "enabled": True}


def test_the_access_log_bucket_is_encrypted_with_s3_managed_keys(built):
    # SSE-S3 is the only encryption Elastic Load Balancing's log delivery supports.
    rules = _of(built, "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")["rules"]
    assert rules == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]


def test_the_access_log_bucket_blocks_every_kind_of_public_access(built):
    block = _of(built, "bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert [block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                               "restrictPublicBuckets")] == [True, True, True, True]


def test_the_access_log_bucket_disables_acls(built):
    assert _of(built, "bucketOwnershipControls:BucketOwnershipControls")["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"}


def test_access_logs_expire_after_the_configured_days(built):
    rules = _of(built, "bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"]
    assert [(r["status"], r["filter"], r["expiration"]) for r in rules] == [("Enabled", {}, {"days": 90})]


def test_only_the_regions_load_balancing_account_may_write_and_only_under_the_prefix(built):
    policy = json.loads(_of(built, "bucketPolicy:BucketPolicy")["policy"])
    assert [(s["Effect"], s["Principal"], s["Action"], s["Resource"]) for s in policy["Statement"]] == [(
        "Allow", {"AWS": "arn:aws:iam::156460612806:root"}, "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/command-api/AWSLogs/123456789012/*")]
