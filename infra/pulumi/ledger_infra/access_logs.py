"""The S3 bucket the command API's load balancer writes its access logs to: SSE-S3 encrypted (the only
encryption ALB log delivery supports), every kind of public access blocked, ACLs disabled, objects
expired after `accessLogRetentionDays`, and a policy that lets Elastic Load Balancing put objects under
this stack's prefix alone: as the log-delivery service principal (how regions opened since August 2022
deliver) and, where the region has one, as its load-balancing account (how older regions deliver)."""

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .settings import Settings

PREFIX = "command-api"


@dataclass
class AccessLogs:
    bucket: aws.s3.Bucket
    # The load balancer checks it may write when its logging is turned on: it must exist first.
    policy: aws.s3.BucketPolicy


DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"


def _delivery_policy(bucket_arn: str, elb_account_arn: str | None, account: str) -> str:
    principals = [("LogDeliveryServiceDelivers", {"Service": DELIVERY_SERVICE})]
    if elb_account_arn is not None:
        principals.append(("LoadBalancerAccountDelivers", {"AWS": elb_account_arn}))
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": sid,
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/{PREFIX}/AWSLogs/{account}/*",
        } for sid, principal in principals],
    })


def _elb_account_arn() -> str | None:
    """The account Elastic Load Balancing delivers from in this region; None in a region opened since
    August 2022, which has none (the provider's lookup fails there) and delivers as the service."""
    try:
        return aws.elb.get_service_account().arn
    except Exception:  # noqa: BLE001 - the provider raises a plain error for a region it has no account for
        return None


def create(settings: Settings) -> AccessLogs:
    bucket = aws.s3.Bucket("command-api-access-logs", force_destroy=False)
    aws.s3.BucketPublicAccessBlock(
        "command-api-access-logs", bucket=bucket.id,
        block_public_acls=True, block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True,
    )
    aws.s3.BucketOwnershipControls("command-api-access-logs", bucket=bucket.id,
                                   rule={"object_ownership": "BucketOwnerEnforced"})
    aws.s3.BucketServerSideEncryptionConfiguration(
        "command-api-access-logs", bucket=bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
    )
    aws.s3.BucketLifecycleConfiguration(
        "command-api-access-logs", bucket=bucket.id,
        rules=[{"id": "expire-access-logs", "status": "Enabled", "filter": {},
                "expiration": {"days": settings.access_log_retention_days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 1}}],
    )
    elb_account_arn = _elb_account_arn()
    account = aws.get_caller_identity().account_id
    policy = aws.s3.BucketPolicy(
        "command-api-access-logs", bucket=bucket.id,
        policy=bucket.arn.apply(lambda arn: _delivery_policy(arn, elb_account_arn, account)),
    )
    return AccessLogs(bucket, policy)
