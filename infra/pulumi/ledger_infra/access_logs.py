"""The S3 bucket the command API's load balancer writes its access logs to: SSE-S3 encrypted (the only
encryption ALB log delivery supports), every kind of public access blocked, ACLs disabled, objects
expired after `accessLogRetentionDays`, and a policy that lets the region's Elastic Load Balancing
account put objects under this stack's prefix alone."""

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


def _delivery_policy(bucket_arn: str, elb_account_arn: str, account: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "LoadBalancerDelivers",
            "Effect": "Allow",
            "Principal": {"AWS": elb_account_arn},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/{PREFIX}/AWSLogs/{account}/*",
        }],
    })


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
    # The account Elastic Load Balancing delivers from in this region (regions opened since August
    # 2022 deliver as the service principal logdelivery.elasticloadbalancing.amazonaws.com instead).
    elb_account_arn = aws.elb.get_service_account().arn
    account = aws.get_caller_identity().account_id
    policy = aws.s3.BucketPolicy(
        "command-api-access-logs", bucket=bucket.id,
        policy=bucket.arn.apply(lambda arn: _delivery_policy(arn, elb_account_arn, account)),
    )
    return AccessLogs(bucket, policy)
