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


def test_only_load_balancing_may_write_and_only_under_the_prefix(built):
    # As the log-delivery service (regions opened since August 2022) and as the region's account
    # (older regions): nobody else, nothing else, nowhere else.
    policy = json.loads(_of(built, "bucketPolicy:BucketPolicy")["policy"])
    resource = f"arn:aws:s3:::{BUCKET}/command-api/AWSLogs/123456789012/*"
    assert [(s["Effect"], s["Principal"], s["Action"], s["Resource"]) for s in policy["Statement"]] == [
        ("Allow", {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}, "s3:PutObject", resource),
        ("Allow", {"AWS": "arn:aws:iam::156460612806:root"}, "s3:PutObject", resource),
    ]


def test_a_region_without_a_load_balancing_account_gets_the_service_principal_alone():
    from ledger_infra.access_logs import _delivery_policy
    policy = json.loads(_delivery_policy("arn:aws:s3:::b", None, "123456789012"))
    assert [s["Principal"] for s in policy["Statement"]] == [
        {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}]


def test_a_failed_account_lookup_means_no_account_statement(monkeypatch):
    import pulumi_aws as aws
    from ledger_infra import access_logs

    def no_account_here(*_args, **_kwargs):
        raise Exception("no ELB account ID is available for region ap-southeast-5")

    monkeypatch.setattr(aws.elb, "get_service_account", no_account_here)
    assert access_logs._elb_account_arn() is None
