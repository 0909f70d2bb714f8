"""The ECR repository the `ledger-api` image is pushed to: scanned on push, tags immutable (a tag
names one image for ever, so a task definition's image never changes under it), encrypted with KMS,
and a lifecycle policy that keeps the last N images."""

import json

import pulumi_aws as aws

from .settings import Settings


def lifecycle_policy(keep: int) -> str:
    return json.dumps({
        "rules": [{
            "rulePriority": 1,
            "description": f"Keep the last {keep} images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
            "action": {"type": "expire"},
        }]
    })


def create(settings: Settings) -> aws.ecr.Repository:
    repository = aws.ecr.Repository(
        "ledger-api",
        name="ledger-api",
        image_tag_mutability="IMMUTABLE",
        image_scanning_configuration={"scan_on_push": True},
        # The AWS-managed aws/ecr key: encryption at rest with KMS, and no key policy to keep.
        encryption_configurations=[{"encryption_type": "KMS"}],
    )
    aws.ecr.LifecyclePolicy("ledger-api", repository=repository.name, policy=lifecycle_policy(settings.ecr_keep_images))
    return repository
